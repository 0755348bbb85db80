//! The embassy-time driver: a 1 kHz tick from the board's timer interrupt and a generic
//! timer queue (embassy-time-queue-utils, 16 slots).
//!
//! Tick-based, not tickless: the board's timer interrupts every millisecond, the handler
//! counts the tick and, when the earliest deadline in the queue has come, wakes what is due.
//! One interrupt per millisecond is nothing for these boards, and it keeps the driver to a
//! counter and a queue behind one critical section; the price is that an idle chip still
//! wakes every millisecond.
//!
//! The count is a `u64` behind a critical section: Cortex-M has no 64-bit atomics, and the
//! Cortex-M0 no read-modify-write atomics at all.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// Ticks per second: embassy-time's `tick-hz-1_000` feature says the same.
pub const TICK_HZ: u32 = 1_000;
const _: () = assert!(TICK_HZ as u64 == embassy_time_driver::TICK_HZ);

struct TickDriver {
    /// Ticks since boot.
    ticks: Mutex<Cell<u64>>,
    /// The earliest deadline in the queue (`u64::MAX`: none).
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

impl TickDriver {
    /// Runs the queue at `now`: wakes what is due and remembers the next deadline.
    fn run_queue(&self, cs: CriticalSection<'_>, now: u64) {
        let next = self.queue.borrow_ref_mut(cs).next_expiration(now);
        self.alarm.borrow(cs).set(next);
    }
}

impl Driver for TickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            if self.queue.borrow_ref_mut(cs).schedule_wake(at, waker) {
                // A deadline already due is woken here and now; otherwise the next tick
                // that reaches it does.
                self.run_queue(cs, self.ticks.borrow(cs).get());
            }
        })
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: TickDriver = TickDriver {
    ticks: Mutex::new(Cell::new(0)),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// One tick: called by the board's timer interrupt handler, once per millisecond.
pub fn on_tick() {
    critical_section::with(|cs| {
        let now = DRIVER.ticks.borrow(cs).get() + 1;
        DRIVER.ticks.borrow(cs).set(now);
        if now >= DRIVER.alarm.borrow(cs).get() {
            DRIVER.run_queue(cs, now);
        }
    })
}

/// Ticks since boot, for code that runs before embassy-time is used (and for the checks).
pub fn ticks() -> u64 {
    DRIVER.now()
}
