/*
 * test_util.h - helpers shared by the C and C++ test programs of tests/c.
 *
 * Output: one "ok - ..." or "not ok - ..." line per check, then "N passed, M failed";
 * tu_summary() gives main's exit status.
 *
 * Synchronisation: callbacks run on the library's threads. They change shared test state under
 * tu_lock() and end with tu_unlock_notify(); the main thread waits with TU_WAIT_FOR or
 * tu_counter_wait, always with a deadline, never with a blind sleep. To show that something did
 * NOT happen, wait for an event that must come after it: the delegate's release (no callback of
 * a delegate runs after it), a later message on the same connection, or oasis_finalize (no
 * callback runs after it returns).
 *
 * Include this header first: it selects the POSIX API before any system header.
 */

#ifndef OASIS_TEST_UTIL_H
#define OASIS_TEST_UTIL_H

#if !defined(__cplusplus) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "oasis_net.h"

#if defined(__GNUC__)
#define TU_PRINTF_(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define TU_PRINTF_(fmt_index, first_arg)
#endif

/* Default bound for every wait: generous for a loaded CI machine, short enough that a hang
 * shows up as a failed check rather than a stuck job. */
#define TU_TIMEOUT_MS 5000

/* ---- results ---------------------------------------------------------------------------- */

static int tu_passed_;
static int tu_failed_;

static inline void tu_vreport_(int ok, const char *file, int line, const char *format, va_list args)
{
    printf("%s - ", ok ? "ok" : "not ok");
    vprintf(format, args);
    if (!ok)
        printf("  (%s:%d)", file, line);
    printf("\n");
    fflush(stdout);
    if (ok)
        tu_passed_++;
    else
        tu_failed_++;
}

static inline int tu_check_(int ok, const char *file, int line, const char *format, ...) TU_PRINTF_(4, 5);
static inline int tu_check_(int ok, const char *file, int line, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    tu_vreport_(ok, file, line, format, args);
    va_end(args);
    return ok;
}

/* CHECK(condition, "format", ...): one result line; evaluates to the condition. */
#define CHECK(cond, ...) tu_check_((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

/* The message of a failed call, captured right after it: errno and oasis_last_error(). */
static inline int tu_check_failure_(int failed, int got_errno, int want_errno, const char *last_error,
                                    const char *file, int line, const char *format, ...) TU_PRINTF_(7, 8);
static inline int tu_check_failure_(int failed, int got_errno, int want_errno, const char *last_error,
                                    const char *file, int line, const char *format, ...)
{
    int ok = failed && got_errno == want_errno && last_error != NULL && last_error[0] != '\0';
    va_list args;
    va_start(args, format);
    tu_vreport_(ok, file, line, format, args);
    va_end(args);
    if (!ok)
        printf("#   failed=%d errno=%d (%s), want errno=%d (%s), last error \"%s\"\n", failed, got_errno,
               strerror(got_errno), want_errno, strerror(want_errno), last_error ? last_error : "(null)");
    return ok;
}

/* CHECK_FAILS(expression that is true when the call failed, EXPECTED_ERRNO, "format", ...):
 * the call must fail, set errno to EXPECTED_ERRNO and leave a last-error text. */
#define CHECK_FAILS(failed_expr, want_errno, ...) \
    do { \
        int tu_failed_now_; \
        int tu_errno_now_; \
        errno = 0; \
        tu_failed_now_ = (failed_expr) ? 1 : 0; \
        tu_errno_now_ = errno; \
        tu_check_failure_(tu_failed_now_, tu_errno_now_, (want_errno), oasis_last_error(), __FILE__, __LINE__, \
                          __VA_ARGS__); \
    } while (0)

/* Prints the summary line; the program's exit status. */
static inline int tu_summary(void)
{
    printf("%d passed, %d failed\n", tu_passed_, tu_failed_);
    fflush(stdout);
    return tu_failed_ == 0 ? 0 : 1;
}

/* ---- time ------------------------------------------------------------------------------- */

static inline int64_t tu_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- one monitor for all shared test state -------------------------------------------- */

static pthread_mutex_t tu_mutex_ = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tu_cond_;
static pthread_once_t tu_once_ = PTHREAD_ONCE_INIT;

static inline void tu_init_cond_(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&tu_cond_, &attr);
    pthread_condattr_destroy(&attr);
}

static inline void tu_lock(void)
{
    pthread_once(&tu_once_, tu_init_cond_);
    pthread_mutex_lock(&tu_mutex_);
}

static inline void tu_unlock(void)
{
    pthread_mutex_unlock(&tu_mutex_);
}

static inline void tu_unlock_notify(void)
{
    pthread_cond_broadcast(&tu_cond_);
    pthread_mutex_unlock(&tu_mutex_);
}

/* Waits (with the lock held) until notified or until `deadline_ms` (tu_now_ms time).
 * Returns 0 once the deadline has passed. */
static inline int tu_wait_locked_(int64_t deadline_ms)
{
    struct timespec until;
    if (tu_now_ms() >= deadline_ms)
        return 0;
    until.tv_sec = (time_t)(deadline_ms / 1000);
    until.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    pthread_cond_timedwait(&tu_cond_, &tu_mutex_, &until);
    return 1;
}

/* TU_WAIT_FOR(result, condition, timeout_ms): waits until `condition` (evaluated under the
 * lock) holds or the time is up; `result` (an int lvalue) receives the final condition. */
#define TU_WAIT_FOR(result, cond, timeout_ms) \
    do { \
        int64_t tu_deadline_ = tu_now_ms() + (timeout_ms); \
        tu_lock(); \
        while (!(cond) && tu_wait_locked_(tu_deadline_)) { \
        } \
        (result) = (cond) ? 1 : 0; \
        tu_unlock(); \
    } while (0)

/* ---- counters --------------------------------------------------------------------------- */

typedef struct tu_counter {
    int value;
} tu_counter;

static inline void tu_counter_add(tu_counter *counter, int delta)
{
    tu_lock();
    counter->value += delta;
    tu_unlock_notify();
}

static inline int tu_counter_get(tu_counter *counter)
{
    int value;
    tu_lock();
    value = counter->value;
    tu_unlock();
    return value;
}

/* Waits until the counter reaches at least `target`; returns whether it did in time. */
static inline int tu_counter_wait(tu_counter *counter, int target, int timeout_ms)
{
    int reached;
    TU_WAIT_FOR(reached, counter->value >= target, timeout_ms);
    return reached;
}

/* ---- servers ---------------------------------------------------------------------------- */

/* Creates and starts a server on 127.0.0.1 (or `bind_address`) with a free port, plus the
 * extra `parameters`; returns it with the port in *port, or NULL (the reason is printed). */
static inline WsServer *tu_start_server(const char *bind_address, const OasisKeyValue *parameters, size_t count,
                                        const WsEventDelegateVTable *delegate, void *user, int *port)
{
    OasisKeyValue all[32];
    size_t n = 0, i;
    WsServer *server;

    all[n].key = "port";
    all[n++].value = "0";
    all[n].key = "bind-address";
    all[n++].value = bind_address ? bind_address : "127.0.0.1";
    for (i = 0; i < count && n < sizeof all / sizeof all[0]; i++)
        all[n++] = parameters[i];

    server = createWsServer(all, n, delegate, user);
    if (server == NULL) {
        printf("# createWsServer: %s\n", oasis_last_error());
        return NULL;
    }
    if (startWsServer(server) != 0 || (*port = wsServerPort(server)) <= 0) {
        printf("# startWsServer/wsServerPort: %s\n", oasis_last_error());
        destroyWsServer(server);
        return NULL;
    }
    return server;
}

/* A port on 127.0.0.1 that refuses connections: bound, never listening, kept until the
 * returned descriptor is closed (so no one else takes the port meanwhile). -1 on failure. */
static inline int tu_refusing_socket(int *port)
{
    struct sockaddr_in addr;
    socklen_t addr_len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(addr.sin_port);
    return fd;
}

/* "ws://127.0.0.1:PORT/path" into `buffer`. */
static inline const char *tu_url(char *buffer, size_t capacity, const char *host, int port, const char *path)
{
    snprintf(buffer, capacity, "ws://%s:%d%s", host, port, path ? path : "/");
    return buffer;
}

#endif /* OASIS_TEST_UTIL_H */
