//! The `HttpRequest` family: what `onFilter` and `onRequest` see of a request, and the answer
//! they build; and the C upstream delegate (`HttpUpStreamDelegateVTable` + `user`) as the core's
//! upstream handler.
//!
//! Index: httpRequestMethod · httpRequestPath · httpRequestQuery · httpRequestHeader ·
//! httpRequestBody · httpRequestPeerAddress · httpResponseSetStatus · httpResponseAddHeader ·
//! httpResponseSetBody
//!
//! An `HttpRequest*` is a generational handle (`handle.rs`) live during the one callback that
//! received it: afterwards every function fails on it with `EBADF`.

use super::handle::{INDEX_BITS, SlotTable, kind};
use super::{HttpRequest, HttpUpStreamDelegateVTable, boundary, c_bytes, c_str, copy_out};
use crate::error::{Error, Result};
use crate::http::upstream::{Exchange, Upstream, UpstreamHandler};
use std::ffi::{c_char, c_void};
use std::sync::{Arc, LazyLock};

/// The exchange a live handle stands for: valid while its callback runs (the slot is vacated
/// before the exchange goes away).
struct Live(*mut Exchange<'static>);

// SAFETY: the pointer is only dereferenced under the slot's lock, while the callback that owns
// the exchange is still running.
unsafe impl Send for Live {}

static REQUESTS: LazyLock<SlotTable<Live, INDEX_BITS, { kind::HTTP_REQUEST }>> =
    LazyLock::new(SlotTable::new);

/// Runs `call` with a fresh handle for `exchange`, stale once `call` returns. `None` when no
/// handle could be made (the table is full).
fn with_c_request<R>(
    exchange: &mut Exchange<'_>,
    call: impl FnOnce(*mut HttpRequest) -> R,
) -> Option<R> {
    let pointer = (exchange as *mut Exchange<'_>).cast::<Exchange<'static>>();
    let handle = match REQUESTS.insert(Live(pointer)) {
        Ok(handle) => handle,
        Err(err) => {
            crate::log::log!(Error, "no HttpRequest handle left: {}", err.message);
            return None;
        }
    };
    let result = call(handle as *mut HttpRequest);
    REQUESTS.free(REQUESTS.lock_index(handle), handle);
    Some(result)
}

/// The exchange behind a live handle, locked for `f`.
fn with_exchange<T>(
    handle: *mut HttpRequest,
    f: impl FnOnce(&mut Exchange<'_>) -> Result<T>,
) -> Result<T> {
    if handle.is_null() {
        return Err(Error::invalid("request is NULL"));
    }
    let mut slot = REQUESTS.lock(handle as usize).ok_or_else(|| {
        Error::new(
            libc::EBADF,
            "stale HttpRequest handle (valid only during its callback)",
        )
    })?;
    let live = slot.value.as_mut().expect("a current slot holds a value");
    // SAFETY: the slot is current, so the callback owning the exchange is still running; the
    // slot's lock keeps other users of this handle out meanwhile.
    f(unsafe { &mut *live.0 })
}

/// The request's method ("GET", "POST", ...), copied like `snprintf`.
///
/// Returns: the full length (a result >= `capacity` means truncated), or -1 with `errno`:
/// `EBADF` (stale handle), `EINVAL` (NULL request, or NULL buffer with a capacity).
/// Threads: inside the callback that received the request.
///
/// # Safety
/// `buffer` is NULL with `capacity` 0, or has `capacity` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn httpRequestMethod(
    request: *mut HttpRequest,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("httpRequestMethod", -1, || {
        // SAFETY: forwarded caller contract.
        with_exchange(request, |e| unsafe {
            copy_out(e.method.as_bytes(), buffer, capacity)
        })
    })
}

/// The request's path, percent-decoded and cleaned ("/a b/c" for "/a%20b/./c"), copied like
/// `snprintf`. Returns and errors as `httpRequestMethod`.
///
/// # Safety
/// As `httpRequestMethod`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn httpRequestPath(
    request: *mut HttpRequest,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("httpRequestPath", -1, || {
        // SAFETY: forwarded caller contract.
        with_exchange(request, |e| unsafe {
            copy_out(e.path.as_bytes(), buffer, capacity)
        })
    })
}

/// The request's query as sent, without the '?' (empty when there is none), copied like
/// `snprintf`. Returns and errors as `httpRequestMethod`.
///
/// # Safety
/// As `httpRequestMethod`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn httpRequestQuery(
    request: *mut HttpRequest,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("httpRequestQuery", -1, || {
        // SAFETY: forwarded caller contract.
        with_exchange(request, |e| unsafe {
            copy_out(e.query.as_bytes(), buffer, capacity)
        })
    })
}

/// The value of the request header `name` (compared without regard to case; the first one when
/// repeated), copied like `snprintf`.
///
/// Returns: the full length, or -1 with `errno`: `ENOENT` (no such header), `EBADF` (stale
/// handle), `EINVAL` (NULL request or name, or NULL buffer with a capacity).
/// Threads: inside the callback that received the request.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `buffer` as in `httpRequestMethod`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn httpRequestHeader(
    request: *mut HttpRequest,
    name: *const c_char,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("httpRequestHeader", -1, || {
        // SAFETY: forwarded caller contract.
        let name = unsafe { c_str(name, "name") }?;
        with_exchange(request, |e| match e.header(name) {
            // SAFETY: forwarded caller contract.
            Some(value) => unsafe { copy_out(value, buffer, capacity) },
            // An optional header the request did not have is an answer, not a fault: no warning
            // in the log for each lookup.
            None => {
                let absent =
                    Error::new(libc::ENOENT, format!("the request has no '{name}' header"));
                super::fail_quietly("httpRequestHeader", &absent);
                Ok(-1)
            }
        })
    })
}

/// The request body (a `Content-Length` body of at most `http-request-body-max` bytes):
/// `*data` points to it without a copy, valid during the callback.
///
/// Returns: its length (0 when there is none; `*data` is then NULL), or -1 with `errno`:
/// `EBADF` (stale handle), `EINVAL` (NULL request or data).
/// Threads: inside the callback that received the request.
///
/// # Safety
/// `data` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn httpRequestBody(request: *mut HttpRequest, data: *mut *const u8) -> i32 {
    boundary("httpRequestBody", -1, || {
        if data.is_null() {
            return Err(Error::invalid("data is NULL"));
        }
        with_exchange(request, |e| {
            let length = i32::try_from(e.body.len())
                .map_err(|_| Error::new(libc::EOVERFLOW, "body too long for int32_t"))?;
            let pointer = if e.body.is_empty() {
                std::ptr::null()
            } else {
                e.body.as_ptr()
            };
            // SAFETY: checked non-NULL; writable by the caller's contract.
            unsafe { *data = pointer };
            Ok(length)
        })
    })
}

/// The peer's address as "ip:port" ("[ip]:port" for IPv6), copied like `snprintf`. Returns and
/// errors as `httpRequestMethod`.
///
/// # Safety
/// As `httpRequestMethod`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn httpRequestPeerAddress(
    request: *mut HttpRequest,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("httpRequestPeerAddress", -1, || {
        with_exchange(request, |e| {
            let text = e.peer.to_string();
            // SAFETY: forwarded caller contract.
            unsafe { copy_out(text.as_bytes(), buffer, capacity) }
        })
    })
}

/// Sets the answer's status (200..599; `EINVAL` otherwise).
///
/// Returns: 0, or -1 with `errno`: `EINVAL`, `EBADF` (stale handle).
/// Threads: inside the callback that received the request.
#[unsafe(no_mangle)]
pub extern "C" fn httpResponseSetStatus(request: *mut HttpRequest, status: i32) -> i32 {
    boundary("httpResponseSetStatus", -1, || {
        with_exchange(request, |e| e.response.set_status(status))?;
        Ok(0)
    })
}

/// Adds a header to the answer (also to a filter's refusal: `WWW-Authenticate`, say).
///
/// Returns: 0, or -1 with `errno`: `EINVAL` (NULL name or value; a name that is not an HTTP
/// token; CR, LF or NUL in the value; a header the server writes itself: `Content-Length`,
/// `Transfer-Encoding`, `Connection`, `Date`, `Content-Type`), `EBADF` (stale handle). A refused
/// header never reaches the wire.
/// Threads: inside the callback that received the request.
///
/// # Safety
/// `name` and `value` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn httpResponseAddHeader(
    request: *mut HttpRequest,
    name: *const c_char,
    value: *const c_char,
) -> i32 {
    boundary("httpResponseAddHeader", -1, || {
        // SAFETY: forwarded caller contract.
        let name = unsafe { c_str(name, "name") }?;
        // SAFETY: forwarded caller contract.
        let value = unsafe { c_str(value, "value") }?;
        with_exchange(request, |e| e.response.add_header(name, value))?;
        Ok(0)
    })
}

/// Sets the answer's body (copied) and its content type (NULL: `application/octet-stream` for a
/// non-empty body). A HEAD request gets the headers only.
///
/// Returns: 0, or -1 with `errno`: `EINVAL` (NULL data with a length; CR, LF or NUL in the
/// content type), `EBADF` (stale handle).
/// Threads: inside the callback that received the request.
///
/// # Safety
/// `content_type` is NULL or NUL-terminated; `data` is NULL with `length` 0, or has `length`
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn httpResponseSetBody(
    request: *mut HttpRequest,
    content_type: *const c_char,
    data: *const c_void,
    length: usize,
) -> i32 {
    boundary("httpResponseSetBody", -1, || {
        let content_type = if content_type.is_null() {
            None
        } else {
            // SAFETY: forwarded caller contract.
            Some(unsafe { c_str(content_type, "content_type") }?)
        };
        // SAFETY: forwarded caller contract.
        let body = unsafe { c_bytes(data.cast(), length, "data") }?;
        with_exchange(request, |e| e.response.set_body(content_type, body))?;
        Ok(0)
    })
}

/// The C upstream delegate.
struct CUpstream {
    vtable: HttpUpStreamDelegateVTable,
    user: *mut c_void,
}

// SAFETY: the user pointer belongs to the application, which by the documented contract accepts
// callbacks (and `release`) on the library's threads.
unsafe impl Send for CUpstream {}
// SAFETY: as above; the vtable is immutable after creation.
unsafe impl Sync for CUpstream {}

/// Copies a C upstream vtable into the core's upstream. NULL is an error; `struct_size` must
/// cover the callbacks we know.
///
/// # Safety
/// `vtable` is NULL or points to a readable `HttpUpStreamDelegateVTable` of `struct_size` bytes.
pub(crate) unsafe fn upstream_from_c(
    vtable: *const HttpUpStreamDelegateVTable,
    user: *mut c_void,
) -> Result<Arc<Upstream>> {
    if vtable.is_null() {
        return Err(Error::invalid("delegate is NULL"));
    }
    // SAFETY: non-NULL; reading the size field first is valid for every version.
    let size = unsafe { std::ptr::addr_of!((*vtable).struct_size).read_unaligned() } as usize;
    if size < std::mem::size_of::<HttpUpStreamDelegateVTable>() {
        return Err(Error::invalid(format!(
            "delegate struct_size {size} is smaller than sizeof(HttpUpStreamDelegateVTable) = {}",
            std::mem::size_of::<HttpUpStreamDelegateVTable>()
        )));
    }
    let upstream = CUpstream {
        // SAFETY: the caller guarantees a readable vtable of at least our size.
        vtable: unsafe { vtable.read_unaligned() },
        user,
    };
    Ok(Arc::new(Upstream::new(Box::new(upstream))))
}

impl UpstreamHandler for CUpstream {
    fn has_filter(&self) -> bool {
        self.vtable.onFilter.is_some()
    }

    fn filter(&self, exchange: &mut Exchange<'_>) -> Option<i32> {
        let function = self.vtable.onFilter?;
        // SAFETY: a function pointer the application registered for exactly this call, given a
        // live request handle.
        with_c_request(exchange, |handle| unsafe { function(self.user, handle) })
    }

    fn has_request(&self) -> bool {
        self.vtable.onRequest.is_some()
    }

    fn request(&self, exchange: &mut Exchange<'_>) {
        if let Some(function) = self.vtable.onRequest {
            // SAFETY: as in `filter`.
            with_c_request(exchange, |handle| unsafe { function(self.user, handle) });
        }
    }
}

impl Drop for CUpstream {
    fn drop(&mut self) {
        if let Some(release) = self.vtable.release {
            // SAFETY: called exactly once, when the library is done with `user`.
            unsafe { release(self.user) };
        }
    }
}
