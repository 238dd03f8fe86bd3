/*
 * cpp_api.cpp - the C++ layer of OasisNet.h/OasisAPI.h/OasisLog.h over real sockets: delegate
 * subclasses, the std::vector/std::string accessors, replies through the event, a WsEventRef
 * kept beyond its callback, a WsConnectionRef used from another thread, delegates that throw,
 * destroyWsServer followed by the WsServerRef going away, and delegate lifetimes.
 *
 * It calls the API unqualified after `using namespace oasis`, as the SDK samples do, so it also
 * shows that overload resolution picks the C++ functions over the C ones of the same name.
 */

#include "test_util.h"

#include "OasisAPI.h"
#include "OasisLog.h"
#include "OasisWeb.h"

#include <stdexcept>

#undef DLOG_TAG
#define DLOG_TAG "CPPTEST"

using namespace oasis;

// ---- log capture --------------------------------------------------------------------------

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

// ---- delegates (their state is guarded by tu_lock, like the C tests') -------------------------

// Delegates destroyed: the library dropped its copy of the shared_ptr and main's went too.
static tu_counter delegates_destroyed;
// Set once destroyWsServer has returned: no callback of the server's delegate may start after it.
static bool server_destroyed;
static int late_server_callbacks;

class Recorder : public WsEventDelegate
{
public:
    explicit Recorder(bool keep_connection = false)
        : opens(0), closes(0), errors(0), close_code(0), bad_order(0), keep_connection_(keep_connection)
    {
    }

    // Runs where the last shared_ptr goes: in the library's release (never under tu_lock: main
    // makes no library call while holding it) or when main's copy goes out of scope.
    ~Recorder() override { tu_counter_add(&delegates_destroyed, 1); }

    void onOpen(const WsEventRef &evt) override
    {
        // Only the server keeps one: a client delegate holding a reference to its own
        // connection would form a cycle (connection -> delegate -> connection) and leak both.
        WsConnectionRef connection;
        std::string path, query, host;
        bool has_host = false;
        if (keep_connection_) {
            connection = wsEventConnection(evt);
            // The request head is kept until onOpen returns: read what the request said now.
            path = wsConnectionRequestPath(connection);
            query = wsConnectionRequestQuery(connection);
            has_host = wsConnectionRequestHeader(connection, "host", host);
        }
        tu_lock();
        note_late_locked();
        if (opens || closes)
            bad_order++;
        opens++;
        if (!first_connection) {
            first_connection = connection;
            request_path = path;
            request_query = query;
            request_host = has_host ? host : "(none)";
        }
        tu_unlock_notify();
    }

    void onError(const WsEventRef &evt) override
    {
        int32_t code = wsEventStatusCode(evt);
        tu_lock();
        note_late_locked();
        errors++;
        close_code = code;
        tu_unlock_notify();
    }

    void onClose(const WsEventRef &evt) override
    {
        std::string reason;
        int32_t code = wsEventStatusCode(evt);
        wsEventText(evt, reason);
        tu_lock();
        note_late_locked();
        if (!opens)
            bad_order++;
        closes++;
        close_code = code;
        close_reason = reason;
        tu_unlock_notify();
    }

    int opens, closes, errors, close_code, bad_order;
    std::string close_reason;
    WsConnectionRef first_connection; // from wsEventConnection in onOpen, used by main
    std::string request_path, request_query, request_host; // its request, as seen in onOpen

protected:
    // Under tu_lock, at the start of every callback: counts the server's callbacks that start
    // after destroyWsServer returned (only the server keeps its connections).
    void note_late_locked()
    {
        if (keep_connection_ && server_destroyed)
            late_server_callbacks++;
    }

private:
    bool keep_connection_;
};

// Echoes "echo:<text>" and binaries; keeps the event of a "keep" text; throws on "throw".
class Server : public Recorder
{
public:
    Server() : Recorder(true), messages(0) {}

    void onMessage(const WsEventRef &evt) override
    {
        tu_lock();
        note_late_locked();
        tu_unlock();
        if (wsEventMessageType(evt) == kWsMessageBinary) {
            std::vector<uint8_t> data;
            wsEventData(evt, data);
            wsSendBinary(evt, data);
            count();
            return;
        }
        if (wsEventMessageType(evt) != kWsMessageText)
            return;
        std::string text;
        wsEventText(evt, text);
        count();
        if (text == "throw")
            throw std::runtime_error("thrown by the test's onMessage");
        if (text == "throw-int")
            throw 42;
        if (text == "keep") {
            tu_lock();
            kept = evt;
            tu_unlock();
        }
        if (text == "c-string")
            wsSendText(evt, "echo:c-string");
        else
            wsSendText(evt, std::string("echo:") + text);
    }

    int messages;
    WsEventRef kept;

private:
    void count()
    {
        tu_lock();
        messages++;
        tu_unlock_notify();
    }
};

class Client : public Recorder
{
public:
    void onMessage(const WsEventRef &evt) override
    {
        std::vector<uint8_t> data;
        int32_t size = wsEventData(evt, data);
        ws_message_t type = wsEventMessageType(evt);
        tu_lock();
        if (!opens || closes)
            bad_order++;
        if (type == kWsMessageText)
            texts.push_back(std::string(data.begin(), data.end()));
        else if (type == kWsMessageBinary)
            binaries.push_back(data);
        else if (type == kWsMessagePong)
            pongs++;
        if (size != static_cast<int32_t>(data.size()))
            bad_sizes++;
        tu_unlock_notify();
    }

    Client() : pongs(0), bad_sizes(0) {}

    bool has_text(const std::string &text) const
    {
        for (size_t i = 0; i < texts.size(); i++)
            if (texts[i] == text)
                return true;
        return false;
    }

    std::vector<std::string> texts;
    std::vector<std::vector<uint8_t> > binaries;
    int pongs, bad_sizes;
};

// Waits until the client has received `text`.
static bool wait_text(const std::shared_ptr<Client> &client, const std::string &text)
{
    int ok;
    TU_WAIT_FOR(ok, client->has_text(text), TU_TIMEOUT_MS);
    return ok != 0;
}

// ---- the checks ------------------------------------------------------------------------------

static void test_logging()
{
    int evaluated = 0;
    DLOG(DLOG_ERROR, "an error line %d\n", 7);
    CHECK(logged("[CPPTEST] an error line 7"), "DLOG(DLOG_ERROR) reaches the library logger with the tag");
    DLOG(0x40000000, "%d\n", ++evaluated);
    CHECK(evaluated == 0, "a disabled DLOG does not evaluate its arguments");
}

static void test_messages(const std::shared_ptr<Server> &server_delegate, const WsConnectionRef &conn,
                          const std::shared_ptr<Client> &client)
{
    CHECK(wsSendText(conn, "hello") == 0, "wsSendText(conn, const char*)");
    CHECK(wait_text(client, "echo:hello"), "reply through wsSendText(evt, std::string) arrives");

    CHECK(wsSendText(conn, "c-string") == 0 && wait_text(client, "echo:c-string"),
          "reply through wsSendText(evt, const char*) arrives");

    std::string with_nul("a\0b", 3);
    CHECK(wsSendText(conn, with_nul) == 0, "wsSendText(conn, std::string) with an embedded NUL");
    CHECK(wait_text(client, std::string("echo:a\0b", 8)), "wsEventText and the std::string send keep all the bytes");

    std::vector<uint8_t> binary;
    for (int i = 0; i < 1000; i++)
        binary.push_back(static_cast<uint8_t>(i * 31));
    CHECK(wsSendBinary(conn, binary) == 0, "wsSendBinary(conn, std::vector)");
    int ok;
    TU_WAIT_FOR(ok, !client->binaries.empty(), TU_TIMEOUT_MS);
    tu_lock();
    CHECK(ok && client->binaries.back() == binary, "wsEventData(evt, std::vector) and wsSendBinary(evt, ...) echo it");
    tu_unlock();

    CHECK(wsSendBinary(conn, binary.data(), 10) == 0, "wsSendBinary(conn, pointer, length)");
    TU_WAIT_FOR(ok, client->binaries.size() >= 2, TU_TIMEOUT_MS);
    tu_lock();
    CHECK(ok && client->binaries.back() == std::vector<uint8_t>(binary.begin(), binary.begin() + 10),
          "and its echo arrives");
    tu_unlock();

    CHECK(wsSendPing(conn) == 0, "wsSendPing(conn) with the default empty payload");
    TU_WAIT_FOR(ok, client->pongs >= 1, TU_TIMEOUT_MS);
    CHECK(ok, "the pong arrives");

    CHECK(wsConnectionProtocol(conn) == "", "wsConnectionProtocol is \"\" without subprotocols");
    tu_lock();
    WsConnectionRef server_side = server_delegate->first_connection;
    std::string path = server_delegate->request_path, query = server_delegate->request_query,
                host = server_delegate->request_host;
    tu_unlock();
    CHECK(path == "/cpp" && query == "x=1", "in onOpen the server side's request is /cpp?x=1 (\"%s\" \"%s\")",
          path.c_str(), query.c_str());
    CHECK(host.compare(0, 10, "127.0.0.1:") == 0, "and its Host header is there (\"%s\")", host.c_str());
    std::string value = "stale";
    CHECK(server_side && !wsConnectionRequestHeader(server_side, "host", value) && value.empty(),
          "after onOpen the header is gone (false, value cleared)");
    CHECK(wsConnectionRequestPath(conn) == "/cpp" && wsConnectionRequestQuery(conn) == "x=1",
          "the client side reports its URL's path and query");
    CHECK(server_side && wsConnectionPeerAddress(server_side).compare(0, 10, "127.0.0.1:") == 0,
          "wsConnectionPeerAddress of the server side: \"%s\"", wsConnectionPeerAddress(server_side).c_str());
    int marker = 0;
    CHECK(wsConnectionSetUserData(conn, &marker) == 0 && wsConnectionGetUserData(conn) == &marker,
          "wsConnectionSetUserData/GetUserData round-trip");
    CHECK(wsConnectionIsOpen(conn) == 1, "wsConnectionIsOpen");
}

static void test_kept_event(const std::shared_ptr<Server> &server_delegate, const WsConnectionRef &conn,
                            const std::shared_ptr<Client> &client)
{
    CHECK(wsSendText(conn, "keep") == 0 && wait_text(client, "echo:keep"), "a message the server keeps");
    // The next echoes prove the "keep" callback has returned and the loop moved on.
    CHECK(wsSendText(conn, "after-1") == 0 && wsSendText(conn, "after-2") == 0 && wait_text(client, "echo:after-2"),
          "two more messages after it");
    tu_lock();
    WsEventRef kept = server_delegate->kept;
    server_delegate->kept.reset();
    tu_unlock();
    CHECK(kept != nullptr, "the server kept a WsEventRef copy");
    if (!kept)
        return;
    std::string text;
    std::vector<uint8_t> data;
    CHECK(wsEventMessageType(kept) == kWsMessageText, "the kept event is still a text message");
    CHECK(wsEventText(kept, text) == 4 && text == "keep", "its text is intact (\"%s\")", text.c_str());
    CHECK(wsEventData(kept, data) == 4 && std::string(data.begin(), data.end()) == "keep", "its data is intact");
    CHECK(kept.use_count() == 1, "main holds the only copy now");
    // The last copy releases the library's event: its handle goes stale.
    WsEvent *raw = kept.get();
    kept.reset();
    errno = 0;
    ws_message_t type = ::wsEventMessageType(raw);
    int error = errno;
    CHECK(type == kWsMessageUnknown && error == EBADF, "dropping the last copy released the event (errno %d)",
          error);
}

static void test_connection_from_thread(const std::shared_ptr<Server> &server_delegate,
                                        const std::shared_ptr<Client> &client)
{
    tu_lock();
    WsConnectionRef server_side = server_delegate->first_connection;
    tu_unlock();
    CHECK(server_side != nullptr, "a WsConnectionRef from wsEventConnection in onOpen");
    if (!server_side)
        return;
    int32_t results[3] = {-1, -1, -1};
    std::thread sender([&]() {
        results[0] = wsSendText(server_side, "from-thread");
        results[1] = wsSendText(server_side, std::string("from-thread-2"));
        results[2] = wsSendPing(server_side, "x", 1);
    });
    sender.join();
    CHECK(results[0] == 0 && results[1] == 0 && results[2] == 0, "sends on it from another std::thread succeed");
    CHECK(wait_text(client, "from-thread") && wait_text(client, "from-thread-2"), "and arrive");
}

static void test_throwing_delegate(const std::shared_ptr<Server> &server_delegate, const WsConnectionRef &conn,
                                   const std::shared_ptr<Client> &client)
{
    tu_lock();
    int before = server_delegate->messages;
    tu_unlock();
    CHECK(wsSendText(conn, "throw") == 0 && wsSendText(conn, "throw-int") == 0, "messages whose onMessage throws");
    CHECK(wsSendText(conn, "still-there") == 0 && wait_text(client, "echo:still-there"),
          "the library survives and keeps serving the same connection");
    tu_lock();
    CHECK(server_delegate->messages == before + 3, "the throwing callbacks ran (%d)", server_delegate->messages - before);
    tu_unlock();
    CHECK(logged("exception in onMessage") && logged("thrown by the test's onMessage"),
          "the exception is logged with its what()");
    CHECK(wsConnectionIsOpen(conn) == 1, "the connection is still open");
}

static void test_close_with_status(const std::shared_ptr<Server> &server_delegate, const WsConnectionRef &conn,
                                   const std::shared_ptr<Client> &client)
{
    CHECK(wsCloseConnection(conn, 4002, "done") == 0, "wsCloseConnection(conn, 4002, \"done\")");
    int ok;
    TU_WAIT_FOR(ok, server_delegate->closes >= 1 && client->closes >= 1, TU_TIMEOUT_MS);
    tu_lock();
    CHECK(ok && server_delegate->close_code == 4002, "server onClose with 4002 (got %d)", server_delegate->close_code);
    CHECK(server_delegate->close_reason == "done", "wsEventText gives the reason \"done\" (got \"%s\")",
          server_delegate->close_reason.c_str());
    CHECK(client->closes == 1, "client onClose");
    tu_unlock();
    CHECK(wsSendText(conn, "late") == -1 && errno == ENOTCONN, "sending after the close: -1/ENOTCONN");
}

int main()
{
    oasis_log_set_hook(capture_log, nullptr);

    {
        TTYRaw tty; // constructing and destroying one must leave the terminal alone
        (void)tty;
    }

    key_value_map_t parameters;
    parameters["offs-disable"] = "1";
    CHECK(oasis::initialize(parameters) == 0, "oasis::initialize");
    test_logging();

    std::weak_ptr<Server> server_watch;
    std::weak_ptr<Client> client_watch, client2_watch;
    {
        std::shared_ptr<Server> server_delegate = std::make_shared<Server>();
        server_watch = server_delegate;
        parameters.clear();
        parameters["port"] = "0";
        parameters["bind-address"] = "127.0.0.1";
        WsServerRef server = createWsServer(parameters, server_delegate);
        CHECK(server != nullptr, "createWsServer");
        if (!server)
            return tu_summary();
        CHECK(startWsServer(server) == 0, "startWsServer");
        int32_t port = wsServerPort(server);
        CHECK(port > 0, "wsServerPort (%d)", port);
        std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/cpp?x=1";

        std::shared_ptr<Client> client = std::make_shared<Client>();
        client_watch = client;
        parameters.clear();
        WsConnectionRef conn = wsOpenConnection(url.c_str(), parameters, client, 3000);
        CHECK(conn != nullptr, "wsOpenConnection");
        if (conn) {
            int ok;
            TU_WAIT_FOR(ok, client->opens == 1 && server_delegate->opens == 1, TU_TIMEOUT_MS);
            CHECK(ok, "onOpen on both sides");
            test_messages(server_delegate, conn, client);
            test_kept_event(server_delegate, conn, client);
            test_connection_from_thread(server_delegate, client);
            test_throwing_delegate(server_delegate, conn, client);
            test_close_with_status(server_delegate, conn, client);
        }

        // A second connection, still open when the server is destroyed.
        std::shared_ptr<Client> client2 = std::make_shared<Client>();
        client2_watch = client2;
        WsConnectionRef conn2 = wsOpenConnection(url.c_str(), parameters, client2, 3000);
        CHECK(conn2 != nullptr, "a second connection");
        int ok;
        TU_WAIT_FOR(ok, client2->opens == 1 && server_delegate->opens == 2, TU_TIMEOUT_MS);
        CHECK(ok, "is open");
        {
            // Dropped outside tu_lock: the last reference may end in the library.
            WsConnectionRef first;
            tu_lock();
            first.swap(server_delegate->first_connection);
            tu_unlock();
        }

        CHECK(destroyWsServer(server) == 0, "destroyWsServer (the WsServerRef still holds its reference)");
        tu_lock();
        server_destroyed = true;
        int server_closes = server_delegate->closes, server_close_code = server_delegate->close_code;
        tu_unlock();
        // It stops the server as stopWsServer does, which waits for the server side's onClose.
        CHECK(server_closes == 2 && server_close_code == 1001,
              "destroyWsServer returns after the server's onClose 1001 for the connection still open (closes %d, "
              "code %d)",
              server_closes, server_close_code);
        TU_WAIT_FOR(ok, client2->closes == 1, TU_TIMEOUT_MS);
        tu_lock();
        CHECK(ok && client2->close_code == 1001, "the open client gets onClose 1001 (got %d)", client2->close_code);
        tu_unlock();
        CHECK(startWsServer(server) == -1, "a destroyed server does not start");
        // server, conn and conn2 go out of scope here: the deleters release the handles once.
    }
    // A second release of a handle would fail with EBADF and log a warning naming the function.
    CHECK(!logged("wsServerRelease") && !logged("wsConnectionRelease"),
          "the WsServerRef and WsConnectionRef deleters after destroyWsServer: no release failed");
    // The library releases each delegate once its server or connection is gone; main's
    // shared_ptrs went with the scope, so each release destroys its delegate.
    int destroyed = tu_counter_wait(&delegates_destroyed, 3, TU_TIMEOUT_MS);
    CHECK(destroyed, "with the handles gone the library releases the server's and both clients' delegates, before "
                     "oasis::finalize (%d of 3 destroyed)",
          tu_counter_get(&delegates_destroyed));

    oasis::finalize();
    // No callback runs after finalize returned (every event loop is joined).
    tu_lock();
    CHECK(late_server_callbacks == 0, "no callback of the server's delegate started after destroyWsServer returned (%d did)",
          late_server_callbacks);
    tu_unlock();
    CHECK(server_watch.expired() && client_watch.expired() && client2_watch.expired(),
          "after finalize the library no longer holds any delegate (server %s, client %s, client 2 %s)",
          server_watch.expired() ? "gone" : "alive", client_watch.expired() ? "gone" : "alive",
          client2_watch.expired() ? "gone" : "alive");
    CHECK(!logged("panic") && !logged("internal error"), "no internal error was logged");

    oasis_log_set_hook(nullptr, nullptr);
    return tu_summary();
}
