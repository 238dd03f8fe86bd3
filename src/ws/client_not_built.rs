//! The WebSocket client left out of this build (the `client` feature is off). `wsOpenConnection`
//! still exists, since the C surface is the same in every build: it fails at once with `ENOSYS`
//! and a sentence naming the feature, like a call before `oasis_initialize` (no callback; the
//! delegate's `release` runs before it returns).

use super::connection::Connection;
use super::delegate::Delegate;
use crate::error::{Error, Result};
use std::sync::Arc;

pub fn open(
    _url: &[u8],
    _parameters: Result<Vec<(String, String)>>,
    _delegate: Arc<Delegate>,
    _timeout_msec: i32,
) -> Result<Arc<Connection>> {
    Err(Error::not_built("client", "the WebSocket client"))
}
