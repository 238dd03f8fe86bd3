/*
 * api_bad_input.c - every C function of oasis_net.h fed with what it must refuse: NULL
 * pointers, calls before oasis_initialize, stale handles, bad parameter values, malformed URLs,
 * invalid text (also replies made from a received message), oversized pings, invalid close codes, sends on closed connections, refused
 * connections, handles of one kind passed as another, a start (from a callback) while
 * destroyWsServer stops the server, oasis_initialize in a callback oasis_finalize runs. Each
 * refusal must be -1/NULL with the documented errno and a last-error text, and must leave the
 * library working.
 */

#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- log capture ------------------------------------------------------------------------- */

static struct {
    pthread_mutex_t mutex;
    int lines;
    char text[16][256]; /* the most recent lines, as a ring */
} captured = {PTHREAD_MUTEX_INITIALIZER, 0, {{0}}};

static void capture_log(void *user, int32_t level, const char *line)
{
    (void)user;
    (void)level;
    pthread_mutex_lock(&captured.mutex);
    snprintf(captured.text[captured.lines % 16], sizeof captured.text[0], "%s", line);
    captured.lines++;
    pthread_mutex_unlock(&captured.mutex);
}

static int log_lines(void)
{
    int n;
    pthread_mutex_lock(&captured.mutex);
    n = captured.lines;
    pthread_mutex_unlock(&captured.mutex);
    return n;
}

/* Whether a line logged after line number `since` contains `needle`. */
static int logged_since(int since, const char *needle)
{
    int i, found = 0;
    pthread_mutex_lock(&captured.mutex);
    if (captured.lines - since > 16)
        since = captured.lines - 16;
    for (i = since; i < captured.lines && !found; i++)
        found = strstr(captured.text[i % 16], needle) != NULL;
    pthread_mutex_unlock(&captured.mutex);
    return found;
}

/* ---- a delegate that counts, and probes event functions from inside a callback ---------- */

static tu_counter released, opens, closes, errors;
static int delegates_created;
/* Set by on_release for the delegate whose user pointer is its address: the live connection's. */
static int live_delegate_released;

static struct {
    int done;
    int data_null_rc, data_null_errno;
    int text_null_rc, text_null_errno;
    int finalize_rc, finalize_errno;
    WsEvent *unretained; /* an event used after its callback returned, without a retain */
} probe;

/* Event misuse from a callback: a release without a retain, and a retained event whose data
 * pointer (fetched after the retain) is read after the callback, on another thread. */
static struct {
    int done;
    int release_unretained_rc, release_unretained_errno;
    int retain_rc;
    WsEvent *kept;
    const uint8_t *kept_data;
    int kept_length;
} misuse;

/* Text replies from inside the server's onMessage: a received text message is sent on without a
 * second UTF-8 check only when the reply is exactly its bytes; anything else is checked. */
static struct {
    int text_started, done_text, done_binary;
    int own_rc, copy_rc, copy_length_rc;        /* the message itself, a copy: 0 */
    int prefix_rc, prefix_errno;                /* its own bytes, cut inside a sequence: EINVAL */
    int changed_rc, changed_errno;              /* a same-length copy made invalid: EINVAL */
    int changed_length_rc, changed_length_errno;
    int binary_rc, binary_errno;                /* a binary message's bytes sent as text: EINVAL */
    int binary_text_rc, binary_text_errno;
} reply;

/* The server's side of the reply checks (the delegate is shared with the client, whose own
 * echoes of these messages find the checks done). */
static int reply_checks(WsEvent *event)
{
    const uint8_t *data = NULL;
    ws_message_t type = wsEventMessageType(event);
    int32_t length = wsEventData(event, &data);
    WsConnection *conn = wsEventConnection(event);
    char copy[8];
    int first;

    if (type == kWsMessageText && length == 5 && memcmp(data, "caf\xc3\xa9", 5) == 0) {
        tu_lock();
        first = !reply.text_started;
        reply.text_started = 1;
        tu_unlock();
        if (!first)
            return 1;
        memcpy(copy, data, 5);
        copy[5] = '\0';
        reply.own_rc = wsSendTextLength(conn, (const char *)data, 5);
        reply.copy_rc = wsSendText(conn, copy);
        reply.copy_length_rc = wsSendTextLength(conn, copy, 5);
        errno = 0;
        reply.prefix_rc = wsSendTextLength(conn, (const char *)data, 4);
        reply.prefix_errno = errno;
        copy[4] = '\xff';
        errno = 0;
        reply.changed_rc = wsSendText(conn, copy);
        reply.changed_errno = errno;
        errno = 0;
        reply.changed_length_rc = wsSendTextLength(conn, copy, 5);
        reply.changed_length_errno = errno;
        tu_lock();
        reply.done_text = 1;
        tu_unlock_notify();
        return 1;
    }
    if (type == kWsMessageBinary && length == 2 && memcmp(data, "\xff\xfe", 2) == 0) {
        memcpy(copy, data, 2);
        copy[2] = '\0';
        errno = 0;
        reply.binary_rc = wsSendTextLength(conn, (const char *)data, 2);
        reply.binary_errno = errno;
        errno = 0;
        reply.binary_text_rc = wsSendText(conn, copy);
        reply.binary_text_errno = errno;
        tu_lock();
        reply.done_binary = 1;
        tu_unlock_notify();
        return 1;
    }
    return 0;
}

static void on_open(void *user, WsEvent *event)
{
    (void)user;
    (void)event;
    tu_counter_add(&opens, 1);
}

static void on_message(void *user, WsEvent *event)
{
    int rc_data, errno_data, rc_text, errno_text, rc_fin, errno_fin;
    const uint8_t *data = NULL;
    (void)user;
    if (reply_checks(event))
        return;
    if (wsEventMessageType(event) == kWsMessageText && wsEventData(event, &data) == 6 && memcmp(data, "events", 6) == 0) {
        int release_rc, release_errno, retain_rc, length;
        const uint8_t *kept_data = NULL;
        errno = 0;
        release_rc = wsEventRelease(event);
        release_errno = errno;
        retain_rc = wsEventRetain(event);
        length = wsEventData(event, &kept_data);
        tu_lock();
        misuse.release_unretained_rc = release_rc;
        misuse.release_unretained_errno = release_errno;
        misuse.retain_rc = retain_rc;
        misuse.kept = event;
        misuse.kept_data = kept_data;
        misuse.kept_length = length;
        misuse.done = 1;
        tu_unlock_notify();
        return;
    }
    if (wsEventMessageType(event) != kWsMessageText || wsEventData(event, &data) != 5 || memcmp(data, "probe", 5) != 0)
        return;
    errno = 0;
    rc_data = wsEventData(event, NULL);
    errno_data = errno;
    errno = 0;
    rc_text = wsEventText(event, NULL, 10);
    errno_text = errno;
    errno = 0;
    rc_fin = oasis_finalize();
    errno_fin = errno;
    tu_lock();
    probe.data_null_rc = rc_data;
    probe.data_null_errno = errno_data;
    probe.text_null_rc = rc_text;
    probe.text_null_errno = errno_text;
    probe.finalize_rc = rc_fin;
    probe.finalize_errno = errno_fin;
    probe.unretained = event;
    probe.done = 1;
    tu_unlock_notify();
}

static void on_error(void *user, WsEvent *event)
{
    (void)user;
    (void)event;
    tu_counter_add(&errors, 1);
}

static void on_close(void *user, WsEvent *event)
{
    (void)user;
    (void)event;
    tu_counter_add(&closes, 1);
}

static void on_release(void *user)
{
    tu_lock();
    released.value++;
    if (user == &live_delegate_released)
        live_delegate_released++;
    tu_unlock_notify();
}

static const WsEventDelegateVTable delegate = {
    sizeof(WsEventDelegateVTable), on_open, on_message, on_error, on_close, on_release,
};

/* createWsServer / wsOpenConnection with our counting delegate (each call owes one release). */
static WsServer *create_server(const OasisKeyValue *parameters, size_t count)
{
    delegates_created++;
    return createWsServer(parameters, count, &delegate, NULL);
}

static WsConnection *open_connection(const char *url, int32_t timeout_msec)
{
    delegates_created++;
    return wsOpenConnection(url, NULL, 0, &delegate, NULL, timeout_msec);
}

/* ---- the checks ----------------------------------------------------------------------------- */

static const OasisKeyValue server_params[] = {{"port", "0"}, {"bind-address", "127.0.0.1"}};

static void test_before_initialize(void)
{
    const OasisKeyValue bad_level[] = {{"log-level", "loud"}};
    const OasisKeyValue zero_threads[] = {{"event-loop-threads", "0"}};
    const OasisKeyValue text_threads[] = {{"event-loop-threads", "many"}};

    CHECK(oasis_last_error() != NULL, "oasis_last_error() is never NULL");
    CHECK_FAILS(create_server(server_params, 2) == NULL, EPERM, "createWsServer before oasis_initialize: EPERM");
    CHECK_FAILS(open_connection("ws://127.0.0.1:1/", 1000) == NULL, EPERM,
                "wsOpenConnection before oasis_initialize: EPERM");
    CHECK(oasis_finalize() == 0, "oasis_finalize before oasis_initialize returns 0");

    CHECK_FAILS(oasis_initialize(NULL, 2) == -1, EINVAL, "oasis_initialize(NULL, 2): EINVAL");
    CHECK_FAILS(oasis_initialize(bad_level, 1) == -1, EINVAL, "oasis_initialize(log-level=loud): EINVAL");
    CHECK(strstr(oasis_last_error(), "log-level") != NULL, "the last error names log-level (\"%s\")", oasis_last_error());
    CHECK_FAILS(oasis_initialize(zero_threads, 1) == -1, EINVAL, "oasis_initialize(event-loop-threads=0): EINVAL");
    CHECK(strstr(oasis_last_error(), "event-loop-threads") != NULL, "the last error names event-loop-threads (\"%s\")",
          oasis_last_error());
    CHECK_FAILS(oasis_initialize(text_threads, 1) == -1, EINVAL, "oasis_initialize(event-loop-threads=many): EINVAL");
    CHECK_FAILS(create_server(server_params, 2) == NULL, EPERM, "a failed oasis_initialize leaves it uninitialized");

    CHECK_FAILS(oasis_log_set_level(-1) == -1, EINVAL, "oasis_log_set_level(-1): EINVAL");
    CHECK_FAILS(oasis_log_set_level(6) == -1, EINVAL, "oasis_log_set_level(6): EINVAL");
    CHECK(oasis_log_get_level() == OASIS_LOG_WARN, "the log level is still WARN");
}

static void test_initialize(void)
{
    const OasisKeyValue params[] = {{"offs-disable", "1"}, {"no-such-init-key", "1"}};
    int mark = log_lines();
    CHECK(oasis_initialize(params, 2) == 0, "oasis_initialize with an unknown key succeeds");
    CHECK(logged_since(mark, "no-such-init-key"), "and logs the unknown key");
    CHECK(oasis_initialize(NULL, 0) == 0, "oasis_initialize again returns 0");
}

static void test_null_handles(void)
{
    const uint8_t *data = NULL;
    char buffer[16];
    int mark;
    const OasisKeyValue null_key[] = {{NULL, "0"}};
    const OasisKeyValue null_value[] = {{"port", NULL}};

    CHECK_FAILS(create_server(NULL, 1) == NULL, EINVAL, "createWsServer(parameters NULL, count 1)");
    CHECK_FAILS(create_server(null_key, 1) == NULL, EINVAL, "createWsServer with a NULL key");
    CHECK_FAILS(create_server(null_value, 1) == NULL, EINVAL, "createWsServer with a NULL value");
    CHECK_FAILS(startWsServer(NULL) == -1, EINVAL, "startWsServer(NULL)");
    CHECK_FAILS(stopWsServer(NULL) == -1, EINVAL, "stopWsServer(NULL)");
    CHECK_FAILS(wsServerShutdown(NULL) == -1, EINVAL, "wsServerShutdown(NULL)");
    /* Ending NULL is a no-op, as free(NULL) is. */
    CHECK(destroyWsServer(NULL) == 0, "destroyWsServer(NULL) is a no-op");
    CHECK_FAILS(wsServerPort(NULL) == -1, EINVAL, "wsServerPort(NULL)");
    CHECK_FAILS(wsServerRetain(NULL) == -1, EINVAL, "wsServerRetain(NULL)");
    CHECK(wsServerRelease(NULL) == 0, "wsServerRelease(NULL) is a no-op");

    CHECK_FAILS(open_connection(NULL, 1000) == NULL, EINVAL, "wsOpenConnection(url NULL)");
    delegates_created++;
    CHECK_FAILS(wsOpenConnection("ws://127.0.0.1:1/", NULL, 1, &delegate, NULL, 1000) == NULL, EINVAL,
                "wsOpenConnection(parameters NULL, count 1)");
    CHECK_FAILS(wsSendText(NULL, "x") == -1, EINVAL, "wsSendText(NULL, ...)");
    CHECK_FAILS(wsSendTextLength(NULL, "x", 1) == -1, EINVAL, "wsSendTextLength(NULL, ...)");
    CHECK_FAILS(wsSendBinary(NULL, "x", 1) == -1, EINVAL, "wsSendBinary(NULL, ...)");
    CHECK_FAILS(wsSendPing(NULL, NULL, 0) == -1, EINVAL, "wsSendPing(NULL, ...)");
    CHECK_FAILS(wsCloseConnection(NULL) == -1, EINVAL, "wsCloseConnection(NULL)");
    CHECK_FAILS(wsCloseConnectionWithStatus(NULL, 1000, NULL) == -1, EINVAL, "wsCloseConnectionWithStatus(NULL, ...)");
    CHECK_FAILS(wsConnectionPeerAddress(NULL, buffer, sizeof buffer) == -1, EINVAL, "wsConnectionPeerAddress(NULL, ...)");
    CHECK_FAILS(wsConnectionProtocol(NULL, buffer, sizeof buffer) == -1, EINVAL, "wsConnectionProtocol(NULL, ...)");
    CHECK_FAILS(wsConnectionRequestPath(NULL, buffer, sizeof buffer) == -1, EINVAL, "wsConnectionRequestPath(NULL, ...)");
    CHECK_FAILS(wsConnectionRequestQuery(NULL, buffer, sizeof buffer) == -1, EINVAL, "wsConnectionRequestQuery(NULL, ...)");
    CHECK_FAILS(wsConnectionRequestHeader(NULL, "host", buffer, sizeof buffer) == -1, EINVAL,
                "wsConnectionRequestHeader(NULL, ...)");
    CHECK_FAILS(wsConnectionSetUserData(NULL, buffer) == -1, EINVAL, "wsConnectionSetUserData(NULL, ...)");
    CHECK_FAILS(wsConnectionGetUserData(NULL) == NULL, EINVAL, "wsConnectionGetUserData(NULL)");
    CHECK_FAILS(wsConnectionIsOpen(NULL) == -1, EINVAL, "wsConnectionIsOpen(NULL)");
    CHECK_FAILS(wsConnectionRetain(NULL) == -1, EINVAL, "wsConnectionRetain(NULL)");
    CHECK(wsConnectionRelease(NULL) == 0, "wsConnectionRelease(NULL) is a no-op");

    CHECK(wsEventMessageType(NULL) == kWsMessageUnknown, "wsEventMessageType(NULL) is kWsMessageUnknown");
    CHECK_FAILS(wsEventData(NULL, &data) == -1, EINVAL, "wsEventData(NULL, ...)");
    CHECK_FAILS(wsEventText(NULL, buffer, sizeof buffer) == -1, EINVAL, "wsEventText(NULL, ...)");
    CHECK_FAILS(wsEventStatusCode(NULL) == -1, EINVAL, "wsEventStatusCode(NULL)");
    CHECK_FAILS(wsEventConnection(NULL) == NULL, EINVAL, "wsEventConnection(NULL)");
    CHECK_FAILS(wsEventRetain(NULL) == -1, EINVAL, "wsEventRetain(NULL)");
    CHECK(wsEventRelease(NULL) == 0, "wsEventRelease(NULL) is a no-op");

    /* The log hook is called before oasis_log_message returns, and in order: a line logged after
     * a dropped one shows that the dropped one is not merely late. */
    mark = log_lines();
    oasis_log_message(OASIS_LOG_ERROR, NULL, "a line without a tag");
    CHECK(logged_since(mark, "a line without a tag"), "oasis_log_message with a NULL tag writes the line");
    mark = log_lines();
    oasis_log_message(OASIS_LOG_ERROR, "tag", NULL);
    /* (Lines from the event loop, such as the onError of the failed opens above, may arrive
     * meanwhile: only the lines of this call are counted.) */
    CHECK(logged_since(mark, "oasis_log_message") && logged_since(mark, "NULL") && !logged_since(mark, "[tag]"),
          "oasis_log_message with a NULL message writes only the library's warning about it");
    mark = log_lines();
    oasis_log_message(OASIS_LOG_ERROR, NULL, NULL);
    CHECK(logged_since(mark, "oasis_log_message") && !logged_since(mark, "[app]"),
          "oasis_log_message(NULL, NULL) likewise");
    mark = log_lines();
    oasis_log_message(99, "tag", "a level that does not exist");
    oasis_log_message(OASIS_LOG_ERROR, "tag", "the line after it");
    CHECK(logged_since(mark, "the line after it") && !logged_since(mark, "a level that does not exist"),
          "oasis_log_message with level 99 writes nothing, while the next line arrives");
}

static void test_server_parameters(void)
{
    static const struct {
        const char *key, *value;
    } bad[] = {
        {"port", "70000"},
        {"port", "abc"},
        {"port", "-1"},
        {"websocket-message-size-max", "0"},
        {"bind-address", "nonsense"},
        {"websocket-fragment-size-max", "lots"},
    };
    const OasisKeyValue no_port[] = {{"bind-address", "127.0.0.1"}};
    const OasisKeyValue unknown[] = {{"port", "0"}, {"bind-address", "127.0.0.1"}, {"no-such-server-key", "1"}};
    OasisKeyValue params[2];
    WsServer *server;
    size_t i;
    int mark;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        params[0].key = bad[i].key;
        params[0].value = bad[i].value;
        params[1].key = strcmp(bad[i].key, "port") == 0 ? "bind-address" : "port";
        params[1].value = strcmp(bad[i].key, "port") == 0 ? "127.0.0.1" : "0";
        CHECK_FAILS(create_server(params, 2) == NULL, EINVAL, "createWsServer(%s=%s): EINVAL", bad[i].key, bad[i].value);
        CHECK(strstr(oasis_last_error(), bad[i].key) != NULL, "the last error names %s (\"%s\")", bad[i].key,
              oasis_last_error());
    }
    CHECK_FAILS(create_server(no_port, 1) == NULL, EINVAL, "createWsServer without port: EINVAL");
    CHECK(strstr(oasis_last_error(), "port") != NULL, "the last error names port (\"%s\")", oasis_last_error());

    mark = log_lines();
    server = create_server(unknown, 3);
    CHECK(server != NULL, "createWsServer accepts an unknown key");
    CHECK(logged_since(mark, "no-such-server-key"), "and logs it");
    if (server)
        CHECK(destroyWsServer(server) == 0, "destroyWsServer of a never-started server");

    CHECK_FAILS((server = createWsServer(server_params, 2, NULL, NULL)) == NULL, EINVAL, "createWsServer(delegate NULL)");
    if (server)
        destroyWsServer(server);
}

static void test_stale_server(void)
{
    WsServer *server = create_server(server_params, 2);
    CHECK(server != NULL, "a server to destroy");
    if (server == NULL)
        return;
    CHECK_FAILS(wsServerPort(server) == -1, ENOTCONN, "wsServerPort before start: ENOTCONN");
    CHECK(startWsServer(server) == 0, "startWsServer");
    CHECK_FAILS(startWsServer(server) == -1, EALREADY, "startWsServer twice: EALREADY");
    CHECK(stopWsServer(server) == 0, "stopWsServer");
    CHECK(stopWsServer(server) == 0, "stopWsServer again returns 0");
    CHECK(startWsServer(server) == 0, "a stopped server starts again");
    CHECK(wsServerPort(server) > 0, "and has a port again");
    CHECK(wsServerShutdown(server) == 0, "wsServerShutdown");
    CHECK_FAILS(startWsServer(server) == -1, EINVAL, "startWsServer after shutdown: EINVAL");
    CHECK(stopWsServer(server) == 0, "stopWsServer after shutdown returns 0");
    CHECK_FAILS(startWsServer(server) == -1, EINVAL, "startWsServer after shutdown and a stop: still EINVAL");
    CHECK(destroyWsServer(server) == 0, "destroyWsServer");
    CHECK_FAILS(startWsServer(server) == -1, EBADF, "startWsServer on a destroyed server: EBADF");
    CHECK_FAILS(stopWsServer(server) == -1, EBADF, "stopWsServer on a destroyed server: EBADF");
    CHECK_FAILS(wsServerPort(server) == -1, EBADF, "wsServerPort on a destroyed server: EBADF");
    CHECK_FAILS(wsServerRetain(server) == -1, EBADF, "wsServerRetain on a destroyed server: EBADF");
    CHECK_FAILS(destroyWsServer(server) == -1, EBADF, "destroyWsServer twice: EBADF");
    CHECK_FAILS(wsServerRelease(server) == -1, EBADF, "wsServerRelease on a destroyed server: EBADF");
}

static void test_urls(int port)
{
    char url[128];
    const char *bad[] = {"", "127.0.0.1:80/", "http://127.0.0.1/", "ws://[::1", "ws://127.0.0.1:99999/",
                         "ws://127.0.0.1:0/", "ws://", "ws:///path"};
    WsConnection *conn;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_FAILS(open_connection(bad[i], 2000) == NULL, EINVAL, "wsOpenConnection(\"%s\"): EINVAL", bad[i]);

    snprintf(url, sizeof url, "wss://127.0.0.1:%d/", port);
    errno = 0;
    conn = open_connection(url, 2000);
    CHECK(conn == NULL && errno == EPROTO, "wss:// to a plain ws:// server fails with EPROTO (%d: %s; %s)", errno,
          strerror(errno), oasis_last_error());
    if (conn)
        wsConnectionRelease(conn);
}

static void test_refused(void)
{
    char url[64];
    int port = 0;
    int fd = tu_refusing_socket(&port);
    CHECK(fd >= 0, "a refusing port");
    if (fd < 0)
        return;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    CHECK_FAILS(open_connection(url, 2000) == NULL, ECONNREFUSED, "wsOpenConnection to a refusing port: ECONNREFUSED");
    close(fd);
}

/* Text of 256 bytes and more is checked with wider registers where the processor has them:
 * ASCII to the end, a byte that is not UTF-8 past the first blocks, valid multi-byte text, and
 * the same cut inside a character or with a bad continuation byte. */
static void check_long_text(WsConnection *conn)
{
    char text[401];
    int i;

    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    CHECK(wsSendText(conn, text) == 0, "wsSendText of 400 ASCII bytes");
    text[300] = '\xff';
    CHECK_FAILS(wsSendText(conn, text) == -1, EINVAL, "wsSendText of 400 bytes, a 0xff at 300: EINVAL");
    CHECK_FAILS(wsSendTextLength(conn, text, 400) == -1, EINVAL, "wsSendTextLength of the same: EINVAL");
    for (i = 0; i < 400; i += 2) {
        text[i] = '\xc3';
        text[i + 1] = '\xa9';
    }
    CHECK(wsSendText(conn, text) == 0, "wsSendText of 200 two-byte characters");
    CHECK_FAILS(wsSendTextLength(conn, text, 399) == -1, EINVAL,
                "wsSendTextLength of the same cut inside its last character: EINVAL");
    text[399] = 'x';
    CHECK_FAILS(wsSendText(conn, text) == -1, EINVAL,
                "wsSendText of the same, its last character's second byte an 'x': EINVAL");
}

/* A live handle of one kind passed where another kind is expected (the C types differ, but a
 * handle kept in a void * or cast loses its type): the table of the expected kind does not
 * know it, so EBADF, even when an object of that kind has the same slot and generation. Run
 * first, so that the server and the connection are the first of their kinds. */
static void test_handle_of_another_kind(void)
{
    char url[64];
    int port = 0, closes_before;
    WsConnection *conn;
    WsServer *server;

    delegates_created++;
    server = tu_start_server("127.0.0.1", NULL, 0, &delegate, NULL, &port);
    CHECK(server != NULL, "the first server");
    if (server == NULL)
        return;
    conn = open_connection(tu_url(url, sizeof url, "127.0.0.1", port, "/"), 2000);
    CHECK(conn != NULL, "the first connection");
    if (conn != NULL) {
        CHECK_FAILS(wsSendText((WsConnection *)(void *)server, "to a server") == -1, EBADF,
                    "wsSendText given the WsServer*: EBADF, nothing sent on a connection");
        CHECK_FAILS(wsConnectionIsOpen((WsConnection *)(void *)server) == -1, EBADF,
                    "wsConnectionIsOpen given the WsServer*: EBADF");
        CHECK_FAILS(wsServerPort((WsServer *)(void *)conn) == -1, EBADF, "wsServerPort given a WsConnection*: EBADF");
        CHECK_FAILS(wsServerRetain((WsServer *)(void *)conn) == -1, EBADF,
                    "wsServerRetain given a WsConnection*: EBADF");
        CHECK(wsServerPort(server) == port && wsConnectionIsOpen(conn) == 1, "both still answer as themselves");
        closes_before = tu_counter_get(&closes);
        CHECK(wsCloseConnection(conn) == 0 && tu_counter_wait(&closes, closes_before + 2, TU_TIMEOUT_MS),
              "the connection closes as usual");
        CHECK(wsConnectionRelease(conn) == 0, "wsConnectionRelease");
    }
    CHECK(destroyWsServer(server) == 0, "destroyWsServer");
}

static void test_live_connection(int port)
{
    char url[64], buffer[16];
    char long_reason[125];
    unsigned char ping[126];
    WsConnection *conn;
    WsConnection *plain;
    int ok, mark, closes_before;

    memset(ping, 'p', sizeof ping);
    memset(long_reason, 'r', sizeof long_reason - 1);
    long_reason[sizeof long_reason - 1] = '\0';

    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    /* Its own user pointer, so that its delegate's release is told apart from the others'. */
    delegates_created++;
    conn = wsOpenConnection(url, NULL, 0, &delegate, &live_delegate_released, 3000);
    CHECK(conn != NULL, "a live connection (%s)", conn ? "open" : oasis_last_error());
    if (conn == NULL)
        return;

    CHECK_FAILS(wsSendText(conn, NULL) == -1, EINVAL, "wsSendText(text NULL): EINVAL");
    CHECK_FAILS(wsSendText(conn, "\xc3\x28") == -1, EINVAL, "wsSendText of invalid UTF-8: EINVAL");
    CHECK_FAILS(wsSendTextLength(conn, NULL, 3) == -1, EINVAL, "wsSendTextLength(NULL, 3): EINVAL");
    CHECK_FAILS(wsSendTextLength(conn, "ok\xff", 3) == -1, EINVAL, "wsSendTextLength of non-UTF-8: EINVAL");
    CHECK_FAILS(wsSendTextLength(conn, "\xe2\x82", 2) == -1, EINVAL, "wsSendTextLength of a cut UTF-8 sequence: EINVAL");
    CHECK(wsSendTextLength(conn, "\xe2\x82\xac!", 4) == 0, "wsSendTextLength of valid UTF-8 without a NUL");
    check_long_text(conn);
    CHECK_FAILS(wsSendBinary(conn, NULL, 4) == -1, EINVAL, "wsSendBinary(NULL, 4): EINVAL");
    CHECK_FAILS(wsSendPing(conn, NULL, 1) == -1, EINVAL, "wsSendPing(NULL, 1): EINVAL");
    /* A length no buffer has ((size_t)-1, as a negative length becomes) is refused, never read. */
    CHECK_FAILS(wsSendTextLength(conn, "ok", SIZE_MAX) == -1, EINVAL, "wsSendTextLength with SIZE_MAX: EINVAL");
    CHECK_FAILS(wsSendBinary(conn, "ok", SIZE_MAX) == -1, EINVAL, "wsSendBinary with SIZE_MAX: EINVAL");
    CHECK_FAILS(wsSendPing(conn, "ok", SIZE_MAX) == -1, EINVAL, "wsSendPing with SIZE_MAX: EINVAL");
    CHECK(wsSendBinary(conn, NULL, 0) == 0 && wsSendTextLength(conn, NULL, 0) == 0,
          "wsSendBinary and wsSendTextLength of NULL with length 0: empty messages");
    CHECK_FAILS(wsSendPing(conn, ping, 126) == -1, EMSGSIZE, "wsSendPing with 126 bytes: EMSGSIZE");
    CHECK(wsSendPing(conn, ping, 125) == 0, "wsSendPing with 125 bytes");
    CHECK_FAILS(wsCloseConnectionWithStatus(conn, 1005, NULL) == -1, EINVAL, "close with 1005: EINVAL");
    CHECK_FAILS(wsCloseConnectionWithStatus(conn, 1006, NULL) == -1, EINVAL, "close with 1006: EINVAL");
    CHECK_FAILS(wsCloseConnectionWithStatus(conn, 999, NULL) == -1, EINVAL, "close with 999: EINVAL");
    CHECK_FAILS(wsCloseConnectionWithStatus(conn, 5000, NULL) == -1, EINVAL, "close with 5000: EINVAL");
    CHECK_FAILS(wsCloseConnectionWithStatus(conn, 1000, long_reason) == -1, EINVAL, "close with a 124-byte reason: EINVAL");
    CHECK_FAILS(wsCloseConnectionWithStatus(conn, 1000, "\xff") == -1, EINVAL, "close with a non-UTF-8 reason: EINVAL");
    CHECK_FAILS(wsConnectionPeerAddress(conn, NULL, 10) == -1, EINVAL, "wsConnectionPeerAddress(NULL, 10): EINVAL");
    CHECK_FAILS(wsConnectionProtocol(conn, NULL, 10) == -1, EINVAL, "wsConnectionProtocol(NULL, 10): EINVAL");
    CHECK_FAILS(wsConnectionRequestPath(conn, NULL, 10) == -1, EINVAL, "wsConnectionRequestPath(NULL, 10): EINVAL");
    CHECK_FAILS(wsConnectionRequestHeader(conn, NULL, buffer, sizeof buffer) == -1, EINVAL,
                "wsConnectionRequestHeader(name NULL): EINVAL");
    CHECK_FAILS(wsConnectionRequestHeader(conn, "", buffer, sizeof buffer) == -1, EINVAL,
                "wsConnectionRequestHeader(name \"\"): EINVAL");
    CHECK_FAILS(wsConnectionRequestHeader(conn, "host", buffer, sizeof buffer) == -1, ENODATA,
                "wsConnectionRequestHeader on a client connection: ENODATA (it received no request)");
    CHECK(wsConnectionPeerAddress(conn, buffer, 4) > 4 && strlen(buffer) == 3,
          "wsConnectionPeerAddress truncates like snprintf (\"%s\")", buffer);
    CHECK(wsConnectionIsOpen(conn) == 1, "the connection is still open after all that");

    CHECK(wsSendText(conn, "probe") == 0, "a text whose server callback probes the event functions");
    TU_WAIT_FOR(ok, probe.done, TU_TIMEOUT_MS);
    CHECK(ok, "the probe ran");
    tu_lock();
    CHECK(probe.data_null_rc == -1 && probe.data_null_errno == EINVAL, "wsEventData(event, NULL): -1/EINVAL (%d/%d)",
          probe.data_null_rc, probe.data_null_errno);
    CHECK(probe.text_null_rc == -1 && probe.text_null_errno == EINVAL,
          "wsEventText(event, NULL, 10): -1/EINVAL (%d/%d)", probe.text_null_rc, probe.text_null_errno);
    CHECK(probe.finalize_rc == -1 && probe.finalize_errno == EDEADLK,
          "oasis_finalize inside a callback: -1/EDEADLK (%d/%d)", probe.finalize_rc, probe.finalize_errno);
    tu_unlock();

    CHECK(wsSendText(conn, "caf\xc3\xa9") == 0 && wsSendBinary(conn, "\xff\xfe", 2) == 0,
          "a text and a binary message whose server callback replies with text");
    TU_WAIT_FOR(ok, reply.done_text && reply.done_binary, TU_TIMEOUT_MS);
    CHECK(ok, "the reply checks ran");
    tu_lock();
    CHECK(reply.own_rc == 0 && reply.copy_rc == 0 && reply.copy_length_rc == 0,
          "the received text, and copies of it, go out as text (%d, %d, %d)", reply.own_rc, reply.copy_rc,
          reply.copy_length_rc);
    CHECK(reply.prefix_rc == -1 && reply.prefix_errno == EINVAL,
          "the received text's own bytes cut inside a UTF-8 sequence: -1/EINVAL (%d/%d)", reply.prefix_rc,
          reply.prefix_errno);
    CHECK(reply.changed_rc == -1 && reply.changed_errno == EINVAL && reply.changed_length_rc == -1 &&
              reply.changed_length_errno == EINVAL,
          "a copy of the received text with a byte made invalid: -1/EINVAL (%d/%d, %d/%d)", reply.changed_rc,
          reply.changed_errno, reply.changed_length_rc, reply.changed_length_errno);
    CHECK(reply.binary_rc == -1 && reply.binary_errno == EINVAL && reply.binary_text_rc == -1 &&
              reply.binary_text_errno == EINVAL,
          "a received binary message that is not UTF-8, sent on as text: -1/EINVAL (%d/%d, %d/%d)",
          reply.binary_rc, reply.binary_errno, reply.binary_text_rc, reply.binary_text_errno);
    tu_unlock();

    /* The next message's callback runs only after the probe's returned: its event is stale. */
    CHECK(wsSendText(conn, "events") == 0, "a text whose server callback misuses its event");
    TU_WAIT_FOR(ok, misuse.done, TU_TIMEOUT_MS);
    CHECK(ok, "the misuse callback ran");
    CHECK_FAILS(wsEventStatusCode(probe.unretained) == -1, EBADF, "an event used after its callback: EBADF");
    CHECK_FAILS(wsEventRetain(probe.unretained) == -1, EBADF, "retaining an event after its callback: EBADF");
    tu_lock();
    CHECK(misuse.release_unretained_rc == -1 && misuse.release_unretained_errno == EBADF,
          "wsEventRelease without a retain: -1/EBADF (%d/%d)", misuse.release_unretained_rc,
          misuse.release_unretained_errno);
    CHECK(misuse.retain_rc == 0, "wsEventRetain");
    tu_unlock();

    closes_before = tu_counter_get(&closes);
    CHECK(wsCloseConnection(conn) == 0, "wsCloseConnection");
    /* Both ends share the counting delegate: the client's and the server's onClose. */
    CHECK(tu_counter_wait(&closes, closes_before + 2, TU_TIMEOUT_MS), "both ends report onClose");

    /* The server's onClose came after the misuse callback returned: on this thread, the data
     * fetched after the retain is still there. */
    CHECK(misuse.kept_length == 6 && misuse.kept_data != NULL && memcmp(misuse.kept_data, "events", 6) == 0,
          "a retained event's data outlives its callback");
    CHECK(wsEventMessageType(misuse.kept) == kWsMessageText, "a retained event still answers");
    CHECK(wsEventConnection(misuse.kept) != NULL, "a retained event still has its connection");
    CHECK(wsEventRelease(misuse.kept) == 0, "wsEventRelease of the retained event");
    CHECK_FAILS(wsEventRelease(misuse.kept) == -1, EBADF, "wsEventRelease once more: EBADF");
    CHECK_FAILS(wsEventStatusCode(misuse.kept) == -1, EBADF, "a released event: EBADF");

    CHECK(wsConnectionIsOpen(conn) == 0, "a closed connection is not open");
    CHECK_FAILS(wsSendText(conn, "late") == -1, ENOTCONN, "wsSendText on a closed connection: ENOTCONN");
    CHECK_FAILS(wsSendTextLength(conn, "late", 4) == -1, ENOTCONN, "wsSendTextLength on a closed connection: ENOTCONN");
    CHECK_FAILS(wsSendBinary(conn, "late", 4) == -1, ENOTCONN, "wsSendBinary on a closed connection: ENOTCONN");
    CHECK_FAILS(wsSendPing(conn, NULL, 0) == -1, ENOTCONN, "wsSendPing on a closed connection: ENOTCONN");
    CHECK(wsCloseConnection(conn) == 0, "closing a closed connection returns 0");

    CHECK(wsConnectionRelease(conn) == 0, "wsConnectionRelease");
    /* The delegate's release says the library is done with the connection: from then on the
     * handle is stale. */
    TU_WAIT_FOR(ok, live_delegate_released >= 1, TU_TIMEOUT_MS);
    CHECK(ok, "releasing the only handle of a closed connection releases its delegate");
    CHECK_FAILS(wsSendText(conn, "x") == -1, EBADF, "wsSendText on a released connection: EBADF");
    CHECK_FAILS(wsConnectionIsOpen(conn) == -1, EBADF, "wsConnectionIsOpen on a released connection: EBADF");
    CHECK_FAILS(wsConnectionRetain(conn) == -1, EBADF, "wsConnectionRetain on a released connection: EBADF");
    CHECK_FAILS(wsConnectionRelease(conn) == -1, EBADF, "wsConnectionRelease twice: EBADF");

    /* A new connection may live where the old one did: the old handle still reaches nothing. */
    delegates_created++;
    plain = wsOpenConnection(url, NULL, 0, &delegate, NULL, 3000);
    CHECK(plain != NULL && plain != conn, "a new connection gets a handle of its own");
    CHECK_FAILS(wsSendText(conn, "for the old one") == -1, EBADF, "the old handle after a new open: EBADF");
    if (plain) {
        closes_before = tu_counter_get(&closes);
        CHECK(wsCloseConnection(plain) == 0, "closing the new connection");
        CHECK(tu_counter_wait(&closes, closes_before + 2, TU_TIMEOUT_MS), "both ends report onClose");
        CHECK(wsConnectionRelease(plain) == 0, "releasing the new connection");
    }

    CHECK_FAILS((plain = wsOpenConnection(url, NULL, 0, NULL, NULL, 3000)) == NULL, EINVAL,
                "wsOpenConnection(delegate NULL)");
    if (plain)
        wsConnectionRelease(plain);

    mark = log_lines();
    CHECK_FAILS(wsSendText(NULL, "x") == -1, EINVAL, "one more bad call");
    CHECK(logged_since(mark, "wsSendText"), "it produced a log line naming the function");
}

/* A start made while destroyWsServer waits for the connections to close: here from the server's
 * own onClose, which that very stop runs. It must fail (the server is being destroyed), and
 * nothing may listen once destroyWsServer has returned. */
static WsServer *restarted_server;
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
    rc = startWsServer(restarted_server);
    err = errno;
    port = wsServerPort(restarted_server);
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

static const WsEventDelegateVTable restart_delegate = {
    sizeof(WsEventDelegateVTable), restart_on_open, NULL, NULL, restart_on_close, restart_on_release,
};

static void test_start_during_destroy(void)
{
    char url[64];
    int port = 0;
    WsConnection *conn, *late;

    restarted_server = tu_start_server("127.0.0.1", NULL, 0, &restart_delegate, NULL, &port);
    CHECK(restarted_server != NULL, "a server whose onClose starts it again");
    if (restarted_server == NULL)
        return;
    conn = open_connection(tu_url(url, sizeof url, "127.0.0.1", port, "/"), TU_TIMEOUT_MS);
    CHECK(conn != NULL && tu_counter_wait(&restart_opens, 1, TU_TIMEOUT_MS), "a connection to it");
    CHECK(destroyWsServer(restarted_server) == 0, "destroyWsServer, whose stop runs that onClose");
    CHECK(restart.tried && restart.rc == -1 && restart.err == EINVAL,
          "startWsServer inside onClose during destroyWsServer: -1/EINVAL (%d/%d, port %d)", restart.rc,
          restart.err, restart.port);
    if (restart.port > 0) {
        late = open_connection(tu_url(url, sizeof url, "127.0.0.1", restart.port, "/"), TU_TIMEOUT_MS);
        CHECK(late == NULL, "nothing listens once destroyWsServer has returned");
        wsConnectionRelease(late);
    }
    CHECK(tu_counter_wait(&restart_released, 1, TU_TIMEOUT_MS), "the destroyed server's delegate is released");
    wsConnectionRelease(conn);
}

/* oasis_initialize in a callback that oasis_finalize runs (the onClose of a connection it
 * closes): the library is being finalized, not initialized, so the call fails with EBUSY and
 * starts nothing; once oasis_finalize has returned, the library is not initialized. */
static struct {
    int tried, rc, err;
} init_in_finalize;
static tu_counter init_opens;

static void init_on_open(void *user, WsEvent *event)
{
    (void)user;
    (void)event;
    tu_counter_add(&init_opens, 1);
}

static void init_on_close(void *user, WsEvent *event)
{
    int rc, err;
    (void)user;
    (void)event;
    errno = 0;
    rc = oasis_initialize(NULL, 0);
    err = errno;
    tu_lock();
    if (!init_in_finalize.tried) {
        init_in_finalize.tried = 1;
        init_in_finalize.rc = rc;
        init_in_finalize.err = err;
    }
    tu_unlock_notify();
}

static const WsEventDelegateVTable init_delegate = {
    sizeof(WsEventDelegateVTable), init_on_open, NULL, NULL, init_on_close, NULL,
};

int main(void)
{
    WsServer *server;
    WsConnection *conn;
    char url[64];
    int port = 0;

    oasis_log_set_hook(capture_log, NULL);

    test_before_initialize();
    test_initialize();
    test_handle_of_another_kind();
    test_null_handles();
    test_server_parameters();
    test_stale_server();

    delegates_created++;
    server = tu_start_server("127.0.0.1", NULL, 0, &delegate, NULL, &port);
    CHECK(server != NULL, "a server for the connection checks (port %d)", port);
    test_urls(port);
    test_refused();
    if (server) {
        test_live_connection(port);
        CHECK(destroyWsServer(server) == 0, "destroyWsServer");
    }
    test_start_during_destroy();

    server = tu_start_server("127.0.0.1", NULL, 0, &init_delegate, NULL, &port);
    conn = open_connection(tu_url(url, sizeof url, "127.0.0.1", port, "/"), TU_TIMEOUT_MS);
    CHECK(server != NULL && conn != NULL && tu_counter_wait(&init_opens, 1, TU_TIMEOUT_MS),
          "a connection open at oasis_finalize, whose server's onClose calls oasis_initialize");

    CHECK(oasis_finalize() == 0, "oasis_finalize");
    CHECK(init_in_finalize.tried && init_in_finalize.rc == -1 && init_in_finalize.err == EBUSY,
          "oasis_initialize in a callback oasis_finalize runs: -1/EBUSY (%d/%d)", init_in_finalize.rc,
          init_in_finalize.err);
    CHECK(wsConnectionRelease(conn) == 0 && destroyWsServer(server) == 0, "their handles released after it");
    CHECK(tu_counter_get(&released) == delegates_created,
          "every delegate handed over was released exactly once, failed calls included (%d of %d)",
          tu_counter_get(&released), delegates_created);
    CHECK_FAILS(create_server(server_params, 2) == NULL, EPERM, "createWsServer after oasis_finalize: EPERM");
    CHECK(tu_counter_get(&released) == delegates_created, "that delegate was released too");

    oasis_log_set_hook(NULL, NULL);
    return tu_summary();
}
