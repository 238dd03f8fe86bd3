//! The WebSocket server left out of this build (the `server` feature is off). `createWsServer`
//! still exists, since the C surface is the same in every build: it fails with `ENOSYS` and a
//! sentence naming the feature. No server can be made, so the type is empty and the functions on
//! a `WsServer` handle fail as for any handle that is not live (`EBADF`, `EINVAL` for NULL).

use super::delegate::Delegate;
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use std::sync::Arc;

pub enum Server {}

impl Server {
    pub fn create(_: ServerConfig, _: Arc<Delegate>) -> Result<Arc<Server>> {
        Err(Error::not_built("server", "the WebSocket server"))
    }

    pub fn start(self: &Arc<Self>) -> Result<()> {
        match **self {}
    }

    pub fn stop(&self) -> Result<()> {
        match *self {}
    }

    pub fn shutdown(&self) -> Result<()> {
        match *self {}
    }

    pub fn local_port(&self) -> Option<u16> {
        match *self {}
    }
}
