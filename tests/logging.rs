//! The logger as firmware uses it: a hook that receives every line, the level filter, and
//! lines whose text is not UTF-8.

mod common;
use common::*;
use oasisnet::ffi::*;

#[test]
fn hook_level_and_any_bytes() {
    capture_logs(); // hook installed, level info
    let tag = c"cam";
    unsafe { oasis_log_message(2, tag.as_ptr(), c"disk almost full".as_ptr()) };
    assert!(logged("[cam] disk almost full"));
    // Bytes that are not UTF-8 still make a line (replaced), never an error.
    let bytes = b"sensor \xff\xfe ok\0";
    unsafe { oasis_log_message(1, tag.as_ptr(), bytes.as_ptr().cast()) };
    assert!(logged("sensor \u{fffd}\u{fffd} ok"));
    // Above the level: dropped.
    assert_eq!(oasis_log_set_level(2), 0);
    unsafe { oasis_log_message(4, tag.as_ptr(), c"debug detail".as_ptr()) };
    assert!(!logged("debug detail"));
    assert_eq!(oasis_log_set_level(9), -1);
    assert_eq!(errno(), libc::EINVAL);
    assert_eq!(oasis_log_get_level(), 2);
}
