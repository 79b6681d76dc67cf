//! The `Date` header's value, formatted once a second per thread.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The IMF-fixdate of the current second ("Sun, 06 Nov 1994 08:49:37 GMT").
struct CachedDate {
    second: u64,
    text: [u8; 29],
}

/// No second seen yet.
const NO_DATE: CachedDate = CachedDate {
    second: u64::MAX,
    text: [b' '; 29],
};

// The initializer is const already; Debian's clippy 1.96 on a -Zbuild-std build (the Windows
// lint in scripts/test-windows.sh) reports it anyway.
#[allow(clippy::missing_const_for_thread_local)]
mod date_cell {
    thread_local! {
        pub(super) static DATE: std::cell::RefCell<super::CachedDate> =
            const { std::cell::RefCell::new(super::NO_DATE) };
    }
}
use date_cell::DATE;

/// Calls `f` with the `Date` header's value: formatted (by httpdate) when this thread first
/// sees a new second, copied otherwise. Reading the clock is the only per-request cost.
pub fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    DATE.with(|cell| {
        let mut date = cell.borrow_mut();
        if date.second != second {
            let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
            if text.len() == date.text.len() {
                date.text.copy_from_slice(text.as_bytes());
            }
            date.second = second;
        }
        f(&date.text)
    })
}
