//! The HTTP server left out of this build (the `http` feature is off). `createHttpServer` and
//! `createHttpWsService` still exist, since the C surface is the same in every build:
//! `createHttpServer` fails with `ENOSYS` and a sentence naming the feature. No server can be
//! made, so the type is empty and the functions on an `HttpServer` handle fail as for any handle
//! that is not live (`EBADF`, `EINVAL` for NULL).

use super::upstream::Upstream;
use crate::config::{ConnectionSettings, HttpServerConfig};
use crate::error::{Error, Result};
use crate::ws::delegate::Delegate;
use std::sync::Arc;

pub enum HttpServer {}

impl HttpServer {
    pub fn create(_: HttpServerConfig, _: Option<Arc<Upstream>>) -> Result<Arc<HttpServer>> {
        Err(Error::not_built("http", "the HTTP server"))
    }

    pub fn add_service(&self, _: &str, _: ConnectionSettings, _: Arc<Delegate>) -> Result<()> {
        match *self {}
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
