/*
 * OasisWeb.h - the Oasis SDK HTTP server API: an HTTP(S) server with static files, WebSocket
 * services on its URLs (createHttpWsService), and answers written by the firmware.
 *
 * C programs get the C interface of oasis_net.h (createHttpServer, startHttpServer, ...). C++
 * programs also get, in namespace oasis, the forms below, written inline over the C interface.
 *
 * The original SDK document shows no HTTP types of its own, so HttpServerRef,
 * HttpUpStreamDelegate and HttpRequestRef are this library's: kept small on purpose.
 *
 * Routing, in this order: a filter (HttpUpStreamDelegate::onFilter) sees every request and may
 * refuse it; then a WebSocket service path; then a file under root-dir; then onRequest; else 404.
 */

#ifndef OASIS_WEB_H
#define OASIS_WEB_H

#include "OasisNet.h"

#ifdef __cplusplus

namespace oasis {

typedef std::shared_ptr<HttpServer> HttpServerRef;
// Borrowed for the duration of one onFilter or onRequest call: a copy kept after the callback
// returns refers to nothing (the C functions then fail with EBADF).
typedef std::shared_ptr<HttpRequest> HttpRequestRef;

// The firmware's part of an HTTP server. Both callbacks run on an event-loop thread: keep them
// short (a slow one delays the other connections of that loop).
class HttpUpStreamDelegate : public std::enable_shared_from_this<HttpUpStreamDelegate>
{
public:
    HttpUpStreamDelegate() {}
    virtual ~HttpUpStreamDelegate() {}

public:
    // Sees every request before routing: 0 lets it through, a status (401, 403, ...) refuses it.
    // Headers added with httpResponseAddHeader (WWW-Authenticate, say) go out with the refusal.
    virtual int32_t onFilter(const HttpRequestRef &) { return 0; }
    // A request that matched no WebSocket service and no file. Set a status, headers and a body
    // to answer it; nothing set answers 404, a body or a header without a status answers 200.
    virtual void onRequest(const HttpRequestRef &) {}
};

namespace detail {

struct HttpServerDeleter {
    void operator()(HttpServer *server) const { ::httpServerRelease(server); }
};

struct NoDelete {
    void operator()(HttpRequest *) const {}
};

inline std::shared_ptr<HttpUpStreamDelegate> &upstream(void *user)
{
    return *static_cast<std::shared_ptr<HttpUpStreamDelegate> *>(user);
}

// No C++ exception may unwind into the library. A filter that throws refuses with 500.
inline int32_t onFilterTrampoline(void *user, HttpRequest *raw) noexcept
{
    try {
        return upstream(user)->onFilter(HttpRequestRef(raw, NoDelete()));
    } catch (const std::exception &e) {
        logException("onFilter", e.what());
    } catch (...) {
        logException("onFilter", nullptr);
    }
    return 500;
}

inline void onRequestTrampoline(void *user, HttpRequest *raw) noexcept
{
    try {
        upstream(user)->onRequest(HttpRequestRef(raw, NoDelete()));
    } catch (const std::exception &e) {
        logException("onRequest", e.what());
        ::httpResponseSetStatus(raw, 500);
    } catch (...) {
        logException("onRequest", nullptr);
        ::httpResponseSetStatus(raw, 500);
    }
}

inline void upstreamReleaseTrampoline(void *user) noexcept
{
    delete static_cast<std::shared_ptr<HttpUpStreamDelegate> *>(user);
}

inline const HttpUpStreamDelegateVTable *upstreamVTable()
{
    static const HttpUpStreamDelegateVTable table = {
        sizeof(HttpUpStreamDelegateVTable),
        onFilterTrampoline,
        onRequestTrampoline,
        upstreamReleaseTrampoline,
    };
    return &table;
}

} // namespace detail

// ---- the server ---------------------------------------------------------------------------

// NULL (an empty HttpServerRef) on failure, with errno set; the delegate may be null.
inline HttpServerRef createHttpServer(key_value_map_t &parameters,
                                      const std::shared_ptr<HttpUpStreamDelegate> &delegate)
{
    detail::KeyValueArray pairs(parameters);
    HttpServer *server = ::createHttpServer(pairs.data(), pairs.size(), delegate ? detail::upstreamVTable() : nullptr,
                                            delegate ? new std::shared_ptr<HttpUpStreamDelegate>(delegate) : nullptr);
    if (!server)
        return HttpServerRef();
    return HttpServerRef(server, detail::HttpServerDeleter());
}

inline int32_t startHttpServer(const HttpServerRef &server)
{
    return ::startHttpServer(server.get());
}

inline int32_t stopHttpServer(const HttpServerRef &server)
{
    return ::stopHttpServer(server.get());
}

// The HttpServerRef still owns a reference that its deleter drops, so this shuts the server
// down without releasing it (C destroyHttpServer would release it a second time).
inline int32_t destroyHttpServer(const HttpServerRef &server)
{
    return ::httpServerShutdown(server.get());
}

inline int32_t httpServerPort(const HttpServerRef &server)
{
    return ::httpServerPort(server.get());
}

// An upgrade request to url_path becomes a WebSocket connection handled like one of
// createWsServer, with this delegate and these parameters. 0, or -1 with errno.
inline int32_t createHttpWsService(const HttpServerRef &server, const char *url_path, key_value_map_t &parameters,
                                   const std::shared_ptr<WsEventDelegate> &delegate)
{
    detail::KeyValueArray pairs(parameters);
    return ::createHttpWsService(server.get(), url_path, pairs.data(), pairs.size(),
                                 delegate ? detail::delegateVTable() : nullptr, detail::delegateUser(delegate));
}

// ---- the request, inside onFilter and onRequest --------------------------------------------

inline std::string httpRequestMethod(const HttpRequestRef &request)
{
    return detail::fetchString(request.get(), ::httpRequestMethod);
}

// The path, percent-decoded and cleaned ("/a b/c" for "/a%20b/./c").
inline std::string httpRequestPath(const HttpRequestRef &request)
{
    return detail::fetchString(request.get(), ::httpRequestPath);
}

// The query as sent, without '?' (empty when there is none).
inline std::string httpRequestQuery(const HttpRequestRef &request)
{
    return detail::fetchString(request.get(), ::httpRequestQuery);
}

// True and the value when the request has the header (name compared without regard to case).
inline bool httpRequestHeader(const HttpRequestRef &request, const char *name, std::string &value)
{
    HttpRequest *raw = request.get();
    return detail::fetchInto(
        [&](char *buffer, size_t capacity) { return ::httpRequestHeader(raw, name, buffer, capacity); }, value);
}

// Copies the request body into `body`: its length, or -1 with errno.
inline int32_t httpRequestBody(const HttpRequestRef &request, std::vector<uint8_t> &body)
{
    const uint8_t *data = nullptr;
    int32_t length = ::httpRequestBody(request.get(), &data);
    if (length < 0)
        return length;
    body.assign(data, data + length);
    return length;
}

inline int32_t httpResponseSetStatus(const HttpRequestRef &request, int32_t status)
{
    return ::httpResponseSetStatus(request.get(), status);
}

inline int32_t httpResponseAddHeader(const HttpRequestRef &request, const char *name, const char *value)
{
    return ::httpResponseAddHeader(request.get(), name, value);
}

inline int32_t httpResponseSetBody(const HttpRequestRef &request, const char *content_type, const void *data,
                                   size_t length)
{
    return ::httpResponseSetBody(request.get(), content_type, data, length);
}

inline int32_t httpResponseSetBody(const HttpRequestRef &request, const char *content_type, const std::string &body)
{
    return ::httpResponseSetBody(request.get(), content_type, body.data(), body.size());
}

} // namespace oasis

#endif /* __cplusplus */

#endif /* OASIS_WEB_H */
