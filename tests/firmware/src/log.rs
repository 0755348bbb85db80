//! Lines to the host over semihosting, and the firmware's checks.
//!
//! A line is formatted into a buffer first and written with one semihosting call (writing
//! each formatted piece would be one host call per piece). Interrupts stay enabled while a
//! line is formatted; only the host call itself runs in a critical section. Nothing is
//! printed while a scenario's instants are being made (see `timeline`).

use core::cell::RefCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_semihosting::{debug, hio};
use critical_section::Mutex;

static STDOUT: Mutex<RefCell<Option<hio::HostStream>>> = Mutex::new(RefCell::new(None));

/// Checks that failed. Written by thread-mode code only (load + store: the Cortex-M0 has no
/// `fetch_add`).
static FAILED: AtomicU32 = AtomicU32::new(0);

/// A line being built: at most 160 bytes, longer lines are cut.
pub struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    pub const fn new() -> Self {
        Line {
            buf: [0; 160],
            len: 0,
        }
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes one formatted line (a newline is added).
pub fn line(args: fmt::Arguments<'_>) {
    let mut l = Line::new();
    // `Line` never fails; a line longer than the buffer is cut.
    let _ = l.write_fmt(args);
    let _ = l.write_str("\n");
    write_bytes(&l.buf[..l.len]);
}

fn write_bytes(bytes: &[u8]) {
    critical_section::with(|cs| {
        let mut out = STDOUT.borrow_ref_mut(cs);
        if out.is_none() {
            *out = hio::hstdout().ok();
        }
        if let Some(out) = out.as_mut() {
            let _ = out.write_all(bytes);
        }
    })
}

/// `println!` over semihosting.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::log::line(format_args!($($arg)*)) };
}

/// A check of the firmware's behaviour: prints `check ok: ...` or `CHECK FAILED: ...`; any
/// failure makes the run exit non-zero at the end.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        $crate::log::checked($cond, format_args!($($arg)*))
    };
}

pub fn checked(ok: bool, what: fmt::Arguments<'_>) {
    if ok {
        line(format_args!("check ok: {what}"));
    } else {
        FAILED.store(FAILED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        line(format_args!("CHECK FAILED: {what}"));
    }
}

/// Checks failed so far.
pub fn failures() -> u32 {
    FAILED.load(Ordering::Relaxed)
}

/// Ends the emulation: QEMU exits 0 on success, 1 otherwise.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without a debugger or emulator that implements semihosting exit.
    loop {
        cortex_m::asm::wfi();
    }
}
