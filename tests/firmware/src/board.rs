//! The two boards QEMU emulates for this firmware: the tick timer and a free interrupt line
//! the firmware pends in software.
//!
//! No device crate (PAC): cortex-m-rt routes every device interrupt to `DefaultHandler`,
//! which dispatches on the interrupt number. The few registers touched are written here.

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;

/// A device interrupt line of this board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq(pub u16);

// SAFETY: `number` returns the line it was built with, and the boards below only build lines
// their NVIC implements (below 32).
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

#[cfg(board = "mps2_an386")]
mod imp {
    use super::Irq;
    use cortex_m::peripheral::SYST;
    use cortex_m::peripheral::syst::SystClkSource;

    pub const NAME: &str = "mps2-an386 (Cortex-M4F, thumbv7em-none-eabihf)";
    /// QEMU's MPS2 system clock, which drives the core and its SysTick.
    const CORE_HZ: u32 = 25_000_000;
    /// A line that no device QEMU emulates on this board raises (the UARTs, timers, SPI and
    /// Ethernet use lines 0-24); any other interrupt would end the run (`DefaultHandler`).
    pub const SOFT_IRQ: Irq = Irq(30);

    /// SysTick from the core clock, one interrupt per tick.
    pub fn start_tick(mut syst: SYST) {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(CORE_HZ / crate::time_driver::TICK_HZ - 1);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
    }

    #[cortex_m_rt::exception]
    fn SysTick() {
        crate::time_driver::on_tick();
        crate::storm::on_tick();
    }

    /// Device interrupts other than the soft one: none are enabled.
    pub fn device_irq(_irq: i16) -> bool {
        false
    }
}

#[cfg(board = "microbit")]
mod imp {
    use super::Irq;
    use core::ptr::{read_volatile, write_volatile};

    pub const NAME: &str = "microbit (nRF51822, Cortex-M0, thumbv6m-none-eabi)";
    /// SWI0: the nRF51's line reserved for software interrupts.
    pub const SOFT_IRQ: Irq = Irq(20);
    /// The nRF51 has no SysTick: TIMER0 (line 8) makes the tick.
    const TIMER0_IRQ: Irq = Irq(8);
    const TIMER0: usize = 0x4000_8000;
    const TASKS_START: usize = 0x000;
    const EVENTS_COMPARE0: usize = 0x140;
    const SHORTS: usize = 0x200;
    const INTENSET: usize = 0x304;
    const MODE: usize = 0x504;
    const BITMODE: usize = 0x508;
    const PRESCALER: usize = 0x510;
    const CC0: usize = 0x540;

    fn write(reg: usize, value: u32) {
        // SAFETY: TIMER0's registers are 4-byte aligned MMIO words at this fixed address on
        // the nRF51, written only here (start-up and its own interrupt handler).
        unsafe { write_volatile((TIMER0 + reg) as *mut u32, value) }
    }

    fn read(reg: usize) -> u32 {
        // SAFETY: as in `write`; reading an event register has no side effect.
        unsafe { read_volatile((TIMER0 + reg) as *const u32) }
    }

    /// TIMER0 in timer mode at 1 MHz (16 MHz / 2^4), 32-bit, compare 0 at one tick's count
    /// and cleared by it (SHORTS COMPARE0_CLEAR), its interrupt on compare 0.
    pub fn start_tick(_syst: cortex_m::peripheral::SYST) {
        write(MODE, 0);
        write(BITMODE, 3);
        write(PRESCALER, 4);
        write(CC0, 1_000_000 / crate::time_driver::TICK_HZ);
        write(SHORTS, 1);
        write(INTENSET, 1 << 16);
        // SAFETY: the handler (`device_irq`) is in place and shares nothing unguarded.
        unsafe { cortex_m::peripheral::NVIC::unmask(TIMER0_IRQ) };
        write(TASKS_START, 1);
    }

    /// TIMER0's interrupt: the tick. `true` if `irq` was it.
    pub fn device_irq(irq: i16) -> bool {
        if irq != TIMER0_IRQ.0 as i16 {
            return false;
        }
        if read(EVENTS_COMPARE0) != 0 {
            write(EVENTS_COMPARE0, 0);
            crate::time_driver::on_tick();
            crate::storm::on_tick();
        }
        true
    }
}

pub use imp::{NAME, SOFT_IRQ, start_tick};

/// Enables the soft interrupt line (its handler is `storm::on_soft_irq`).
pub fn enable_soft_irq() {
    NVIC::unpend(SOFT_IRQ);
    // SAFETY: unmasking cannot break a critical section (cortex-m's are PRIMASK-based, which
    // masks this line too); the handler only touches interrupt-safe state.
    unsafe { NVIC::unmask(SOFT_IRQ) };
}

/// Asks for the soft interrupt: it runs as soon as nothing of its priority or higher runs.
pub fn pend_soft_irq() {
    NVIC::pend(SOFT_IRQ);
}

// SAFETY (of the `unsafe fn` cortex-m-rt requires for these two handlers): they are only
// ever entered by the hardware as exception handlers, and touch nothing but interrupt-safe
// state (critical-section guarded or atomics) and semihosting.
#[cortex_m_rt::exception]
unsafe fn DefaultHandler(irq: i16) {
    if irq == SOFT_IRQ.0 as i16 {
        crate::storm::on_soft_irq();
    } else if !imp::device_irq(irq) {
        crate::fail_now("unexpected interrupt or exception");
    }
}

#[cortex_m_rt::exception]
unsafe fn HardFault(_frame: &cortex_m_rt::ExceptionFrame) -> ! {
    crate::fail_now("hard fault")
}
