// The HTTP demo (make demo): one port serves a web page from its root folder and a WebSocket
// service at /ws, as a camera serves its page and the live data the page shows.
//
//   http_demo [--port N] [--bind ADDR] [--root DIR] [--tls CERTDIR] [--expect TEXT]
//
// Every second each connected page gets a status line (uptime, connected clients); text a page
// sends comes back as "echo: <text>". GET /api/status is answered by the firmware (onRequest)
// with JSON. --tls CERTDIR serves https and wss with CERTDIR/fullchain.pem and
// CERTDIR/privkey.pem; when they are not there, the demo makes a self-signed certificate for
// localhost and 127.0.0.1 there first, with the openssl command (browsers warn about it).
//
// --expect TEXT makes the program a test peer: on Ctrl-C (SIGINT) or SIGTERM it exits 0 only if
// a browser sent TEXT over /ws, with the page's own origin and a Chrome user agent, and that
// connection then closed; it prints a "check:" line for each.
#include "OasisAPI.h"
#include "OasisWeb.h"

#include <atomic>
#include <cstdlib>
#include <sys/stat.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>
#include <string>
#include <thread>

using namespace oasis;

static volatile std::sig_atomic_t running = 1;

static void on_signal(int)
{
    running = 0;
}

// What the --expect checks look for, filled in by the callbacks.
struct Expectations {
    std::string text;
    std::string origin;
    std::mutex lock;
    bool received = false;
    bool on_service_path = false;
    bool same_origin = false;
    bool chrome = false;
    bool closed = false;
    WsConnection *sender = nullptr;
};

class LiveDelegate : public WsEventDelegate
{
public:
    explicit LiveDelegate(Expectations &expect) : expect_(expect) {}

    void onOpen(const WsEventRef &event) override
    {
        WsConnectionRef connection = wsEventConnection(event);
        std::string origin, agent;
        wsConnectionRequestHeader(connection, "Origin", origin);
        wsConnectionRequestHeader(connection, "User-Agent", agent);
        std::printf("ws open: %s from %s (origin %s)\n", wsConnectionRequestPath(connection).c_str(),
                    wsConnectionPeerAddress(connection).c_str(), origin.empty() ? "none" : origin.c_str());
        std::lock_guard<std::mutex> guard(lock_);
        clients_.insert(connection);
        // Kept for the --expect checks: onOpen is where the request headers can be read.
        origins_[connection.get()] = origin;
        agents_[connection.get()] = agent;
    }

    void onMessage(const WsEventRef &event) override
    {
        std::string text;
        if (wsEventMessageType(event) != kWsMessageText || wsEventText(event, text) < 0)
            return;
        wsSendText(event, "echo: " + text);
        if (expect_.text.empty() || text != expect_.text)
            return;
        WsConnectionRef connection = wsEventConnection(event);
        std::lock_guard<std::mutex> guard(lock_);
        std::lock_guard<std::mutex> checks(expect_.lock);
        expect_.received = true;
        expect_.sender = connection.get();
        expect_.on_service_path = wsConnectionRequestPath(connection) == "/ws";
        expect_.same_origin = origins_[connection.get()] == expect_.origin;
        expect_.chrome = agents_[connection.get()].find("Chrome") != std::string::npos;
    }

    void onClose(const WsEventRef &event) override
    {
        WsConnectionRef connection = wsEventConnection(event);
        std::printf("ws close: %d\n", wsEventStatusCode(event));
        std::lock_guard<std::mutex> guard(lock_);
        {
            std::lock_guard<std::mutex> checks(expect_.lock);
            if (expect_.sender == connection.get())
                expect_.closed = true;
        }
        clients_.erase(connection);
        origins_.erase(connection.get());
        agents_.erase(connection.get());
    }

    void onError(const WsEventRef &event) override { onClose(event); }

    // What a camera pushes to every open page.
    void pushStatus(long uptime)
    {
        std::lock_guard<std::mutex> guard(lock_);
        char now[32];
        std::time_t t = std::time(nullptr);
        std::strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
        std::string line = "status uptime=" + std::to_string(uptime) + "s clients=" + std::to_string(clients_.size()) +
                           " time=" + now;
        for (const WsConnectionRef &connection : clients_)
            wsSendText(connection, line);
    }

    size_t clientCount()
    {
        std::lock_guard<std::mutex> guard(lock_);
        return clients_.size();
    }

private:
    Expectations &expect_;
    std::mutex lock_;
    std::set<WsConnectionRef> clients_;
    std::map<WsConnection *, std::string> origins_;
    std::map<WsConnection *, std::string> agents_;
};

// Routes the firmware answers itself: here one small JSON status document.
class DeviceApi : public HttpUpStreamDelegate
{
public:
    DeviceApi(LiveDelegate &live, std::chrono::steady_clock::time_point started) : live_(live), started_(started) {}

    void onRequest(const HttpRequestRef &request) override
    {
        if (httpRequestPath(request) != "/api/status")
            return; // untouched: 404
        if (httpRequestMethod(request) != "GET" && httpRequestMethod(request) != "HEAD") {
            httpResponseSetStatus(request, 405);
            httpResponseAddHeader(request, "Allow", "GET, HEAD");
            return;
        }
        long uptime = static_cast<long>(
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count());
        std::string json = "{\"uptime\":" + std::to_string(uptime) +
                           ",\"clients\":" + std::to_string(live_.clientCount()) + "}";
        httpResponseSetStatus(request, 200);
        httpResponseAddHeader(request, "Cache-Control", "no-store");
        httpResponseSetBody(request, "application/json", json);
    }

private:
    LiveDelegate &live_;
    std::chrono::steady_clock::time_point started_;
};

static bool exists(const std::string &path)
{
    struct stat info;
    return stat(path.c_str(), &info) == 0;
}

// A self-signed certificate for the demo, made once with the openssl command line tool: the
// library reads certificates, it does not make them.
static bool make_certificate(const std::string &dir)
{
    if (exists(dir + "/fullchain.pem") && exists(dir + "/privkey.pem"))
        return true;
    std::string command = "mkdir -p '" + dir + "' && openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost" +
                          " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout '" + dir +
                          "/privkey.pem' -out '" + dir + "/fullchain.pem' 2>/dev/null";
    std::printf("making a self-signed certificate in %s (openssl)\n", dir.c_str());
    if (std::system(command.c_str()) != 0) {
        std::fprintf(stderr, "could not make a certificate in %s (is openssl installed?)\n", dir.c_str());
        return false;
    }
    return true;
}

static void usage(const char *program)
{
    std::fprintf(stderr, "usage: %s [--port N] [--bind ADDR] [--root DIR] [--tls CERTDIR] [--expect TEXT]\n", program);
}

int main(int argc, char *argv[])
{
    std::string port = "8080", bind = "127.0.0.1", root = "c-examples/www", tls, expect_text;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (i + 1 >= argc) {
            usage(argv[0]);
            return 2;
        }
        if (arg == "--port")
            port = argv[++i];
        else if (arg == "--bind")
            bind = argv[++i];
        else if (arg == "--root")
            root = argv[++i];
        else if (arg == "--tls")
            tls = argv[++i];
        else if (arg == "--expect")
            expect_text = argv[++i];
        else {
            usage(argv[0]);
            return 2;
        }
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    if (!tls.empty() && !make_certificate(tls))
        return 1;
    key_value_map_t parameters;
    if (initialize(parameters) < 0) {
        std::perror("initialize");
        return 1;
    }
    const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    Expectations expect;
    expect.text = expect_text;
    std::shared_ptr<LiveDelegate> live = std::make_shared<LiveDelegate>(expect);

    parameters["port"] = port;
    parameters["bind-address"] = bind;
    parameters["root-dir"] = root;
    if (!tls.empty()) {
        parameters["cert-file-path"] = tls + "/fullchain.pem";
        parameters["pkey-file-path"] = tls + "/privkey.pem";
    }
    HttpServerRef server = createHttpServer(parameters, std::make_shared<DeviceApi>(*live, started));
    if (!server) {
        std::fprintf(stderr, "cannot create the HTTP server: %s\n", std::strerror(errno));
        finalize();
        return 1;
    }
    key_value_map_t service;
    if (createHttpWsService(server, "/ws", service, live) < 0 || startHttpServer(server) < 0) {
        std::fprintf(stderr, "cannot start the HTTP server on %s:%s: %s\n", bind.c_str(), port.c_str(),
                     std::strerror(errno));
        destroyHttpServer(server);
        finalize();
        return 1;
    }
    const char *scheme = tls.empty() ? "http" : "https";
    std::string shown = bind == "0.0.0.0" || bind == "::" ? "127.0.0.1" : bind;
    std::string base = std::string(scheme) + "://" + shown + ":" + std::to_string(httpServerPort(server));
    expect.origin = base;
    std::printf("open %s/ in a browser (DEMO_PORT=... DEMO_BIND=0.0.0.0 TLS=1 to change; Ctrl-C stops)\n",
                base.c_str());
    std::fflush(stdout);

    long uptime = 0;
    std::chrono::steady_clock::time_point next = started;
    while (running) {
        next += std::chrono::seconds(1);
        while (running && std::chrono::steady_clock::now() < next)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (running)
            live->pushStatus(++uptime);
    }

    destroyHttpServer(server);
    server.reset();
    finalize();
    if (expect_text.empty())
        return 0;
    std::lock_guard<std::mutex> checks(expect.lock);
    bool ok = expect.received && expect.on_service_path && expect.same_origin && expect.chrome && expect.closed;
    std::printf("check: received the expected text: %s\n", expect.received ? "yes" : "no");
    std::printf("check: on path /ws: %s\n", expect.on_service_path ? "yes" : "no");
    std::printf("check: Origin %s: %s\n", expect.origin.c_str(), expect.same_origin ? "yes" : "no");
    std::printf("check: Chrome user agent: %s\n", expect.chrome ? "yes" : "no");
    std::printf("check: that connection closed: %s\n", expect.closed ? "yes" : "no");
    std::printf("check: %s\n", ok ? "all passed" : "FAILED");
    return ok ? 0 : 1;
}
