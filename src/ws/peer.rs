//! A connection's peer address in 8 bytes (a `OnceLock<SocketAddr>` takes 40). An IPv4 address
//! and port fit in the word itself; any other address is boxed and the word holds the box. (A
//! connection keeps its address in its `PeerAndOpened` word, `peer_opened.rs`, which holds an
//! IPv4 address in this word's form and any other in one of these.)
//!
//! It is set once (when the socket is accepted or connected) and read from any thread, also
//! after the socket closed: reading it from the socket when asked (`getpeername`) would fail
//! once the peer reset the connection — inside onClose, where it is most often wanted.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};

/// 0: not known yet. Low bit set: an IPv4 address (`ip << 32 | port << 16 | 1`). Otherwise the
/// address of a `Box<SocketAddr>` this value owns (boxes are aligned: their low bit is clear).
#[derive(Default)]
pub(super) struct PeerAddress(AtomicU64);

const IPV4: u64 = 1;

/// The word of an IPv4 address (`ip << 32 | port << 16 | 1`), or None for any other address.
/// Bits 1 to 15 stay clear: the owner of a word may use them (`PeerAndOpened`).
pub(super) fn ipv4_word(address: SocketAddr) -> Option<u64> {
    match address {
        SocketAddr::V4(v4) => {
            Some(u64::from(v4.ip().to_bits()) << 32 | u64::from(v4.port()) << 16 | IPV4)
        }
        SocketAddr::V6(_) => None,
    }
}

/// The address in a word [`ipv4_word`] made (bits 1 to 15 are not read).
pub(super) fn from_ipv4_word(word: u64) -> SocketAddr {
    let ip = Ipv4Addr::from_bits((word >> 32) as u32);
    SocketAddr::V4(SocketAddrV4::new(ip, (word >> 16) as u16))
}

impl PeerAddress {
    /// Records `address` (once; a later call changes nothing).
    pub(super) fn set(&self, address: SocketAddr) {
        let word =
            ipv4_word(address).unwrap_or_else(|| Box::into_raw(Box::new(address)) as usize as u64);
        if self
            .0
            .compare_exchange(0, word, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
            && word & IPV4 == 0
        {
            // SAFETY: `word` came from `Box::into_raw` just above and was not stored: this is
            // the box's only owner.
            drop(unsafe { Box::from_raw(word as usize as *mut SocketAddr) });
        }
    }

    pub(super) fn get(&self) -> Option<SocketAddr> {
        let word = self.0.load(Ordering::Acquire);
        if word == 0 {
            None
        } else if word & IPV4 != 0 {
            Some(from_ipv4_word(word))
        } else {
            // SAFETY: a stored box (see `set`, whose Acquire/Release pair publishes it) is
            // freed only in `drop`, which has this value to itself: it is alive while `&self`
            // can be borrowed.
            Some(unsafe { *(word as usize as *const SocketAddr) })
        }
    }
}

impl Drop for PeerAddress {
    fn drop(&mut self) {
        let word = *self.0.get_mut();
        if word != 0 && word & IPV4 == 0 {
            // SAFETY: the box was stored by `set` and is owned by this value alone; it is freed
            // once, here.
            drop(unsafe { Box::from_raw(word as usize as *mut SocketAddr) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_reads_back_as_set_the_first_time() {
        for text in [
            "127.0.0.1:8080",
            "10.1.2.3:0",
            "255.255.255.255:65535",
            "[::1]:443",
            "[fe80::1%2]:9",
        ] {
            let address: SocketAddr = text.parse().unwrap();
            let peer = PeerAddress::default();
            assert_eq!(peer.get(), None);
            peer.set(address);
            assert_eq!(peer.get(), Some(address), "{text}");
            peer.set("[::2]:1".parse().unwrap());
            peer.set("1.2.3.4:5".parse().unwrap());
            assert_eq!(peer.get(), Some(address), "a second set changes nothing");
        }
    }
}
