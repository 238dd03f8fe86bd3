/*
 * http_cpp.cpp - the C++ HTTP server API of OasisWeb.h as firmware uses it, over real loopback
 * sockets with a small blocking HTTP/1.1 and WebSocket client written here on POSIX sockets:
 * static files from a root-dir made with mkdtemp; an HttpUpStreamDelegate whose onFilter asks
 * for Basic credentials on /private (also in front of a file there) and whose onRequest answers
 * /api/echo for GET (JSON from the request's method, path, query and a header) and POST (the
 * body back), throws (500, the server keeps serving), or leaves the request to 404; a
 * WebSocket service at /ws whose onOpen reads the upgrade request; bad service paths,
 * duplicate paths and refused response headers; stop, destroy and finalize, with every delegate
 * destroyed exactly once.
 *
 * (over 600 lines: the HTTP and WebSocket clients are written here on plain sockets, so that
 * what is checked on the wire depends on nothing but POSIX.)
 */

#include "test_util.h"

#include "OasisAPI.h"
#include "OasisLog.h"
#include "OasisWeb.h"

#include <cctype>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <sys/time.h>

using namespace oasis;

// ---- log capture (the exceptions thrown by the delegates are logged) -------------------------

static std::mutex log_mutex;
static std::vector<std::string> log_lines;

static void capture_log(void *, int32_t, const char *line)
{
    std::lock_guard<std::mutex> lock(log_mutex);
    log_lines.push_back(line);
}

static bool logged(const std::string &needle)
{
    std::lock_guard<std::mutex> lock(log_mutex);
    for (size_t i = 0; i < log_lines.size(); i++)
        if (log_lines[i].find(needle) != std::string::npos)
            return true;
    return false;
}

// ---- a blocking client on a loopback socket ------------------------------------------------

// One TCP connection to 127.0.0.1:port; every read and write gives up after TU_TIMEOUT_MS, so a
// server that does not answer shows up as a failed check, not a hang.
class Peer
{
public:
    explicit Peer(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0))
    {
        struct sockaddr_in addr;
        struct timeval timeout = {TU_TIMEOUT_MS / 1000, 0};
        if (fd_ < 0)
            return;
        memset(&addr, 0, sizeof addr);
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        if (connect(fd_, reinterpret_cast<struct sockaddr *>(&addr), sizeof addr) != 0) {
            close(fd_);
            fd_ = -1;
        }
    }
    ~Peer()
    {
        if (fd_ >= 0)
            close(fd_);
    }

    bool connected() const { return fd_ >= 0; }

    bool send_all(const std::string &data)
    {
        size_t sent = 0;
        while (fd_ >= 0 && sent < data.size()) {
            ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n <= 0)
                return false;
            sent += static_cast<size_t>(n);
        }
        return fd_ >= 0;
    }

    // Everything up to and including `delimiter`; bytes after it stay for the next read.
    bool read_until(const std::string &delimiter, std::string &out)
    {
        size_t at;
        while ((at = pending_.find(delimiter)) == std::string::npos)
            if (!fill())
                return false;
        out = pending_.substr(0, at + delimiter.size());
        pending_.erase(0, at + delimiter.size());
        return true;
    }

    bool read_exact(size_t length, std::string &out)
    {
        while (pending_.size() < length)
            if (!fill())
                return false;
        out = pending_.substr(0, length);
        pending_.erase(0, length);
        return true;
    }

private:
    bool fill()
    {
        char buffer[4096];
        ssize_t n = fd_ >= 0 ? recv(fd_, buffer, sizeof buffer, 0) : -1;
        if (n <= 0)
            return false;
        pending_.append(buffer, static_cast<size_t>(n));
        return true;
    }

    int fd_;
    std::string pending_;
};

static std::string lower(std::string text)
{
    for (size_t i = 0; i < text.size(); i++)
        text[i] = static_cast<char>(tolower(static_cast<unsigned char>(text[i])));
    return text;
}

struct Answer {
    bool complete;
    int status;
    std::vector<std::pair<std::string, std::string> > headers; // names in lower case
    std::string body;

    Answer() : complete(false), status(0) {}

    // The first header `name` (any case); "(none)" when the answer has none.
    std::string header(const char *name) const
    {
        std::string key = lower(name);
        for (size_t i = 0; i < headers.size(); i++)
            if (headers[i].first == key)
                return headers[i].second;
        return "(none)";
    }
};

// Reads one answer head ("HTTP/1.1 NNN ...", headers, blank line) from `peer`.
static bool read_head(Peer &peer, Answer &answer)
{
    std::string head;
    if (!peer.read_until("\r\n\r\n", head) || sscanf(head.c_str(), "HTTP/1.%*d %d", &answer.status) != 1)
        return false;
    size_t line = head.find("\r\n") + 2;
    while (line < head.size() - 2) {
        size_t end = head.find("\r\n", line), colon = head.find(':', line);
        if (colon == std::string::npos || colon > end)
            return false;
        size_t value = head.find_first_not_of(' ', colon + 1);
        answer.headers.push_back(std::make_pair(lower(head.substr(line, colon - line)),
                                                value < end ? head.substr(value, end - value) : std::string()));
        line = end + 2;
    }
    return true;
}

// Sends `request` on a new connection and reads the answer: the head, then Content-Length bytes.
static Answer http(int port, const std::string &request)
{
    Answer answer;
    Peer peer(port);
    if (!peer.send_all(request) || !read_head(peer, answer))
        return answer;
    std::string length = answer.header("Content-Length");
    answer.complete = peer.read_exact(length == "(none)" ? 0 : strtoul(length.c_str(), nullptr, 10), answer.body);
    return answer;
}

static Answer get(int port, const std::string &target, const std::string &extra_headers = "")
{
    return http(port, "GET " + target + " HTTP/1.1\r\nHost: camera\r\n" + extra_headers + "Connection: close\r\n\r\n");
}

// ---- a minimal WebSocket client (RFC 6455) -------------------------------------------------

// The key and accept value of RFC 6455 section 1.3: no SHA-1 needed here to check the answer.
static const char *const kWsKey = "dGhlIHNhbXBsZSBub25jZQ==";
static const char *const kWsAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static Answer ws_upgrade(Peer &peer, const std::string &target, const std::string &extra_headers)
{
    Answer answer;
    peer.send_all("GET " + target + " HTTP/1.1\r\nHost: camera\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                  "Sec-WebSocket-Key: " + kWsKey + "\r\nSec-WebSocket-Version: 13\r\n" + extra_headers + "\r\n");
    answer.complete = read_head(peer, answer);
    return answer;
}

// One masked frame (a client must mask) with a payload under 126 bytes.
static bool ws_send(Peer &peer, uint8_t opcode, const std::string &payload)
{
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    std::string frame;
    frame += static_cast<char>(0x80 | opcode);
    frame += static_cast<char>(0x80 | payload.size());
    frame.append(reinterpret_cast<const char *>(mask), 4);
    for (size_t i = 0; i < payload.size(); i++)
        frame += static_cast<char>(payload[i] ^ mask[i % 4]);
    return payload.size() < 126 && peer.send_all(frame);
}

// One unmasked frame from the server: its first byte (FIN and opcode) and its payload; -1 when
// none came or it was masked (a server must not mask).
static int ws_read(Peer &peer, std::string &payload)
{
    std::string head, extended;
    if (!peer.read_exact(2, head) || (head[1] & 0x80) != 0)
        return -1;
    size_t length = static_cast<uint8_t>(head[1]) & 0x7f;
    if (length >= 126) {
        if (!peer.read_exact(length == 126 ? 2 : 8, extended))
            return -1;
        length = 0;
        for (size_t i = 0; i < extended.size(); i++)
            length = (length << 8) | static_cast<uint8_t>(extended[i]);
    }
    return peer.read_exact(length, payload) ? static_cast<uint8_t>(head[0]) : -1;
}

static std::string close_payload(int code)
{
    std::string payload;
    payload += static_cast<char>(code >> 8);
    payload += static_cast<char>(code & 0xff);
    return payload;
}

static int close_code(const std::string &payload)
{
    return payload.size() >= 2 ? (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]) : -1;
}

// ---- the delegates (their state is guarded by tu_lock) ---------------------------------------

static tu_counter upstreams_destroyed, ws_delegates_destroyed;

// "user:pass", as a browser sends it after the 401.
static const char *const kCredentials = "Basic dXNlcjpwYXNz";

static std::string json_string(const std::string &text)
{
    std::string out = "\"";
    for (size_t i = 0; i < text.size(); i++) {
        if (text[i] == '"' || text[i] == '\\')
            out += '\\';
        out += text[i];
    }
    return out + "\"";
}

class CameraApi : public HttpUpStreamDelegate
{
public:
    CameraApi() : filtered(0), refused(0), requests(0), missing_header_found(true) {}
    ~CameraApi() override { tu_counter_add(&upstreams_destroyed, 1); }

    int32_t onFilter(const HttpRequestRef &request) override
    {
        std::string path = httpRequestPath(request), authorization;
        if (path == "/filter-throws")
            throw std::runtime_error("thrown by the test's onFilter");
        bool protect = path == "/private" || path.compare(0, 9, "/private/") == 0;
        bool allowed = !protect || (httpRequestHeader(request, "Authorization", authorization) &&
                                    authorization == kCredentials);
        if (!allowed)
            httpResponseAddHeader(request, "WWW-Authenticate", "Basic realm=\"camera\"");
        tu_lock();
        filtered++;
        refused += allowed ? 0 : 1;
        tu_unlock_notify();
        return allowed ? 0 : 401;
    }

    void onRequest(const HttpRequestRef &request) override
    {
        std::string method = httpRequestMethod(request), path = httpRequestPath(request);
        tu_lock();
        requests++;
        kept = request; // a copy kept beyond the callback refers to nothing afterwards
        tu_unlock_notify();

        if (path == "/api/throw")
            throw std::runtime_error("thrown by the test's onRequest");
        if (path == "/api/throw-int")
            throw 42;
        if (path == "/api/headers") {
            check_refused_headers(request);
            httpResponseSetStatus(request, 200);
            httpResponseSetBody(request, "text/plain", std::string("checked"));
            return;
        }
        if (path != "/api/echo")
            return; // left as it starts: 404

        if (method == "GET") {
            std::string client, missing = "stale";
            httpRequestHeader(request, "x-client", client);
            bool found = httpRequestHeader(request, "X-Not-Sent", missing);
            tu_lock();
            missing_header_found = found || !missing.empty();
            tu_unlock();
            std::string json = "{\"method\":" + json_string(method) + ",\"path\":" + json_string(path) +
                               ",\"query\":" + json_string(httpRequestQuery(request)) +
                               ",\"client\":" + json_string(client) + "}";
            httpResponseSetStatus(request, 200);
            httpResponseAddHeader(request, "X-Camera", "oasis");
            httpResponseSetBody(request, "application/json", json);
        } else if (method == "POST") {
            std::vector<uint8_t> body;
            std::string type;
            if (httpRequestBody(request, body) < 0 || !httpRequestHeader(request, "Content-Type", type)) {
                httpResponseSetStatus(request, 400);
                return;
            }
            httpResponseSetStatus(request, 200);
            httpResponseSetBody(request, type.c_str(), body.empty() ? nullptr : &body[0], body.size());
        } else {
            httpResponseSetStatus(request, 405);
            httpResponseAddHeader(request, "Allow", "GET, POST");
        }
    }

    int filtered, refused, requests;
    bool missing_header_found;
    std::vector<int> header_results; // rc and errno of each refused httpResponseAddHeader
    HttpRequestRef kept;

private:
    void check_refused_headers(const HttpRequestRef &request)
    {
        static const char *const bad[][2] = {
            {"Content-Length", "5"},
            {"content-length", "5"},
            {"X-Injected", "a\r\nSet-Cookie: evil=1"},
            {"X-Injected", "a\nSet-Cookie: evil=1"},
        };
        std::vector<int> results;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            errno = 0;
            results.push_back(httpResponseAddHeader(request, bad[i][0], bad[i][1]));
            results.push_back(errno);
        }
        tu_lock();
        header_results = results;
        tu_unlock();
    }
};

// What onOpen read of the upgrade request.
struct OpenInfo {
    std::string path, query, x_test;
    bool has_x_test, missing_found;
    std::string missing_value;

    OpenInfo() : has_x_test(false), missing_found(true) {}
};

class EchoService : public WsEventDelegate
{
public:
    EchoService() : messages(0), closes(0), last_close_code(0) {}
    ~EchoService() override { tu_counter_add(&ws_delegates_destroyed, 1); }

    void onOpen(const WsEventRef &event) override
    {
        OpenInfo info;
        WsConnectionRef connection = wsEventConnection(event);
        info.path = wsConnectionRequestPath(connection);
        info.query = wsConnectionRequestQuery(connection);
        info.has_x_test = wsConnectionRequestHeader(connection, "X-Test", info.x_test);
        info.missing_value = "stale";
        info.missing_found = wsConnectionRequestHeader(connection, "X-Missing", info.missing_value);
        tu_lock();
        opens.push_back(info);
        tu_unlock_notify();
    }

    void onMessage(const WsEventRef &event) override
    {
        std::string text;
        if (wsEventMessageType(event) != kWsMessageText || wsEventText(event, text) < 0)
            return;
        wsSendText(event, "echo:" + text);
        tu_lock();
        messages++;
        tu_unlock_notify();
    }

    void onClose(const WsEventRef &event) override
    {
        int32_t code = wsEventStatusCode(event);
        tu_lock();
        closes++;
        last_close_code = code;
        tu_unlock_notify();
    }

    std::vector<OpenInfo> opens;
    int messages, closes, last_close_code;
};

// ---- the checks ------------------------------------------------------------------------------

static void test_static_files(int port, const std::string &index)
{
    Answer a = get(port, "/");
    CHECK(a.complete && a.status == 200, "GET / is served from root-dir (status %d)", a.status);
    CHECK(a.header("Content-Type").compare(0, 9, "text/html") == 0, "as text/html (\"%s\")",
          a.header("Content-Type").c_str());
    CHECK(a.body == index, "with index.html's bytes (%zu of %zu)", a.body.size(), index.size());
}

static void test_filter(int port, const std::shared_ptr<CameraApi> &api)
{
    Answer a = get(port, "/private/secret.txt");
    CHECK(a.complete && a.status == 401, "onFilter refuses /private/secret.txt without credentials (%d)", a.status);
    CHECK(a.header("WWW-Authenticate") == "Basic realm=\"camera\"", "with its WWW-Authenticate (\"%s\")",
          a.header("WWW-Authenticate").c_str());
    CHECK(a.body.find("secret") == std::string::npos, "and without the file's content");
    a = get(port, "/private/secret.txt", "Authorization: Basic d3Jvbmc6d3Jvbmc=\r\n");
    CHECK(a.complete && a.status == 401, "wrong credentials: 401 (%d)", a.status);
    a = get(port, "/private/secret.txt", std::string("Authorization: ") + kCredentials + "\r\n");
    CHECK(a.complete && a.status == 200 && a.body == "secret\n",
          "the right credentials: the file is served (%d, %zu bytes)", a.status, a.body.size());
    a = get(port, "/private/api", std::string("Authorization: ") + kCredentials + "\r\n");
    CHECK(a.complete && a.status == 404, "authorized but nothing answers: 404 (%d)", a.status);

    a = get(port, "/filter-throws");
    CHECK(a.complete && a.status == 500, "an exception thrown in onFilter refuses with 500 (%d)", a.status);
    CHECK(logged("exception in onFilter") && logged("thrown by the test's onFilter"),
          "and is logged with its what()");
    tu_lock();
    CHECK(api->refused == 2, "onFilter refused twice (%d)", api->refused);
    tu_unlock();
}

static void test_on_request(int port, const std::shared_ptr<CameraApi> &api)
{
    Answer a = get(port, "/api/echo?x=1", "X-Client: firmware-test\r\n");
    CHECK(a.complete && a.status == 200, "GET /api/echo?x=1 is answered by onRequest (%d)", a.status);
    CHECK(a.header("X-Camera") == "oasis", "with its custom header (\"%s\")", a.header("X-Camera").c_str());
    CHECK(a.header("Content-Type") == "application/json", "and content type (\"%s\")",
          a.header("Content-Type").c_str());
    const char *want = "{\"method\":\"GET\",\"path\":\"/api/echo\",\"query\":\"x=1\",\"client\":\"firmware-test\"}";
    CHECK(a.body == want, "its JSON from method, path, query and X-Client (\"%s\")", a.body.c_str());
    tu_lock();
    CHECK(!api->missing_header_found, "httpRequestHeader of a header not sent: false, value cleared");
    HttpRequestRef kept = api->kept;
    api->kept.reset();
    tu_unlock();
    errno = 0;
    CHECK(kept && httpResponseSetStatus(kept, 200) == -1 && errno == EBADF,
          "an HttpRequestRef kept after onRequest returned: -1/EBADF");
    CHECK(kept && httpRequestMethod(kept).empty() && httpRequestPath(kept).empty(), "and its getters give \"\"");
    kept.reset();

    std::string body("post\0body\xff", 10);
    a = http(port, "POST /api/echo HTTP/1.1\r\nHost: camera\r\nContent-Type: application/x-test\r\n"
                   "Content-Length: 10\r\nConnection: close\r\n\r\n" +
                       body);
    CHECK(a.complete && a.status == 200 && a.body == body, "POST /api/echo: httpRequestBody echoed byte for byte (%d, "
                                                           "%zu bytes)",
          a.status, a.body.size());
    CHECK(a.header("Content-Type") == "application/x-test", "with the request's content type (\"%s\")",
          a.header("Content-Type").c_str());

    a = get(port, "/api/throw");
    CHECK(a.complete && a.status == 500, "an exception thrown in onRequest gives 500 (%d)", a.status);
    a = get(port, "/api/throw-int");
    CHECK(a.complete && a.status == 500, "so does a non-std exception (%d)", a.status);
    CHECK(logged("exception in onRequest") && logged("thrown by the test's onRequest"),
          "the exception is logged with its what()");
    a = get(port, "/api/echo?x=2");
    CHECK(a.complete && a.status == 200, "the server keeps serving after the exceptions (%d)", a.status);

    a = get(port, "/nobody/answers");
    CHECK(a.complete && a.status == 404 && a.body.empty(), "a request nobody answers: 404 (%d)", a.status);

    a = get(port, "/api/headers");
    CHECK(a.complete && a.status == 200 && a.body == "checked", "a request that tries refused headers (%d)",
          a.status);
    tu_lock();
    std::vector<int> results = api->header_results;
    tu_unlock();
    static const char *const what[] = {"Content-Length", "content-length", "a value with \\r\\n",
                                       "a value with \\n"};
    for (size_t i = 0; i < 4; i++)
        CHECK(results.size() == 8 && results[2 * i] == -1 && results[2 * i + 1] == EINVAL,
              "httpResponseAddHeader with %s: -1/EINVAL", what[i]);
    CHECK(a.header("Set-Cookie") == "(none)" && a.header("Content-Length") == "7",
          "none reached the wire (Content-Length \"%s\")", a.header("Content-Length").c_str());
}

static void test_websocket(int port, const std::shared_ptr<EchoService> &echo)
{
    Peer peer(port);
    Answer a = ws_upgrade(peer, "/ws?room=1", "X-Test: yes\r\n");
    CHECK(a.complete && a.status == 101, "the upgrade to /ws?room=1: 101 (%d)", a.status);
    CHECK(a.header("Sec-WebSocket-Accept") == kWsAccept, "with the right Sec-WebSocket-Accept");
    int ok;
    TU_WAIT_FOR(ok, echo->opens.size() == 1, TU_TIMEOUT_MS);
    tu_lock();
    OpenInfo info = ok ? echo->opens[0] : OpenInfo();
    tu_unlock();
    CHECK(ok, "the service's onOpen ran");
    CHECK(info.path == "/ws" && info.query == "room=1", "wsConnectionRequestPath/Query in onOpen (\"%s\", \"%s\")",
          info.path.c_str(), info.query.c_str());
    CHECK(info.has_x_test && info.x_test == "yes", "wsConnectionRequestHeader(\"X-Test\") (\"%s\")",
          info.x_test.c_str());
    CHECK(!info.missing_found && info.missing_value.empty(), "a header not sent: false, value cleared");

    std::string payload;
    CHECK(ws_send(peer, 0x1, "hello"), "a masked text frame");
    int first = ws_read(peer, payload);
    CHECK(first == 0x81 && payload == "echo:hello", "the echo comes back unmasked (0x%x \"%s\")", first,
          payload.c_str());
    CHECK(ws_send(peer, 0x8, close_payload(1000)), "a close frame 1000");
    first = ws_read(peer, payload);
    CHECK(first == 0x88 && close_code(payload) == 1000, "the server answers the close (0x%x, %d)", first,
          close_code(payload));
    TU_WAIT_FOR(ok, echo->closes == 1, TU_TIMEOUT_MS);
    tu_lock();
    CHECK(ok && echo->last_close_code == 1000, "onClose with 1000 (%d)", echo->last_close_code);
    tu_unlock();

    a = get(port, "/ws");
    CHECK(a.complete && a.status == 426, "a plain GET to the service path: 426 (%d)", a.status);
}

static void test_bad_services(const HttpServerRef &server)
{
    key_value_map_t parameters;
    std::shared_ptr<EchoService> bad_path = std::make_shared<EchoService>();
    CHECK_FAILS(createHttpWsService(server, "ws", parameters, bad_path) == -1, EINVAL,
                "createHttpWsService with a path without '/': EINVAL");
    CHECK(bad_path.use_count() == 1, "the failed call let go of its delegate (use_count %ld)", bad_path.use_count());
    std::shared_ptr<EchoService> duplicate = std::make_shared<EchoService>();
    CHECK_FAILS(createHttpWsService(server, "/ws", parameters, duplicate) == -1, EEXIST,
                "createHttpWsService with a path that has a service: EEXIST");
    CHECK(duplicate.use_count() == 1, "that one too (use_count %ld)", duplicate.use_count());
    CHECK_FAILS(createHttpWsService(server, "/other", parameters, std::shared_ptr<WsEventDelegate>()) == -1, EINVAL,
                "createHttpWsService with an empty delegate: EINVAL");
    bad_path.reset();
    duplicate.reset();
    CHECK(tu_counter_get(&ws_delegates_destroyed) == 2, "both refused delegates are destroyed with main's reset (%d)",
          tu_counter_get(&ws_delegates_destroyed));
}

// A WebSocket connection still open when the server stops: the client gets a close frame 1001
// and answers it as a browser does, from its own thread (main is inside stopHttpServer), and
// stopHttpServer returns once the service's onClose ran with that 1001. A peer that did not
// answer would hold it for close-timeout-ms and end with 1006 (docs/PARAMETERS.md).
static void test_stop(const HttpServerRef &server, int port, const std::shared_ptr<EchoService> &echo)
{
    Peer peer(port);
    Answer a = ws_upgrade(peer, "/ws", "");
    int ok;
    TU_WAIT_FOR(ok, echo->opens.size() == 2, TU_TIMEOUT_MS);
    CHECK(a.status == 101 && ok, "a second WebSocket connection is open");
    tu_lock();
    OpenInfo info = ok ? echo->opens[1] : OpenInfo();
    tu_unlock();
    CHECK(info.query.empty() && !info.has_x_test && info.x_test.empty(), "no query, no X-Test on it");

    int first = -1;
    std::string payload;
    std::thread browser([&]() {
        first = ws_read(peer, payload);
        if (first == 0x88)
            ws_send(peer, 0x8, payload);
    });
    int64_t started = tu_now_ms();
    CHECK(stopHttpServer(server) == 0, "stopHttpServer");
    int64_t took = tu_now_ms() - started;
    tu_lock();
    int closes = echo->closes, code = echo->last_close_code;
    tu_unlock();
    browser.join();
    CHECK(first == 0x88 && close_code(payload) == 1001, "the client gets a close frame 1001 (0x%x, %d)", first,
          close_code(payload));
    CHECK(closes == 2 && code == 1001, "stopHttpServer returns after onClose 1001 of that connection (%d, %d)", closes,
          code);
    CHECK(took < 2000, "without waiting for a close timeout (%lld ms)", static_cast<long long>(took));
    CHECK_FAILS(httpServerPort(server) == -1, ENOTCONN, "httpServerPort after stop: ENOTCONN");
    CHECK(!Peer(port).connected(), "the port no longer accepts");
}

// ---- the root folder -------------------------------------------------------------------------

static bool write_file(const std::string &path, const std::string &content)
{
    FILE *file = fopen(path.c_str(), "wb");
    if (!file)
        return false;
    bool ok = fwrite(content.data(), 1, content.size(), file) == content.size();
    return fclose(file) == 0 && ok;
}

static void remove_root(const std::string &root)
{
    unlink((root + "/private/secret.txt").c_str());
    unlink((root + "/index.html").c_str());
    rmdir((root + "/private").c_str());
    rmdir(root.c_str());
}

int main()
{
    oasis_log_set_hook(capture_log, nullptr);
    key_value_map_t parameters;
    parameters["offs-disable"] = "1";
    CHECK(oasis::initialize(parameters) == 0, "oasis::initialize");

    char root_template[] = "/tmp/oasis-http-cpp-XXXXXX";
    const char *root = mkdtemp(root_template);
    const std::string index = "<!doctype html>\n<title>camera</title>\n<p>live view</p>\n";
    bool made = root && write_file(std::string(root) + "/index.html", index) &&
                mkdir((std::string(root) + "/private").c_str(), 0700) == 0 &&
                write_file(std::string(root) + "/private/secret.txt", "secret\n");
    CHECK(made, "a root folder with index.html and private/secret.txt (%s)", root ? root : strerror(errno));
    if (!made) {
        if (root)
            remove_root(root);
        return tu_summary();
    }

    std::weak_ptr<CameraApi> api_watch;
    std::weak_ptr<EchoService> echo_watch;
    {
        std::shared_ptr<CameraApi> api = std::make_shared<CameraApi>();
        std::shared_ptr<EchoService> echo = std::make_shared<EchoService>();
        api_watch = api;
        echo_watch = echo;
        parameters.clear();
        parameters["port"] = "0";
        parameters["bind-address"] = "127.0.0.1";
        parameters["root-dir"] = root;
        HttpServerRef server = createHttpServer(parameters, api);
        CHECK(server != nullptr, "createHttpServer with root-dir and an HttpUpStreamDelegate (%s)", oasis_last_error());
        if (!server) {
            remove_root(root);
            return tu_summary();
        }
        parameters.clear();
        CHECK(createHttpWsService(server, "/ws", parameters, echo) == 0, "createHttpWsService(\"/ws\")");
        CHECK(startHttpServer(server) == 0, "startHttpServer");
        int port = httpServerPort(server);
        CHECK(port > 0, "httpServerPort (%d)", port);

        test_static_files(port, index);
        test_filter(port, api);
        test_on_request(port, api);
        test_websocket(port, echo);
        test_bad_services(server);
        test_stop(server, port, echo);

        CHECK(destroyHttpServer(server) == 0, "destroyHttpServer (the HttpServerRef keeps its reference)");
        CHECK_FAILS(startHttpServer(server) == -1, EINVAL, "a destroyed server does not start again: EINVAL");
        CHECK(tu_counter_get(&upstreams_destroyed) == 0 && tu_counter_get(&ws_delegates_destroyed) == 2,
              "main still holds both delegates");
        server.reset();
        api.reset();
        echo.reset();
        // server, api and echo were the last references outside the library.
    }
    int ok = tu_counter_wait(&upstreams_destroyed, 1, TU_TIMEOUT_MS) &&
             tu_counter_wait(&ws_delegates_destroyed, 3, TU_TIMEOUT_MS);
    CHECK(ok, "after destroy and reset the library lets go of the delegates (upstream %d, services %d of 3)",
          tu_counter_get(&upstreams_destroyed), tu_counter_get(&ws_delegates_destroyed));
    CHECK(!logged("httpServerRelease"), "the HttpServerRef's release after destroyHttpServer did not fail");

    oasis::finalize();
    CHECK(tu_counter_get(&upstreams_destroyed) == 1, "the HttpUpStreamDelegate was destroyed exactly once (%d)",
          tu_counter_get(&upstreams_destroyed));
    CHECK(tu_counter_get(&ws_delegates_destroyed) == 3, "each WsEventDelegate exactly once (%d of 3)",
          tu_counter_get(&ws_delegates_destroyed));
    CHECK(api_watch.expired() && echo_watch.expired(), "no delegate is left alive");
    CHECK(!logged("panic") && !logged("internal error"), "no internal error was logged");
    oasis_log_set_hook(nullptr, nullptr);

    remove_root(root);
    return tu_summary();
}
