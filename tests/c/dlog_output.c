/*
 * dlog_output.c - when the DLOG lines of OasisLog.h reach stdout: stdout keeps stdio's own
 * buffering. The program runs itself as a child that prints three DLOG lines (one from a second
 * thread) and then waits to be told to end; the parent watches the child's stdout. On a pipe
 * (not a terminal) nothing has arrived while the child lives, and every line arrives whole and
 * in order when it ends, by a return from main or by exit() from another thread. On a terminal
 * (a pseudo-terminal) the lines arrive before the child ends.
 */

#define _XOPEN_SOURCE 700

#include "test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <termios.h>

#include "OasisLog.h"

#define DLOG_THIS 0x00080000
#undef DLOG_FLAGS
#define DLOG_FLAGS (DLOG_FLAGS_DEFAULT | DLOG_THIS)
#undef DLOG_TAG
#define DLOG_TAG "DLT"

static const char expected_lines[] = "[DLT] line 1\n[DLT] line 2 from a thread\nline 3\n";

/* ---- the child --------------------------------------------------------------------------- */

static void *print_from_thread(void *unused)
{
    (void)unused;
    DLOG(DLOG_THIS, "line %d from a thread\n", 2);
    return NULL;
}

static void *exit_from_thread(void *unused)
{
    (void)unused;
    exit(0);
}

/* argv: --child HOW READY-FD GO-FD; HOW is "return" or "thread-exit". */
static int child(const char *how, int ready_fd, int go_fd)
{
    pthread_t thread;
    char byte = 'r';

    DLOG(DLOG_THIS, "line %d\n", 1);
    if (pthread_create(&thread, NULL, print_from_thread, NULL) != 0 || pthread_join(thread, NULL) != 0)
        return 3;
    DLOG0(DLOG_THIS, "line %d\n", 3);
    if (write(ready_fd, &byte, 1) != 1 || read(go_fd, &byte, 1) != 1)
        return 4;
    if (strcmp(how, "thread-exit") == 0) {
        if (pthread_create(&thread, NULL, exit_from_thread, NULL) != 0)
            return 5;
        pthread_join(thread, NULL); /* never returns: the other thread ends the process */
    }
    return 0;
}

/* ---- the parent -------------------------------------------------------------------------- */

/* Reads what `fd` has within `timeout_ms`, appending to `buffer` (NUL-terminated); stops at
 * end of file (or EIO: a pseudo-terminal whose other side closed) or once it holds `want`
 * bytes. Returns the bytes held. */
static size_t read_for(int fd, char *buffer, size_t held, size_t capacity, size_t want, int timeout_ms)
{
    struct pollfd pfd;
    ssize_t n;

    pfd.fd = fd;
    pfd.events = POLLIN;
    while (held < want && held + 1 < capacity) {
        if (poll(&pfd, 1, timeout_ms) <= 0)
            break;
        n = read(fd, buffer + held, capacity - 1 - held);
        if (n <= 0)
            break;
        held += (size_t)n;
    }
    buffer[held] = '\0';
    return held;
}

/* `text` with its line ends shown as \n, for a check's one-line message. */
static const char *shown(const char *text)
{
    static char out[512];
    size_t o = 0;
    for (; *text != '\0' && o + 3 < sizeof out; text++) {
        if (*text == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *text;
        }
    }
    out[o] = '\0';
    return out;
}

/* Runs the child with its stdout on `out_child` (closed here) and reads it on `out_parent`. */
static void run(const char *self, const char *how, int out_parent, int out_child, int terminal)
{
    int ready[2], go[2], status = -1;
    char ready_arg[16], go_arg[16], before[256], after[256], byte = 'g';
    size_t held;
    pid_t pid;

    if (pipe(ready) != 0 || pipe(go) != 0) {
        CHECK(0, "pipes for the child (%s)", strerror(errno));
        return;
    }
    snprintf(ready_arg, sizeof ready_arg, "%d", ready[1]);
    snprintf(go_arg, sizeof go_arg, "%d", go[0]);
    fflush(stdout); /* nothing of ours may be inherited in a buffer */
    pid = fork();
    if (pid == 0) {
        dup2(out_child, STDOUT_FILENO);
        close(out_child);
        close(out_parent);
        close(ready[0]);
        close(go[1]);
        execl(self, self, "--child", how, ready_arg, go_arg, (char *)NULL);
        _exit(127);
    }
    close(out_child);
    close(ready[1]);
    close(go[0]);
    CHECK(pid > 0, "fork (%s)", pid > 0 ? "ok" : strerror(errno));
    if (pid <= 0)
        return;

    CHECK(read_for(ready[0], before, 0, sizeof before, 1, TU_TIMEOUT_MS) == 1, "%s, %s: the child printed its lines",
          terminal ? "terminal" : "pipe", how);
    if (terminal) {
        held = read_for(out_parent, before, 0, sizeof before, strlen(expected_lines), TU_TIMEOUT_MS);
        CHECK(strcmp(before, expected_lines) == 0, "terminal: each line arrives at once, before the child ends (\"%s\")",
              shown(before));
    } else {
        held = read_for(out_parent, before, 0, sizeof before, 1, 0);
        CHECK(held == 0, "pipe, %s: while the child lives, its lines wait in stdio's buffer (%zu bytes arrived)", how,
              held);
    }
    CHECK(write(go[1], &byte, 1) == 1, "%s: the child is told to end", how);
    if (!terminal) {
        held = read_for(out_parent, after, 0, sizeof after, sizeof after, TU_TIMEOUT_MS);
        CHECK(strcmp(after, expected_lines) == 0, "pipe, %s: every line arrives whole and in order at exit (\"%s\")",
              how, shown(after));
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the child exited 0 (status %d)", how, status);
    close(out_parent);
    close(ready[0]);
    close(go[1]);
}

static void run_on_pipe(const char *self, const char *how)
{
    int out[2];
    if (pipe(out) != 0) {
        CHECK(0, "a pipe for the child's stdout (%s)", strerror(errno));
        return;
    }
    run(self, how, out[0], out[1], 0);
}

static void run_on_terminal(const char *self)
{
    struct termios mode;
    int master = posix_openpt(O_RDWR | O_NOCTTY), slave = -1;

    if (master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0)
        slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    CHECK(slave >= 0, "a pseudo-terminal for the child's stdout (%s)", slave >= 0 ? "ok" : strerror(errno));
    if (slave < 0) {
        if (master >= 0)
            close(master);
        return;
    }
    /* No output processing: the lines come through as printed (no "\n" -> "\r\n"). */
    if (tcgetattr(slave, &mode) == 0) {
        mode.c_oflag &= ~(tcflag_t)OPOST;
        tcsetattr(slave, TCSANOW, &mode);
    }
    run(self, "return", master, slave, 1);
}

int main(int argc, char *argv[])
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], atoi(argv[3]), atoi(argv[4]));

    run_on_pipe(argv[0], "return");
    run_on_pipe(argv[0], "thread-exit");
    run_on_terminal(argv[0]);
    return tu_summary();
}
