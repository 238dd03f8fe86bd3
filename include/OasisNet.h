/*
 * OasisNet.h - the Oasis SDK WebSocket API.
 *
 * C programs get the C interface of oasis_net.h. C++ programs also get namespace oasis: the
 * documented C++ API (WsEventDelegate, WsServerRef, WsConnectionRef, WsEventRef and the functions
 * taking them), written inline over the C interface so that no C++ ABI crosses the library
 * boundary.
 */

#ifndef OASIS_NET_CXX_H
#define OASIS_NET_CXX_H

#include "oasis_net.h"

#ifdef __cplusplus

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace oasis {

typedef std::map<std::string, std::string> key_value_map_t;
typedef std::shared_ptr<WsEvent> WsEventRef;
typedef std::shared_ptr<WsServer> WsServerRef;
typedef std::shared_ptr<WsConnection> WsConnectionRef;

class WsEventDelegate : public std::enable_shared_from_this<WsEventDelegate>
{
public:
    WsEventDelegate() {}
    virtual ~WsEventDelegate() {}

public:
    virtual void onOpen(const WsEventRef &) {}
    virtual void onMessage(const WsEventRef &) {}
    virtual void onError(const WsEventRef &) {}
    virtual void onClose(const WsEventRef &) {}
};

namespace detail {

// The C functions share their names with the C++ ones below, so every call into the library
// is written ::name(...): inside this namespace an unqualified name would find the C++ overload
// set and hide the C function.

struct ConnectionDeleter {
    void operator()(WsConnection *connection) const { ::wsConnectionRelease(connection); }
};

struct ServerDeleter {
    void operator()(WsServer *server) const { ::wsServerRelease(server); }
};

// Events are borrowed from the library for the duration of a callback. The WsEventRef handed
// to the delegate shares ownership of an EventHolder; unless the delegate keeps a copy, the
// holder owns nothing and the next callback on the thread reuses it (no allocation per event).
// When the delegate kept a copy, the trampoline retains the event and flips `retained`, so that
// the holder, going with the last copy, releases it.
struct EventHolder {
    WsEvent *event;
    bool retained;
    EventHolder() : event(nullptr), retained(false) {}
    ~EventHolder()
    {
        if (retained)
            ::wsEventRelease(event);
    }
    EventHolder(const EventHolder &) = delete;
    EventHolder &operator=(const EventHolder &) = delete;
};

// The holder the next callback on this thread may reuse: empty while a callback runs (a nested
// one makes its own) or after the last one's event was kept.
inline std::shared_ptr<EventHolder> &spareEventHolder()
{
    static thread_local std::shared_ptr<EventHolder> spare;
    return spare;
}

// Keeps the C strings alive for the duration of one C call.
class KeyValueArray
{
public:
    explicit KeyValueArray(const key_value_map_t &parameters)
    {
        pairs_.reserve(parameters.size());
        for (key_value_map_t::const_iterator it = parameters.begin(); it != parameters.end(); ++it) {
            OasisKeyValue pair;
            pair.key = it->first.c_str();
            pair.value = it->second.c_str();
            pairs_.push_back(pair);
        }
    }
    const OasisKeyValue *data() const { return pairs_.empty() ? nullptr : &pairs_[0]; }
    size_t size() const { return pairs_.size(); }

private:
    std::vector<OasisKeyValue> pairs_;
};

inline void logException(const char *callback, const char *what) noexcept
{
    try {
        std::string line = std::string("exception in ") + callback + ": " + (what ? what : "unknown exception");
        ::oasis_log_message(OASIS_LOG_ERROR, "oasis", line.c_str());
    } catch (...) {
        ::oasis_log_message(OASIS_LOG_ERROR, "oasis", "exception in a delegate callback");
    }
}

typedef void (WsEventDelegate::*Callback)(const WsEventRef &);

// No C++ exception may unwind into the library: it is Rust, and its frames cannot be unwound
// by the C++ runtime.
inline void dispatch(void *user, WsEvent *raw, Callback callback, const char *name) noexcept
{
    try {
        std::shared_ptr<WsEventDelegate> &delegate = *static_cast<std::shared_ptr<WsEventDelegate> *>(user);
        std::shared_ptr<EventHolder> holder;
        holder.swap(spareEventHolder());
        if (!holder || holder.use_count() != 1)
            holder = std::make_shared<EventHolder>();
        holder->event = raw;
        WsEventRef event(holder, raw);
        // Beyond `holder` and `event`, any reference is a copy the delegate kept. Still inside
        // the C callback, so the event is valid here. Only a successful retain may be marked:
        // the last copy would otherwise release a reference never taken.
        try {
            ((*delegate).*callback)(event);
        } catch (...) {
            // Still keep the event alive for any copy the delegate made before throwing.
            if (event.use_count() > 2 && ::wsEventRetain(raw) == 0)
                holder->retained = true;
            throw;
        }
        if (event.use_count() > 2) {
            if (::wsEventRetain(raw) == 0)
                holder->retained = true;
            return;
        }
        holder.swap(spareEventHolder());
    } catch (const std::exception &e) {
        logException(name, e.what());
    } catch (...) {
        logException(name, nullptr);
    }
}

inline void onOpenTrampoline(void *user, WsEvent *event) noexcept
{
    dispatch(user, event, &WsEventDelegate::onOpen, "onOpen");
}

inline void onMessageTrampoline(void *user, WsEvent *event) noexcept
{
    dispatch(user, event, &WsEventDelegate::onMessage, "onMessage");
}

inline void onErrorTrampoline(void *user, WsEvent *event) noexcept
{
    dispatch(user, event, &WsEventDelegate::onError, "onError");
}

inline void onCloseTrampoline(void *user, WsEvent *event) noexcept
{
    dispatch(user, event, &WsEventDelegate::onClose, "onClose");
}

inline void releaseTrampoline(void *user) noexcept
{
    try {
        delete static_cast<std::shared_ptr<WsEventDelegate> *>(user);
    } catch (...) {
        logException("the delegate's destructor", nullptr);
    }
}

inline const WsEventDelegateVTable *delegateVTable()
{
    static const WsEventDelegateVTable vtable = {
        sizeof(WsEventDelegateVTable),
        onOpenTrampoline,
        onMessageTrampoline,
        onErrorTrampoline,
        onCloseTrampoline,
        releaseTrampoline,
    };
    return &vtable;
}

// The library calls release(user) exactly once, also when the creating call fails, so the
// holder is never deleted here.
inline void *delegateUser(const std::shared_ptr<WsEventDelegate> &delegate)
{
    return delegate ? new std::shared_ptr<WsEventDelegate>(delegate) : nullptr;
}

// Fetches a string the C side writes snprintf-style into `out` (cleared on failure); false when
// the call fails. `call(buffer, capacity)` makes the C call; most answers fit the first buffer.
template <typename Call>
inline bool fetchInto(Call call, std::string &out)
{
    out.clear();
    char buffer[128];
    int32_t length = call(buffer, sizeof buffer);
    if (length < 0)
        return false;
    if (static_cast<size_t>(length) < sizeof buffer) {
        out.assign(buffer, static_cast<size_t>(length));
        return true;
    }
    std::vector<char> large(static_cast<size_t>(length) + 1);
    length = call(&large[0], large.size());
    if (length < 0)
        return false;
    out.assign(&large[0], std::min(static_cast<size_t>(length), large.size() - 1));
    return true;
}

// The same for a getter of the form getter(handle, buffer, capacity), as a return value ("" on
// failure).
template <typename Handle, typename Getter>
inline std::string fetchString(Handle *handle, Getter getter)
{
    std::string out;
    fetchInto([&](char *buffer, size_t capacity) { return getter(handle, buffer, capacity); }, out);
    return out;
}

} // namespace detail

// ---- server -------------------------------------------------------------------------------

inline WsServerRef createWsServer(key_value_map_t &parameters, const std::shared_ptr<WsEventDelegate> &delegate)
{
    detail::KeyValueArray pairs(parameters);
    WsServer *server = ::createWsServer(pairs.data(), pairs.size(), delegate ? detail::delegateVTable() : nullptr,
                                        detail::delegateUser(delegate));
    if (!server)
        return WsServerRef();
    return WsServerRef(server, detail::ServerDeleter());
}

inline int32_t startWsServer(const WsServerRef &server)
{
    return ::startWsServer(server.get());
}

inline int32_t stopWsServer(const WsServerRef &server)
{
    return ::stopWsServer(server.get());
}

// The WsServerRef still owns a reference that its deleter drops, so this shuts the server down
// without releasing it (C destroyWsServer would release it a second time).
inline int32_t destroyWsServer(const WsServerRef &server)
{
    return ::wsServerShutdown(server.get());
}

inline int32_t wsServerPort(const WsServerRef &server)
{
    return ::wsServerPort(server.get());
}

// ---- client -------------------------------------------------------------------------------

inline WsConnectionRef wsOpenConnection(const char *url, key_value_map_t &parameters,
                                        const std::shared_ptr<WsEventDelegate> &delegate, int32_t timeout_msec)
{
    detail::KeyValueArray pairs(parameters);
    WsConnection *connection = ::wsOpenConnection(url, pairs.data(), pairs.size(),
                                                  delegate ? detail::delegateVTable() : nullptr,
                                                  detail::delegateUser(delegate), timeout_msec);
    if (!connection)
        return WsConnectionRef();
    return WsConnectionRef(connection, detail::ConnectionDeleter());
}

inline int32_t wsCloseConnection(const WsConnectionRef &connection)
{
    return ::wsCloseConnection(connection.get());
}

inline int32_t wsCloseConnection(const WsConnectionRef &connection, int32_t status_code, const char *reason)
{
    return ::wsCloseConnectionWithStatus(connection.get(), status_code, reason);
}

// ---- sending, on a connection or in reply to an event ---------------------------------------

inline int32_t wsSendText(const WsConnectionRef &connection, const char *text)
{
    return ::wsSendText(connection.get(), text);
}

inline int32_t wsSendText(const WsConnectionRef &connection, const std::string &text)
{
    return ::wsSendTextLength(connection.get(), text.data(), text.size());
}

inline int32_t wsSendBinary(const WsConnectionRef &connection, const void *data, size_t length)
{
    return ::wsSendBinary(connection.get(), data, length);
}

inline int32_t wsSendBinary(const WsConnectionRef &connection, const std::vector<uint8_t> &data)
{
    return ::wsSendBinary(connection.get(), data.empty() ? nullptr : &data[0], data.size());
}

inline int32_t wsSendPing(const WsConnectionRef &connection, const void *data = nullptr, size_t length = 0)
{
    return ::wsSendPing(connection.get(), data, length);
}

inline int32_t wsSendText(const WsEventRef &event, const char *text)
{
    return ::wsSendText(::wsEventConnection(event.get()), text);
}

inline int32_t wsSendText(const WsEventRef &event, const std::string &text)
{
    return ::wsSendTextLength(::wsEventConnection(event.get()), text.data(), text.size());
}

inline int32_t wsSendBinary(const WsEventRef &event, const void *data, size_t length)
{
    return ::wsSendBinary(::wsEventConnection(event.get()), data, length);
}

inline int32_t wsSendBinary(const WsEventRef &event, const std::vector<uint8_t> &data)
{
    return ::wsSendBinary(::wsEventConnection(event.get()), data.empty() ? nullptr : &data[0], data.size());
}

inline int32_t wsSendPing(const WsEventRef &event, const void *data = nullptr, size_t length = 0)
{
    return ::wsSendPing(::wsEventConnection(event.get()), data, length);
}

// ---- events -------------------------------------------------------------------------------

inline ws_message_t wsEventMessageType(const WsEventRef &event)
{
    return ::wsEventMessageType(event.get());
}

// Copies the message into `data`; returns its size, or -1.
inline int32_t wsEventData(const WsEventRef &event, std::vector<uint8_t> &data)
{
    const uint8_t *bytes = nullptr;
    int32_t length = ::wsEventData(event.get(), &bytes);
    if (length < 0)
        return -1;
    if (length == 0 || bytes == nullptr)
        data.clear();
    else
        data.assign(bytes, bytes + length);
    return length;
}

// The message as a string, or the reason of a close event; returns its size, or -1.
inline int32_t wsEventText(const WsEventRef &event, std::string &text)
{
    const uint8_t *bytes = nullptr;
    int32_t length = ::wsEventData(event.get(), &bytes);
    if (length > 0 && bytes != nullptr) {
        text.assign(reinterpret_cast<const char *>(bytes), static_cast<size_t>(length));
        return length;
    }
    // No message bytes: a close event's reason (or nothing) comes from wsEventText.
    length = ::wsEventText(event.get(), nullptr, 0);
    if (length < 0)
        return -1;
    if (length == 0) {
        text.clear();
        return 0;
    }
    std::vector<char> buffer(static_cast<size_t>(length) + 1);
    int32_t written = ::wsEventText(event.get(), &buffer[0], buffer.size());
    if (written < 0)
        return -1;
    text.assign(&buffer[0], std::min(static_cast<size_t>(written), buffer.size() - 1));
    return static_cast<int32_t>(text.size());
}

inline int32_t wsEventStatusCode(const WsEventRef &event)
{
    return ::wsEventStatusCode(event.get());
}

// The event's connection, as a reference that stays valid beyond the callback.
inline WsConnectionRef wsEventConnection(const WsEventRef &event)
{
    WsConnection *connection = ::wsEventConnection(event.get());
    if (!connection || ::wsConnectionRetain(connection) != 0)
        return WsConnectionRef();
    return WsConnectionRef(connection, detail::ConnectionDeleter());
}

// ---- connection information -----------------------------------------------------------------

inline std::string wsConnectionPeerAddress(const WsConnectionRef &connection)
{
    return detail::fetchString(connection.get(), ::wsConnectionPeerAddress);
}

inline std::string wsConnectionProtocol(const WsConnectionRef &connection)
{
    return detail::fetchString(connection.get(), ::wsConnectionProtocol);
}

// The upgrade request's path ("/chat" for GET /chat?room=1), as sent; a client connection's is
// its URL's. "" while not open yet, or for a bad reference.
inline std::string wsConnectionRequestPath(const WsConnectionRef &connection)
{
    return detail::fetchString(connection.get(), ::wsConnectionRequestPath);
}

// The upgrade request's query without the '?' ("room=1"); "" when there is none.
inline std::string wsConnectionRequestQuery(const WsConnectionRef &connection)
{
    return detail::fetchString(connection.get(), ::wsConnectionRequestQuery);
}

// The upgrade request's header `name` (any case) into `value`; true when the request had it.
// Call it from onOpen: the request head is dropped when onOpen returns, unless the server has
// websocket-keep-request-headers set. false with errno ENOENT (no such header), ENODATA (the
// head is not kept), EBADF or EINVAL; `value` is then cleared.
inline bool wsConnectionRequestHeader(const WsConnectionRef &connection, const char *name, std::string &value)
{
    WsConnection *raw = connection.get();
    return detail::fetchInto(
        [&](char *buffer, size_t capacity) { return ::wsConnectionRequestHeader(raw, name, buffer, capacity); },
        value);
}

inline int32_t wsConnectionSetUserData(const WsConnectionRef &connection, void *user_data)
{
    return ::wsConnectionSetUserData(connection.get(), user_data);
}

inline void *wsConnectionGetUserData(const WsConnectionRef &connection)
{
    return ::wsConnectionGetUserData(connection.get());
}

// 1 when open, 0 when not (yet or any more), -1 for a bad reference.
inline int32_t wsConnectionIsOpen(const WsConnectionRef &connection)
{
    return ::wsConnectionIsOpen(connection.get());
}

} // namespace oasis

#endif // __cplusplus

#endif /* OASIS_NET_CXX_H */
