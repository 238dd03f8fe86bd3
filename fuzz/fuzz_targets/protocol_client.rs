//! The protocol core (Reader + Endpoint) as a client sees it, fed a stream of frames from its
//! peer in arbitrary pieces: see `common/protocol.rs` for the input layout and the invariants.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use oasisnet::protocol::Role;

fuzz_target!(|data: &[u8]| common::protocol::run(Role::Client, data));
