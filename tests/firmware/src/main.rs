//! bulwark on an emulated Cortex-M: embassy's executor, an embassy-time driver on the
//! board's timer, and the patterns through `bulwark-embassy`, checked as they run.
//!
//! * Scenario 1 (`sensor`): tasks only. A flaky sensor behind a breaker, a retry with
//!   backoff and a rate limiter, on a bus bulkhead shared with a display task.
//! * Scenario 2 (`storm`): an interrupt handler records into a breaker, takes limiter
//!   tokens and releases bulkhead permits while tasks await the same primitives.
//!
//! The timeline goes to the host over semihosting; every check prints `check ok: ...` or
//! `CHECK FAILED: ...`, and the emulator exits 0 only when all of them passed.
//!
//! Boards: `mps2-an386` (Cortex-M4F, `thumbv7em-none-eabihf`) and `microbit` (nRF51,
//! Cortex-M0, `thumbv6m-none-eabi`: no compare-and-swap). `bash tests/firmware/run.sh`.
#![no_std]
#![no_main]

mod board;
mod log;
mod sensor;
mod storm;
mod time_driver;
mod timeline;

use embassy_executor::Spawner;

/// Ends the run at once with a failure (configuration errors, faults, panics).
pub fn fail_now(what: &str) -> ! {
    say!("FIRMWARE FAILED: {what}");
    log::exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    say!("FIRMWARE FAILED: panic: {info}");
    log::exit(false)
}

unsafe extern "C" {
    /// The lowest and highest address of the stack (cortex-m-rt's linker script): with the
    /// `paint-stack` feature everything between is filled with `STACK_PAINT_VALUE` at reset.
    static _stack_end: u32;
    static _stack_start: u32;
}

/// The deepest the stack has been so far, in bytes: the painted words still intact from
/// the bottom of the stack region up are the ones never used.
fn stack_high_water() -> (usize, usize) {
    let bottom = &raw const _stack_end as usize;
    let top = &raw const _stack_start as usize;
    let mut p = bottom;
    while p < top {
        // SAFETY: `p` is a 4-byte aligned word between `_stack_end` and `_stack_start`,
        // inside RAM (the linker script asserts both bounds); the stack below the
        // current stack pointer is plain memory nobody else writes while we read.
        let w = unsafe { core::ptr::read_volatile(p as *const u32) };
        if w != cortex_m_rt::STACK_PAINT_VALUE {
            break;
        }
        p += 4;
    }
    (top - p, top - bottom)
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    say!("bulwark firmware on {}", board::NAME);
    let Some(p) = cortex_m::Peripherals::take() else {
        fail_now("core peripherals taken twice");
    };
    say!("--- scenario 1: flaky sensor (breaker, retry with backoff, rate limiter, bus bulkhead)");
    // Time starts now: a semihosting call stops the core for a while, so none is made until
    // the scenario's timeline is complete.
    board::start_tick(p.SYST);
    board::enable_soft_irq();
    let (Ok(sensor), Ok(display)) = (sensor::sensor(), sensor::display()) else {
        fail_now("spawning the sensor tasks");
    };
    spawner.spawn(display);
    spawner.spawn(sensor);
    sensor::finished().await;
    let complete = timeline::print();
    check!(complete, "timeline: every event recorded");
    sensor::check();

    say!(
        "--- scenario 2: an interrupt handler shares a breaker, a limiter and a bulkhead with tasks"
    );
    let Ok(hammer) = storm::hammer() else {
        fail_now("spawning the hammer task");
    };
    spawner.spawn(hammer);
    storm::run().await;

    let (used, size) = stack_high_water();
    say!("stack high-water mark: {used} bytes of {size}");
    let ticks = time_driver::ticks();
    let failed = log::failures();
    if failed == 0 {
        say!("firmware: all checks passed at {ticks} ms");
    } else {
        say!("firmware: {failed} checks FAILED at {ticks} ms");
    }
    log::exit(failed == 0)
}
