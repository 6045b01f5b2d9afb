//! `-v` output: what ovs-run itself is doing (cache, timings, each call), on stderr.

use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(0);

pub fn set_level(v: u8) {
    LEVEL.store(v, Ordering::Relaxed);
}

pub fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// `verbose!(1, "compile cache: hit")` prints when `-v` was given at least once.
#[macro_export]
macro_rules! verbose {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::verbose::level() >= $lvl {
            eprintln!("ovs-run: {}", format_args!($($arg)*));
        }
    };
}
