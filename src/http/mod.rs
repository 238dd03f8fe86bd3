//! The HTTP/1.1 server under `createHttpServer`: static files from a root folder, WebSocket
//! services on chosen paths (an upgrade hands the connection to `ws`), and the firmware's
//! own answers. Arrows point one way: `ffi → http → ws → {protocol, transport, runtime,
//! config}`; nothing below names `http`.
//!
//! - [`parse`]: the sans-IO parts, byte slices in and values out (request heads with their
//!   limits, request targets, `Range`, content types, response heads, dates). No I/O, locks,
//!   threads or logging; unit-tested and fuzzed (`http_request`, `http_path`).
//! - [`files`]: a clean request path resolved to an open regular file under the root, a
//!   redirect to the folder form, or not found (symlinks out of the root are not found).
//!
//! Limits (config `http-request-line-max`, `http-header-size-max`, `http-request-body-max`)
//! are applied by [`parse::request::parse_head`] to the first bytes of a request only, so the
//! answer never depends on how the bytes arrived.

// Without the `http` feature only the request as the firmware sees it is built (`upstream`, with
// the checks of `parse::response`): the C functions on an `HttpRequest` exist in every build.
// `server` then only says that the feature is missing.
#[cfg(feature = "http")]
mod connection;
#[cfg(feature = "http")]
pub mod files;
pub mod parse;
#[cfg(feature = "http")]
mod routing;
#[cfg(feature = "http")]
pub mod server;
#[cfg(not(feature = "http"))]
#[path = "server_not_built.rs"]
pub mod server;
#[cfg(feature = "http")]
mod service;
#[cfg(feature = "http")]
mod stream;
pub mod upstream;
