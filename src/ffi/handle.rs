//! Handle tables: the only place where a C pointer becomes a Rust object.
//!
//! A C handle is the address of the Rust object behind an `Arc`. Each table maps live addresses
//! to a `Weak` (so a handle never keeps an object alive by itself) plus the references C holds
//! (`…Retain`/`…Release`, kept as strong `Arc`s). Every call looks the address up first, so a
//! NULL, a foreign or an already released handle is an `EBADF` error instead of a crash. The
//! `Weak` keeps the allocation reserved while the entry exists, so an address is never reused
//! for another object behind a handle C may still hold.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

struct Entry<T> {
    object: Weak<T>,
    /// One strong reference per `…Retain` (and per handle returned as "owned by the caller").
    held_by_c: Vec<Arc<T>>,
}

pub struct HandleTable<T> {
    what: &'static str,
    entries: Mutex<Table<T>>,
}

struct Table<T> {
    map: HashMap<usize, Entry<T>>,
    sweep_at: usize,
}

impl<T> HandleTable<T> {
    pub fn new(what: &'static str) -> Self {
        HandleTable {
            what,
            entries: Mutex::new(Table {
                map: HashMap::new(),
                sweep_at: 64,
            }),
        }
    }

    /// Makes `object` reachable from C and returns its handle. With `owned_by_caller`, the
    /// caller holds one reference and must release it.
    pub fn publish(&self, object: &Arc<T>, owned_by_caller: bool) -> usize {
        let address = Arc::as_ptr(object) as usize;
        let mut table = self.entries.lock();
        // Entries whose object is gone and that C no longer holds are swept now and then, so
        // the table stays proportional to the live objects.
        if table.map.len() >= table.sweep_at {
            table
                .map
                .retain(|_, e| !e.held_by_c.is_empty() || e.object.strong_count() > 0);
            table.sweep_at = (table.map.len() * 2).max(64);
        }
        let entry = table.map.entry(address).or_insert_with(|| Entry {
            object: Arc::downgrade(object),
            held_by_c: Vec::new(),
        });
        if owned_by_caller {
            entry.held_by_c.push(object.clone());
        }
        address
    }

    /// The object behind a handle, if the handle is live.
    pub fn get(&self, address: usize) -> Result<Arc<T>> {
        if address == 0 {
            return Err(Error::invalid(format!("{} is NULL", self.what)));
        }
        let table = self.entries.lock();
        table
            .map
            .get(&address)
            .and_then(|e| e.object.upgrade())
            .ok_or_else(|| self.stale())
    }

    pub fn retain(&self, address: usize) -> Result<()> {
        let object = self.get(address)?;
        let mut table = self.entries.lock();
        match table.map.get_mut(&address) {
            Some(entry) => {
                entry.held_by_c.push(object);
                Ok(())
            }
            None => Err(self.stale()),
        }
    }

    /// Drops one reference C holds; returns it (so the object is freed outside the table lock)
    /// and how many references C still holds.
    pub fn release(&self, address: usize) -> Result<(Arc<T>, usize)> {
        if address == 0 {
            return Err(Error::invalid(format!("{} is NULL", self.what)));
        }
        let mut table = self.entries.lock();
        let entry = table.map.get_mut(&address).ok_or_else(|| self.stale())?;
        let reference = entry.held_by_c.pop().ok_or_else(|| {
            Error::new(
                libc::EBADF,
                format!("{} was released more often than retained", self.what),
            )
        })?;
        let still_held = entry.held_by_c.len();
        if still_held == 0 && entry.object.strong_count() <= 1 {
            table.map.remove(&address);
        }
        drop(table);
        Ok((reference, still_held))
    }

    fn stale(&self) -> Error {
        Error::new(
            libc::EBADF,
            format!(
                "{} is not a live handle (released, destroyed or never created)",
                self.what
            ),
        )
    }
}
