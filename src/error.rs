//! The library's error: an `errno` value for C callers plus a sentence for humans.

use std::fmt;

/// A failure as C sees it: `errno` and the text `oasis_last_error()` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub errno: i32,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        Error {
            errno,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(libc::EINVAL, message)
    }

    pub fn not_connected(message: impl Into<String>) -> Self {
        Self::new(libc::ENOTCONN, message)
    }

    /// A part of the library this build left out (a Cargo feature): `ENOSYS`, as glibc's stub
    /// functions give, with a sentence naming the feature; `what`: the part, or what needed it.
    pub fn not_built(feature: &str, what: &str) -> Self {
        Self::new(
            libc::ENOSYS,
            format!("oasisnet was built without the `{feature}` feature ({what})"),
        )
    }

    /// Wraps an I/O error, keeping its OS error number when it has one.
    pub fn io(context: &str, err: &std::io::Error) -> Self {
        let errno = match err.raw_os_error() {
            Some(code) => code,
            None => match err.kind() {
                std::io::ErrorKind::TimedOut => libc::ETIMEDOUT,
                std::io::ErrorKind::WouldBlock => libc::EAGAIN,
                std::io::ErrorKind::InvalidInput => libc::EINVAL,
                std::io::ErrorKind::UnexpectedEof => libc::ECONNRESET,
                std::io::ErrorKind::NotFound => libc::ENOENT,
                _ => libc::EIO,
            },
        };
        Self::new(errno, format!("{context}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The message a panic carried, for a log line.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
