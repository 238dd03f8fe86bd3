/*
 * autobahn_client.c - the library as a WebSocket client under the Autobahn|Testsuite
 * (fuzzingserver mode), over the C API of oasis_net.h only.
 *
 * Run by tools/autobahn/run-client-tests.sh, which sets in the environment:
 *   AUTOBAHN_URL    ws://127.0.0.1:PORT or wss://127.0.0.1:PORT (the fuzzing server)
 *   AUTOBAHN_AGENT  the name the results are filed under
 * optional:
 *   AUTOBAHN_CASE_TIMEOUT  seconds one case may take before it is abandoned (default 120)
 *   AUTOBAHN_CA     wss only: PEM file(s), newline-separated, that the server's certificate must
 *                   chain to (ca-certs-file-path). Unset or empty: the server's certificate is not
 *                   checked (tls-disable-certificate-validation=1).
 *
 * It opens $URL/getCaseCount and reads the case count N from one text message; then for each
 * case i in 1..N opens $URL/runCase?case=i&agent=AGENT and echoes every text and binary message
 * back with the same type until onClose; finally it opens $URL/updateReports?agent=AGENT and
 * waits for that connection to close. Every wait is bounded.
 *
 * Exit status: 0 when every connection ran (the verdict on each case is in the suite's report),
 * 1 when a case could not be opened or timed out, 2 when the run could not start at all.
 *
 * Not a self-checking test: tests/run-tests.sh does not run it on its own.
 */
#define _POSIX_C_SOURCE 200809L

#include "oasis_net.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum session_mode { MODE_COUNT, MODE_ECHO, MODE_REPORT };

/* What one connection's callbacks saw; the main thread waits on it. */
typedef struct session {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    enum session_mode mode;
    int opened;
    int errored;
    int error_code;
    int closed;
    int close_code;
    int released;
    long case_count;          /* MODE_COUNT: the number read, -1 until then */
    unsigned long messages;   /* messages received (and, in MODE_ECHO, echoed) */
    unsigned long send_failures;
    int first_send_errno;
} session_t;

static void lock(session_t *s) { pthread_mutex_lock(&s->mutex); }

static void unlock_signal(session_t *s)
{
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mutex);
}

static void on_open(void *user, WsEvent *event)
{
    session_t *s = (session_t *)user;
    (void)event;
    lock(s);
    s->opened = 1;
    unlock_signal(s);
}

static void on_message(void *user, WsEvent *event)
{
    session_t *s = (session_t *)user;
    enum ws_message_t type = wsEventMessageType(event);
    WsConnection *conn = wsEventConnection(event);
    const uint8_t *data = NULL;
    int32_t size;
    int32_t rc = 0;
    enum session_mode mode;

    if (type != kWsMessageText && type != kWsMessageBinary)
        return; /* pings are answered by the library; pongs need nothing */
    lock(s);
    mode = s->mode;
    s->messages++;
    unlock_signal(s);

    size = wsEventData(event, &data);
    if (size < 0) {
        fprintf(stderr, "autobahn_client: wsEventData failed: %s\n", oasis_last_error());
        return;
    }
    if (mode == MODE_COUNT) {
        char text[32];
        size_t n = (size_t)size < sizeof text - 1 ? (size_t)size : sizeof text - 1;
        long count;
        char *end;
        if (data != NULL)
            memcpy(text, data, n);
        text[n] = '\0';
        count = strtol(text, &end, 10);
        if (end == text || count < 0)
            count = -1;
        lock(s);
        s->case_count = count;
        unlock_signal(s);
        if (count < 0)
            fprintf(stderr, "autobahn_client: bad case count message '%s'\n", text);
        return;
    }
    if (mode != MODE_ECHO)
        return;
    if (type == kWsMessageText)
        rc = wsSendTextLength(conn, (const char *)data, (size_t)size);
    else
        rc = wsSendBinary(conn, data, (size_t)size);
    if (rc != 0) {
        int err = errno;
        lock(s);
        if (s->send_failures++ == 0)
            s->first_send_errno = err;
        unlock_signal(s);
        /* ENOTCONN is expected when the peer already started closing. */
        if (err != ENOTCONN)
            fprintf(stderr, "autobahn_client: echo of a %d-byte %s message failed: errno %d (%s)\n",
                    (int)size, type == kWsMessageText ? "text" : "binary", err, oasis_last_error());
    }
}

static void on_error(void *user, WsEvent *event)
{
    session_t *s = (session_t *)user;
    int code = wsEventStatusCode(event);
    lock(s);
    if (!s->errored) {
        s->errored = 1;
        s->error_code = code;
    }
    unlock_signal(s);
}

static void on_close(void *user, WsEvent *event)
{
    session_t *s = (session_t *)user;
    int code = wsEventStatusCode(event);
    lock(s);
    if (s->closed)
        fprintf(stderr, "autobahn_client: LIBRARY BUG: a second onClose (%d after %d)\n", code,
                s->close_code);
    s->closed = 1;
    s->close_code = code;
    unlock_signal(s);
}

static void on_release(void *user)
{
    session_t *s = (session_t *)user;
    lock(s);
    if (s->released)
        fprintf(stderr, "autobahn_client: LIBRARY BUG: release(user) called twice\n");
    s->released = 1;
    unlock_signal(s);
}

static session_t *session_new(enum session_mode mode)
{
    session_t *s = (session_t *)calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mutex, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->mode = mode;
    s->case_count = -1;
    return s;
}

static void session_free(session_t *s)
{
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mutex);
    free(s);
}

static struct timespec deadline_after_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* The connection is over: onClose ran, or onError ran before it ever opened. */
static int session_done(const session_t *s) { return s->closed || (s->errored && !s->opened); }

/* Waits (bounded) until the connection is over; returns 1 when it is, 0 on timeout. */
static int wait_done(session_t *s, long ms)
{
    struct timespec until = deadline_after_ms(ms);
    int done;
    lock(s);
    while (!session_done(s)) {
        if (pthread_cond_timedwait(&s->cond, &s->mutex, &until) == ETIMEDOUT)
            break;
    }
    done = session_done(s);
    pthread_mutex_unlock(&s->mutex);
    return done;
}

/* Waits (bounded) for release(user); returns 1 when it came. */
static int wait_released(session_t *s, long ms)
{
    struct timespec until = deadline_after_ms(ms);
    int released;
    lock(s);
    while (!s->released) {
        if (pthread_cond_timedwait(&s->cond, &s->mutex, &until) == ETIMEDOUT)
            break;
    }
    released = s->released;
    pthread_mutex_unlock(&s->mutex);
    return released;
}

/* Client parameters: room for the 9.x cases (16 MiB messages, echoed whole); main() adds the TLS
 * one for a wss:// URL in the last slot. */
static OasisKeyValue client_params[] = {
    {"websocket-message-size-max", "33554432"}, /* 32 MiB */
    {"send-buffer-size-max", "67108864"},       /* 64 MiB */
    {"handshake-timeout-ms", "10000"},
    {"close-timeout-ms", "5000"},
    {NULL, NULL},
};
static size_t client_param_count = sizeof client_params / sizeof client_params[0] - 1;

static const WsEventDelegateVTable delegate_vtable = {
    sizeof(WsEventDelegateVTable), on_open, on_message, on_error, on_close, on_release,
};

/* One connection from open to release. Returns 0 when it opened and ended within `ms`. The
 * caller frees the session only when s->released is set (otherwise a callback could still touch
 * it, so it is leaked on purpose). */
static int run_connection(const char *url, session_t *s, long ms, const char *what)
{
    int ok = 1;
    WsConnection *conn = wsOpenConnection(url, client_params, client_param_count,
                                          &delegate_vtable, s, 10000);
    if (conn == NULL) {
        int err = errno;
        fprintf(stderr, "autobahn_client: %s: wsOpenConnection(%s) failed: errno %d (%s)\n", what,
                url, err, oasis_last_error());
        ok = 0;
        wait_done(s, 2000);
    } else {
        if (!wait_done(s, ms)) {
            fprintf(stderr, "autobahn_client: %s: not closed after %ld ms: closing it\n", what, ms);
            ok = 0;
            wsCloseConnection(conn);
            if (!wait_done(s, 10000))
                fprintf(stderr, "autobahn_client: LIBRARY BUG? %s: no onClose 10 s after "
                                "wsCloseConnection\n", what);
        }
        if (wsConnectionRelease(conn) != 0)
            fprintf(stderr, "autobahn_client: %s: wsConnectionRelease failed: %s\n", what,
                    oasis_last_error());
    }
    if (!wait_released(s, 10000)) {
        fprintf(stderr, "autobahn_client: LIBRARY BUG? %s: release(user) not called within 10 s "
                        "of the end of the connection\n", what);
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* Percent-encodes everything but RFC 3986 unreserved characters. */
static void url_encode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *in != '\0' && n + 4 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void)
{
    const char *base = getenv("AUTOBAHN_URL");
    const char *agent_raw = getenv("AUTOBAHN_AGENT");
    const char *timeout_env = getenv("AUTOBAHN_CASE_TIMEOUT");
    const char *ca_env = getenv("AUTOBAHN_CA");
    long case_ms = 120000;
    char agent[256];
    char url[1024];
    long count, i;
    int failures = 0;
    session_t *s;
    double started = now_seconds();
    static const OasisKeyValue init_params[] = {{"offs-disable", "1"}};

    if (base == NULL || base[0] == '\0') {
        fprintf(stderr, "usage: AUTOBAHN_URL=ws://127.0.0.1:PORT [AUTOBAHN_AGENT=name] %s\n"
                        "(normally run by tools/autobahn/run-client-tests.sh)\n",
                "autobahn_client");
        return 2;
    }
    url_encode(agent_raw != NULL && agent_raw[0] != '\0' ? agent_raw : "oasisnet", agent,
               sizeof agent);
    if (timeout_env != NULL && atol(timeout_env) > 0)
        case_ms = atol(timeout_env) * 1000L;
    if (strncmp(base, "wss://", 6) == 0) {
        OasisKeyValue *tls = &client_params[client_param_count++];
        if (ca_env != NULL && ca_env[0] != '\0') {
            tls->key = "ca-certs-file-path";
            tls->value = ca_env;
        } else {
            tls->key = "tls-disable-certificate-validation";
            tls->value = "1";
        }
        printf("autobahn_client: TLS, %s=%s\n", tls->key, tls->value);
        fflush(stdout);
    }

    if (oasis_initialize(init_params, 1) != 0) {
        fprintf(stderr, "autobahn_client: oasis_initialize failed: %s\n", oasis_last_error());
        return 2;
    }

    /* 1. the number of cases */
    snprintf(url, sizeof url, "%s/getCaseCount", base);
    s = session_new(MODE_COUNT);
    if (s == NULL)
        return 2;
    if (run_connection(url, s, 30000, "getCaseCount") != 0 && !s->released) {
        fprintf(stderr, "autobahn_client: getCaseCount failed\n");
        oasis_finalize();
        return 2;
    }
    count = s->case_count;
    if (s->released)
        session_free(s);
    if (count <= 0) {
        fprintf(stderr, "autobahn_client: no case count from %s/getCaseCount\n", base);
        oasis_finalize();
        return 2;
    }
    printf("autobahn_client: %ld cases\n", count);
    fflush(stdout);

    /* 2. every case: echo until the suite closes */
    for (i = 1; i <= count; i++) {
        char what[64];
        double t0 = now_seconds();
        int rc;
        snprintf(url, sizeof url, "%s/runCase?case=%ld&agent=%s", base, i, agent);
        snprintf(what, sizeof what, "case %ld", i);
        s = session_new(MODE_ECHO);
        if (s == NULL)
            return 2;
        rc = run_connection(url, s, case_ms, what);
        if (rc != 0)
            failures++;
        printf("case %ld/%ld: %s, %lu message(s), %s %d%s, %.2f s\n", i, count,
               rc == 0 ? "done" : "FAILED", s->messages,
               s->closed ? "close" : (s->errored ? "error" : "no close"),
               s->closed ? s->close_code : s->error_code,
               s->send_failures ? " (some echoes failed)" : "", now_seconds() - t0);
        fflush(stdout);
        if (s->released)
            session_free(s);
    }

    /* 3. ask the suite to write its reports */
    snprintf(url, sizeof url, "%s/updateReports?agent=%s", base, agent);
    s = session_new(MODE_REPORT);
    if (s == NULL)
        return 2;
    if (run_connection(url, s, 120000, "updateReports") != 0)
        failures++;
    if (s->released)
        session_free(s);

    if (oasis_finalize() != 0)
        fprintf(stderr, "autobahn_client: oasis_finalize failed: %s\n", oasis_last_error());
    printf("autobahn_client: %ld cases in %.1f s, %d connection(s) failed or timed out\n", count,
           now_seconds() - started, failures);
    return failures ? 1 : 0;
}
