//! HTTP/1.1 server parsing without I/O: everything here takes byte slices or strings and
//! gives values back, so that unit tests and fuzz targets drive it directly (the model is the
//! protocol core, `crate::protocol`). Nothing here does I/O, takes a lock, starts a thread,
//! reads a clock or logs.
//!
//! - [`request`]: a request head with the server's limits, keep-alive and body framing.
//! - [`path`]: percent-decoding and normalisation of a request target (the traversal guard).
//! - [`range`]: a single `Range: bytes=…` against a length.
//! - [`mime`]: extension → content type (a hand table).
//! - [`response`]: response heads and the small fixed error answers, written into a `Vec<u8>`.
//! - [`date`]: `Date`/`Last-Modified` values and the conditional-request checks.

#[cfg(feature = "http")]
pub mod date;
#[cfg(feature = "http")]
pub mod mime;
#[cfg(feature = "http")]
pub mod path;
#[cfg(feature = "http")]
pub mod range;
#[cfg(feature = "http")]
pub mod request;
pub mod response;
