//! The library's logger: a level, stderr by default, or a hook into the firmware's own logger.
//!
//! Levels follow syslog order: a message is written when its level is at or below the current
//! level. The default is [`LogLevel::Warn`]: warnings and errors reach stderr, nothing else.

use parking_lot::RwLock;
use std::cell::Cell;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

/// Log levels, as `oasis_log_set_level` and the `log-level` key take them.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl LogLevel {
    pub fn from_i32(value: i32) -> Option<LogLevel> {
        Some(match value {
            0 => LogLevel::Off,
            1 => LogLevel::Error,
            2 => LogLevel::Warn,
            3 => LogLevel::Info,
            4 => LogLevel::Debug,
            5 => LogLevel::Trace,
            _ => return None,
        })
    }

    /// Parses a level name (`off`, `error`, `warn`, `info`, `debug`, `trace`) or its number.
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => Some(LogLevel::Off),
            "error" => Some(LogLevel::Error),
            "warn" | "warning" => Some(LogLevel::Warn),
            "info" => Some(LogLevel::Info),
            "debug" => Some(LogLevel::Debug),
            "trace" | "verbose" => Some(LogLevel::Trace),
            other => other.parse::<i32>().ok().and_then(LogLevel::from_i32),
        }
    }

    fn name(self) -> &'static str {
        match self {
            LogLevel::Off => "OFF",
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
            LogLevel::Trace => "TRACE",
        }
    }
}

/// Where log lines go instead of stderr: the firmware's logger (the C surface wraps its hook).
/// It receives the level and the line (`[tag] message`, no trailing newline, no NUL).
pub type LogSink = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

static LEVEL: AtomicI32 = AtomicI32::new(LogLevel::Warn as i32);
static HOOK: RwLock<Option<LogSink>> = RwLock::new(None);
/// Held shared while a hook runs (not the hook's own lock: that one is released before the
/// call). Replacing the hook takes it exclusively, so that once `set_hook` returns no thread
/// is still inside the previous hook with its `user` pointer.
static HOOK_CALLS: RwLock<()> = RwLock::new(());

thread_local! {
    /// True while this thread runs the hook: a line the hook logs through the library goes to
    /// stderr instead of back into the hook, so a hook cannot recurse without end.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

pub fn set_level(level: LogLevel) {
    LEVEL.store(level as i32, Ordering::Relaxed);
}

pub fn level() -> LogLevel {
    LogLevel::from_i32(LEVEL.load(Ordering::Relaxed)).unwrap_or(LogLevel::Warn)
}

pub fn enabled(level: LogLevel) -> bool {
    level != LogLevel::Off && (level as i32) <= LEVEL.load(Ordering::Relaxed)
}

/// Routes every log line to `hook`; `None` goes back to stderr. Returns once no thread is
/// inside the previous hook any more — unless called from inside a hook, which cannot wait
/// for itself.
pub fn set_hook(hook: Option<LogSink>) {
    // The previous hook is dropped after the lock is released.
    let previous = std::mem::replace(&mut *HOOK.write(), hook);
    drop(previous);
    if !IN_HOOK.get() {
        drop(HOOK_CALLS.write());
    }
}

/// Writes one line at `level`, tagged with the part of the library (or program) it comes from.
pub fn write(level: LogLevel, tag: &str, message: &str) {
    if !enabled(level) {
        return;
    }
    let message = message.trim_end_matches('\n');
    // The hook is copied out of its lock and called without it: it may call any library
    // function, oasis_log_set_hook included. `HOOK_CALLS` is taken before the hook is read, so
    // that a `set_hook` swapping it meanwhile waits for this call of the previous hook; taken
    // as a recursive read, so that a line logged on a thread the hook waits for never queues
    // behind that waiting `set_hook` (a recursive lock lets readers pass a waiting writer).
    // Lines logged from inside the hook skip both (and the hook).
    let calling = (!IN_HOOK.get()).then(|| HOOK_CALLS.read_recursive());
    let hook = if calling.is_some() {
        HOOK.read().clone()
    } else {
        None
    };
    match hook {
        Some(hook) => {
            let line = format!("[{tag}] {message}").replace('\0', " ");
            IN_HOOK.set(true);
            hook(level, &line);
            IN_HOOK.set(false);
        }
        None => {
            drop(calling);
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "oasisnet {} [{tag}] {message}", level.name());
        }
    }
}

/// `log!(Warn, "text {}", x)`: formats only when the level is enabled.
macro_rules! log {
    ($level:ident, $($arg:tt)+) => {
        if $crate::log::enabled($crate::log::LogLevel::$level) {
            $crate::log::write($crate::log::LogLevel::$level, "oasisnet", &format!($($arg)+));
        }
    };
}
pub(crate) use log;
