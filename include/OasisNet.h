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

// Events are borrowed from the library for the duration of a callback. Each callback hands the
// delegate a WsEventRef of its own, made for it: unless the delegate keeps a copy, it is the only
// reference when the callback returns, and the last reference of a shared_ptr goes without an
// atomic read-modify-write (libstdc++ 12 and later; older ones, and libc++, take one or two, as
// any copy would). Its control block lives in an EventCell that the thread reuses, so an event
// costs no allocation either. When the delegate kept a copy, the trampoline retains the event
// and marks the cell, so that the last copy, going, releases it.
struct EventCell {
    bool retained;
    // Room for the shared_ptr's control block (a few pointers, in every standard library).
    alignas(std::max_align_t) unsigned char block[64];
};

// The cell the next callback on this thread may use: none while a callback runs (a nested one
// takes a new cell) or while a kept copy still holds it. Trivially destructible, so that the
// last copy of an event may still go while its thread exits (a thread_local holding a copy),
// after the cleanup below has run: `gone` then says to delete the cell.
struct SpareEventCell {
    EventCell *cell;
    bool gone;
};

inline SpareEventCell &spareEventCell()
{
    static thread_local SpareEventCell spare = {nullptr, false};
    return spare;
}

// Frees the thread's spare cell when the thread exits; made the first time a cell is kept.
struct SpareEventCellCleanup {
    ~SpareEventCellCleanup()
    {
        SpareEventCell &spare = spareEventCell();
        delete spare.cell;
        spare.cell = nullptr;
        spare.gone = true;
    }
};

inline EventCell *takeEventCell()
{
    SpareEventCell &spare = spareEventCell();
    EventCell *cell = spare.cell;
    spare.cell = nullptr;
    return cell ? cell : new EventCell();
}

// Called by the last reference of the event, on whichever thread drops it.
inline void giveBackEventCell(EventCell *cell) noexcept
{
    SpareEventCell &spare = spareEventCell();
    if (spare.cell || spare.gone) {
        delete cell;
        return;
    }
    static thread_local SpareEventCellCleanup cleanup;
    (void)cleanup;
    spare.cell = cell;
}

struct EventCellDeleter {
    EventCell *cell;
    explicit EventCellDeleter(EventCell *c) : cell(c) {}
    void operator()(WsEvent *event) const
    {
        if (cell->retained)
            ::wsEventRelease(event);
    }
};

// Places the control block in the cell's room (or, should it not fit, on the heap) and gives
// the cell back with it.
template <class T>
struct EventCellAllocator {
    typedef T value_type;
    EventCell *cell;
    explicit EventCellAllocator(EventCell *c) noexcept : cell(c) {}
    template <class U>
    EventCellAllocator(const EventCellAllocator<U> &other) noexcept : cell(other.cell)
    {
    }
    T *allocate(std::size_t n)
    {
        if (n * sizeof(T) <= sizeof(cell->block) && alignof(T) <= alignof(std::max_align_t))
            return static_cast<T *>(static_cast<void *>(cell->block));
        return static_cast<T *>(::operator new(n * sizeof(T)));
    }
    void deallocate(T *pointer, std::size_t) noexcept
    {
        if (static_cast<void *>(pointer) != static_cast<void *>(cell->block))
            ::operator delete(pointer);
        giveBackEventCell(cell);
    }
};

template <class T, class U>
inline bool operator==(const EventCellAllocator<T> &a, const EventCellAllocator<U> &b) noexcept
{
    return a.cell == b.cell;
}

template <class T, class U>
inline bool operator!=(const EventCellAllocator<T> &a, const EventCellAllocator<U> &b) noexcept
{
    return a.cell != b.cell;
}

// The callback's WsEventRef, in `cell`; the cell goes back should making it fail.
inline WsEventRef makeEventRef(WsEvent *raw, EventCell *cell)
{
    cell->retained = false;
    try {
        return WsEventRef(raw, EventCellDeleter(cell), EventCellAllocator<WsEvent>(cell));
    } catch (...) {
        giveBackEventCell(cell);
        throw;
    }
}

// Still inside the C callback, so the event is valid here. Beyond `event`, any reference is a
// copy the delegate kept. Only a successful retain may be marked: the last copy would otherwise
// release a reference never taken.
inline void keepIfCopied(const WsEventRef &event, EventCell *cell)
{
    if (event.use_count() > 1 && ::wsEventRetain(event.get()) == 0)
        cell->retained = true;
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
        EventCell *cell = takeEventCell();
        WsEventRef event = makeEventRef(raw, cell);
        try {
            ((*delegate).*callback)(event);
        } catch (...) {
            // Still keep the event alive for any copy the delegate made before throwing.
            keepIfCopied(event, cell);
            throw;
        }
        keepIfCopied(event, cell);
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
