/*
 * http_api.c - the HTTP server's C API from C, over real sockets on 127.0.0.1: create, start,
 * port, stop, restart and destroy with a NULL delegate; onRequest answering (what it reads of
 * the request, the answer it builds); an HttpRequest* kept after its callback gives EBADF;
 * header injection refused with EINVAL; a filter refusing with 401; createHttpWsService's
 * errors (EINVAL, EEXIST, EBADF), each failed call releasing its delegate; destroyHttpServer(NULL)
 * and httpServerRelease(NULL) are no-ops; a start from a callback while destroyHttpServer stops
 * the server fails; every delegate is released exactly once.
 */

#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- a minimal HTTP client ----------------------------------------------------------------- */

typedef struct answer {
    int status;
    char head[2048];
    char body[1024];
    size_t body_len;
} answer;

/* The value of header `name` in `head` (any case) copied into `out`; 0 when absent. */
static int header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *line = strstr(head, "\r\n");
    while (line != NULL && line[2] != '\r') {
        const char *start = line + 2, *end = strstr(start, "\r\n");
        if (end == NULL)
            return 0;
        if ((size_t)(end - start) > n && strncasecmp(start, name, n) == 0 && start[n] == ':') {
            const char *value = start + n + 1;
            size_t len;
            while (*value == ' ')
                value++;
            len = (size_t)(end - value);
            if (len >= cap)
                len = cap - 1;
            memcpy(out, value, len);
            out[len] = '\0';
            return 1;
        }
        line = end;
    }
    return 0;
}

/* Sends `request` on a new connection and reads one answer (head, then Content-Length bytes).
 * Returns 0, or -1 when no complete answer came within TU_TIMEOUT_MS. */
static int http_exchange(int port, const char *request, answer *out)
{
    struct sockaddr_in addr;
    struct timeval timeout = {TU_TIMEOUT_MS / 1000, 0};
    char buffer[4096], length_text[32];
    size_t have = 0, head_len = 0, body_len = 0;
    char *end;
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;

    memset(out, 0, sizeof *out);
    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request))
        goto done;
    for (;;) {
        ssize_t n;
        if (head_len == 0) {
            buffer[have] = '\0';
            end = strstr(buffer, "\r\n\r\n");
            if (end != NULL) {
                head_len = (size_t)(end - buffer) + 4;
                if (head_len >= sizeof out->head)
                    goto done;
                memcpy(out->head, buffer, head_len);
                out->head[head_len] = '\0';
                if (sscanf(out->head, "HTTP/1.%*d %d", &out->status) != 1)
                    goto done;
                if (header_value(out->head, "Content-Length", length_text, sizeof length_text))
                    body_len = (size_t)strtoul(length_text, NULL, 10);
                if (body_len >= sizeof out->body)
                    goto done;
            }
        }
        if (head_len != 0 && have >= head_len + body_len) {
            memcpy(out->body, buffer + head_len, body_len);
            out->body[body_len] = '\0';
            out->body_len = body_len;
            rc = 0;
            goto done;
        }
        if (have + 1 >= sizeof buffer)
            goto done;
        n = recv(fd, buffer + have, sizeof buffer - 1 - have, 0);
        if (n <= 0)
            goto done;
        have += (size_t)n;
    }
done:
    close(fd);
    return rc;
}

/* ---- the upstream delegate ---------------------------------------------------------------- */

/* Written by the callbacks under tu_lock(), read by main under it. */
static struct {
    HttpRequest *kept; /* the last request handle, kept beyond its callback */
    char method[16], path[64], query[64], probe[32], body[32];
    int body_len;
    int absent_rc, absent_errno;
    int injection_rc[4], injection_errno[4];
    int requests, filtered;
} seen;

static tu_counter upstream_released, service_released;

static int32_t on_filter(void *user, HttpRequest *request)
{
    char path[64];
    int refuse;
    (void)user;
    httpRequestPath(request, path, sizeof path);
    refuse = strncmp(path, "/private", 8) == 0;
    if (refuse)
        httpResponseAddHeader(request, "WWW-Authenticate", "Basic realm=\"camera\"");
    tu_lock();
    seen.filtered += refuse;
    tu_unlock_notify();
    return refuse ? 401 : 0;
}

static void on_request(void *user, HttpRequest *request)
{
    static const char *const bad[4][2] = {
        {"X-Injected", "a\r\nSet-Cookie: evil=1"},
        {"Bad Name", "v"},
        {"Content-Length", "5"},
        {"Transfer-Encoding", "chunked"},
    };
    const uint8_t *data = NULL;
    char absent[8];
    int i;
    (void)user;
    tu_lock();
    seen.kept = request;
    seen.requests++;
    httpRequestMethod(request, seen.method, sizeof seen.method);
    httpRequestPath(request, seen.path, sizeof seen.path);
    httpRequestQuery(request, seen.query, sizeof seen.query);
    httpRequestHeader(request, "x-probe", seen.probe, sizeof seen.probe);
    errno = 0;
    seen.absent_rc = httpRequestHeader(request, "X-Not-Sent", absent, sizeof absent);
    seen.absent_errno = errno;
    seen.body_len = httpRequestBody(request, &data);
    if (seen.body_len > 0 && (size_t)seen.body_len < sizeof seen.body) {
        memcpy(seen.body, data, (size_t)seen.body_len);
        seen.body[seen.body_len] = '\0';
    }
    for (i = 0; i < 4; i++) {
        errno = 0;
        seen.injection_rc[i] = httpResponseAddHeader(request, bad[i][0], bad[i][1]);
        seen.injection_errno[i] = errno;
    }
    tu_unlock_notify();
    httpResponseSetStatus(request, 201);
    httpResponseAddHeader(request, "X-From", "c");
    httpResponseSetBody(request, "text/plain", "hello from C", 12);
}

static void on_upstream_release(void *user)
{
    (void)user;
    tu_counter_add(&upstream_released, 1);
}

static void on_service_release(void *user)
{
    (void)user;
    tu_counter_add(&service_released, 1);
}

static const HttpUpStreamDelegateVTable upstream = {
    sizeof(HttpUpStreamDelegateVTable), on_filter, on_request, on_upstream_release,
};

static const WsEventDelegateVTable service = {
    sizeof(WsEventDelegateVTable), NULL, NULL, NULL, NULL, on_service_release,
};

static const OasisKeyValue server_params[] = {{"port", "0"}, {"bind-address", "127.0.0.1"}};

/* ---- the checks --------------------------------------------------------------------------- */

static void test_null_delegate(void)
{
    answer a;
    int port, ok;
    HttpServer *server = createHttpServer(server_params, 2, NULL, NULL);
    CHECK(server != NULL, "createHttpServer with a NULL delegate (%s)", oasis_last_error());
    if (server == NULL)
        return;
    CHECK_FAILS(httpServerPort(server) == -1, ENOTCONN, "httpServerPort before start: ENOTCONN");
    CHECK(startHttpServer(server) == 0, "startHttpServer");
    CHECK_FAILS(startHttpServer(server) == -1, EALREADY, "startHttpServer twice: EALREADY");
    port = httpServerPort(server);
    CHECK(port > 0, "httpServerPort gives the bound port (%d)", port);
    ok = http_exchange(port, "GET /anything HTTP/1.1\r\nHost: c\r\n\r\n", &a) == 0;
    CHECK(ok && a.status == 404, "no root, no delegate: 404 (got %d)", a.status);
    CHECK(stopHttpServer(server) == 0, "stopHttpServer");
    CHECK_FAILS(httpServerPort(server) == -1, ENOTCONN, "httpServerPort after stop: ENOTCONN");
    ok = startHttpServer(server) == 0;
    port = httpServerPort(server);
    CHECK(ok && port > 0, "started again (port %d)", port);
    ok = http_exchange(port, "GET / HTTP/1.1\r\nHost: c\r\n\r\n", &a) == 0;
    CHECK(ok && a.status == 404, "the restarted server answers (got %d)", a.status);
    CHECK(destroyHttpServer(server) == 0, "destroyHttpServer");
    CHECK_FAILS(httpServerPort(server) == -1, EBADF, "httpServerPort on a destroyed server: EBADF");
    CHECK_FAILS(destroyHttpServer(server) == -1, EBADF, "destroyHttpServer twice: EBADF");
    CHECK(destroyHttpServer(NULL) == 0, "destroyHttpServer(NULL) == 0");
    CHECK(httpServerRelease(NULL) == 0, "httpServerRelease(NULL) == 0");
    CHECK_FAILS(startHttpServer(NULL) == -1, EINVAL, "startHttpServer(NULL): EINVAL");
}

static void test_on_request(HttpServer *server, int port)
{
    answer a;
    char value[64];
    HttpRequest *kept;
    char method[16];
    int i, ok;
    const char *request = "POST /c%20api/./x?q=1&r HTTP/1.1\r\nHost: c\r\nX-Probe: 42\r\n"
                          "Content-Length: 4\r\n\r\nbody";

    ok = http_exchange(port, request, &a) == 0;
    CHECK(ok && a.status == 201, "onRequest's status 201 (got %d)", a.status);
    CHECK(ok && strcmp(a.body, "hello from C") == 0, "onRequest's body (got \"%s\")", a.body);
    CHECK(header_value(a.head, "X-From", value, sizeof value) && strcmp(value, "c") == 0, "onRequest's header");
    CHECK(header_value(a.head, "Content-Type", value, sizeof value) && strcmp(value, "text/plain") == 0,
          "onRequest's content type");
    CHECK(!header_value(a.head, "Set-Cookie", value, sizeof value) &&
              !header_value(a.head, "Transfer-Encoding", value, sizeof value),
          "no refused header reached the wire");
    CHECK(header_value(a.head, "Content-Length", value, sizeof value) && strcmp(value, "12") == 0,
          "the server's own Content-Length only");

    tu_lock();
    CHECK(seen.requests == 1, "onRequest ran once (%d)", seen.requests);
    CHECK(strcmp(seen.method, "POST") == 0, "httpRequestMethod (\"%s\")", seen.method);
    CHECK(strcmp(seen.path, "/c api/x") == 0, "httpRequestPath: decoded and cleaned (\"%s\")", seen.path);
    CHECK(strcmp(seen.query, "q=1&r") == 0, "httpRequestQuery: raw (\"%s\")", seen.query);
    CHECK(strcmp(seen.probe, "42") == 0, "httpRequestHeader, any case (\"%s\")", seen.probe);
    CHECK(seen.absent_rc == -1 && seen.absent_errno == ENOENT, "an absent header: -1 ENOENT");
    CHECK(seen.body_len == 4 && strcmp(seen.body, "body") == 0, "httpRequestBody (%d)", seen.body_len);
    for (i = 0; i < 4; i++)
        CHECK(seen.injection_rc[i] == -1 && seen.injection_errno[i] == EINVAL,
              "httpResponseAddHeader refusal %d: -1 EINVAL (%d, %d)", i, seen.injection_rc[i],
              seen.injection_errno[i]);
    kept = seen.kept;
    tu_unlock();

    CHECK_FAILS(httpResponseSetStatus(kept, 200) == -1, EBADF, "an HttpRequest* kept after its callback: EBADF");
    CHECK_FAILS(httpRequestMethod(kept, method, sizeof method) == -1, EBADF, "httpRequestMethod on it: EBADF");
    CHECK_FAILS(httpResponseSetStatus(NULL, 200) == -1, EINVAL, "httpResponseSetStatus(NULL): EINVAL");

    ok = http_exchange(port, "GET /private/x HTTP/1.1\r\nHost: c\r\n\r\n", &a) == 0;
    CHECK(ok && a.status == 401, "the filter refuses with 401 (got %d)", a.status);
    CHECK(header_value(a.head, "WWW-Authenticate", value, sizeof value) &&
              strcmp(value, "Basic realm=\"camera\"") == 0,
          "with the filter's WWW-Authenticate");
    tu_lock();
    CHECK(seen.requests == 1 && seen.filtered == 1, "a refused request does not reach onRequest");
    tu_unlock();
    (void)server;
}

static void test_services(HttpServer *server)
{
    int released_before = tu_counter_get(&service_released);
    int failures = 0, released;

    CHECK_FAILS(createHttpWsService(NULL, "/ws", NULL, 0, &service, NULL) == -1, EINVAL,
                "createHttpWsService(NULL server): EINVAL");
    failures++;
    CHECK_FAILS(createHttpWsService(server, NULL, NULL, 0, &service, NULL) == -1, EINVAL,
                "createHttpWsService(NULL path): EINVAL");
    failures++;
    CHECK_FAILS(createHttpWsService(server, "ws", NULL, 0, &service, NULL) == -1, EINVAL,
                "a path without a leading '/': EINVAL");
    failures++;
    CHECK_FAILS(createHttpWsService(server, "/ws?x=1", NULL, 0, &service, NULL) == -1, EINVAL,
                "a path with '?': EINVAL");
    failures++;
    CHECK_FAILS(createHttpWsService(server, "/ws", NULL, 0, NULL, NULL) == -1, EINVAL,
                "a NULL delegate: EINVAL");
    CHECK(createHttpWsService(server, "/ws", NULL, 0, &service, NULL) == 0, "createHttpWsService(\"/ws\")");
    CHECK_FAILS(createHttpWsService(server, "/ws", NULL, 0, &service, NULL) == -1, EEXIST,
                "the same path again: EEXIST");
    failures++;
    released = tu_counter_wait(&service_released, released_before + failures, TU_TIMEOUT_MS);
    CHECK(released, "each failed call released its delegate (%d of %d)",
          tu_counter_get(&service_released) - released_before, failures);
}

/* A start made while destroyHttpServer waits for the connections to close, from the onClose of
 * a service connection that very stop closes: it must fail (EINVAL), and nothing may listen
 * once destroyHttpServer has returned. */
static HttpServer *restarted;
static tu_counter restart_opens, restart_released;
static struct {
    int tried, rc, err, port;
} restart;

static void restart_on_open(void *user, WsEvent *event)
{
    (void)user;
    (void)event;
    tu_counter_add(&restart_opens, 1);
}

static void restart_on_close(void *user, WsEvent *event)
{
    int rc, err, port;
    (void)user;
    (void)event;
    errno = 0;
    rc = startHttpServer(restarted);
    err = errno;
    port = httpServerPort(restarted);
    tu_lock();
    if (!restart.tried) {
        restart.tried = 1;
        restart.rc = rc;
        restart.err = err;
        restart.port = port;
    }
    tu_unlock_notify();
}

static void restart_on_release(void *user)
{
    (void)user;
    tu_counter_add(&restart_released, 1);
}

static const WsEventDelegateVTable restart_service = {
    sizeof(WsEventDelegateVTable), restart_on_open, NULL, NULL, restart_on_close, restart_on_release,
};

static const WsEventDelegateVTable plain_client = {
    sizeof(WsEventDelegateVTable), NULL, NULL, NULL, NULL, NULL,
};

static void test_start_during_destroy(void)
{
    char url[64];
    WsConnection *conn, *late;
    int ok;

    restarted = createHttpServer(server_params, 2, NULL, NULL);
    ok = restarted != NULL && createHttpWsService(restarted, "/ws", NULL, 0, &restart_service, NULL) == 0 &&
         startHttpServer(restarted) == 0;
    CHECK(ok, "a server whose service's onClose starts it again (%s)", oasis_last_error());
    if (!ok)
        return;
    conn = wsOpenConnection(tu_url(url, sizeof url, "127.0.0.1", httpServerPort(restarted), "/ws"), NULL, 0,
                            &plain_client, NULL, TU_TIMEOUT_MS);
    CHECK(conn != NULL && tu_counter_wait(&restart_opens, 1, TU_TIMEOUT_MS), "a connection to its service");
    CHECK(destroyHttpServer(restarted) == 0, "destroyHttpServer, whose stop runs that onClose");
    CHECK(restart.tried && restart.rc == -1 && restart.err == EINVAL,
          "startHttpServer inside onClose during destroyHttpServer: -1/EINVAL (%d/%d, port %d)", restart.rc,
          restart.err, restart.port);
    if (restart.port > 0) {
        late = wsOpenConnection(tu_url(url, sizeof url, "127.0.0.1", restart.port, "/ws"), NULL, 0, &plain_client,
                                NULL, TU_TIMEOUT_MS);
        CHECK(late == NULL, "nothing listens once destroyHttpServer has returned");
        wsConnectionRelease(late);
    }
    CHECK(tu_counter_wait(&restart_released, 1, TU_TIMEOUT_MS), "the destroyed server's service delegate is released");
    wsConnectionRelease(conn);
}

int main(void)
{
    HttpServer *server;
    int port = 0, ok;

    CHECK(oasis_initialize(NULL, 0) == 0, "oasis_initialize");
    test_null_delegate();
    test_start_during_destroy();

    server = createHttpServer(server_params, 2, &upstream, NULL);
    CHECK(server != NULL, "createHttpServer with a filter and onRequest (%s)", oasis_last_error());
    if (server != NULL) {
        ok = startHttpServer(server) == 0;
        port = httpServerPort(server);
        CHECK(ok && port > 0, "started on port %d", port);
        test_on_request(server, port);
        test_services(server);
        CHECK(destroyHttpServer(server) == 0, "destroyHttpServer");
        CHECK(tu_counter_wait(&upstream_released, 1, TU_TIMEOUT_MS), "the upstream delegate was released");
        CHECK_FAILS(createHttpWsService(server, "/late", NULL, 0, &service, NULL) == -1, EBADF,
                    "createHttpWsService on a destroyed server: EBADF");
        ok = tu_counter_wait(&service_released, 7, TU_TIMEOUT_MS);
        CHECK(ok, "every service delegate was released: the failed calls', the service's (%d of 7)",
              tu_counter_get(&service_released));
    }
    CHECK(oasis_finalize() == 0, "oasis_finalize");
    CHECK(tu_counter_get(&upstream_released) == 1, "the upstream delegate was released exactly once (%d)",
          tu_counter_get(&upstream_released));
    CHECK(tu_counter_get(&service_released) == 7, "each service delegate exactly once (%d of 7)",
          tu_counter_get(&service_released));
    return tu_summary();
}
