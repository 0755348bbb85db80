//! [`bulwark`] on embassy: a [`Clock`] and [`Sleep`] over `embassy-time`.
//!
//! `#![no_std]`, no heap. Nothing global is chosen here: the tick rate, the timer queue and
//! the time driver belong to the firmware binary. Instants convert between embassy ticks and
//! bulwark's nanoseconds exactly where the tick rate divides 10⁹, and sleeps round *up* to
//! the next tick, so a sleep never ends before its deadline.
//!
//! ```standalone_crate
//! # embassy_time::MockDriver::get().reset();
//! use bulwark::{Clock, Instant, Sleep};
//! use bulwark_embassy::EmbassyClock;
//!
//! let clock = EmbassyClock;
//! assert_eq!(clock.now(), Instant::ZERO);
//! embassy_time::MockDriver::get().advance(embassy_time::Duration::from_millis(250));
//! assert_eq!(clock.now(), Instant::from_millis(250));
//! ```
#![no_std]
#![forbid(unsafe_code)]

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

pub use bulwark;
use bulwark::{Clock, Instant, Sleep};

mod semaphore;
use embassy_time::TICK_HZ;
pub use semaphore::EmbassySemaphore;

/// The embassy time driver as a bulwark [`Clock`]. Its origin is the driver's (boot).
///
/// ```standalone_crate
/// # embassy_time::MockDriver::get().reset();
/// use bulwark::Clock;
/// assert_eq!(bulwark_embassy::EmbassyClock.now(), bulwark::Instant::ZERO);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EmbassyClock;

/// Ticks to nanoseconds, saturating.
fn ticks_to_nanos(ticks: u64) -> u64 {
    let ns = ticks as u128 * 1_000_000_000 / TICK_HZ as u128;
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Nanoseconds to ticks, rounded up so that a deadline is never early; saturating.
fn nanos_to_ticks_ceil(nanos: u64) -> u64 {
    let ticks = (nanos as u128 * TICK_HZ as u128).div_ceil(1_000_000_000);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

impl EmbassyClock {
    /// The embassy instant for `t` (rounded up to a whole tick).
    ///
    /// ```standalone_crate
    /// use bulwark_embassy::EmbassyClock;
    /// let t = EmbassyClock.to_embassy(bulwark::Instant::from_millis(5));
    /// assert_eq!(t.as_millis(), 5);
    /// ```
    pub fn to_embassy(&self, t: Instant) -> embassy_time::Instant {
        embassy_time::Instant::from_ticks(nanos_to_ticks_ceil(t.as_nanos()))
    }
}

impl Clock for EmbassyClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(ticks_to_nanos(embassy_time::Instant::now().as_ticks()))
    }
}

impl Sleep for EmbassyClock {
    type Sleep = EmbassySleep;

    fn sleep_until(&self, deadline: Instant) -> EmbassySleep {
        EmbassySleep {
            deadline,
            timer: embassy_time::Timer::at(self.to_embassy(deadline)),
        }
    }
}

/// The future of [`EmbassyClock`]'s [`Sleep::sleep_until`]: an embassy `Timer` that, unlike
/// the bare timer, completes at once when its deadline has already passed.
///
/// ```standalone_crate
/// # embassy_time::MockDriver::get().reset();
/// use bulwark::{Instant, Sleep};
/// use core::{future::Future, pin::pin, task::{Context, Waker}};
/// let mut s = pin!(bulwark_embassy::EmbassyClock.sleep_until(Instant::ZERO));
/// assert!(s.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready());
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct EmbassySleep {
    deadline: Instant,
    timer: embassy_time::Timer,
}

impl Future for EmbassySleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if EmbassyClock.now() >= self.deadline {
            return Poll::Ready(());
        }
        Pin::new(&mut self.timer).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_up_and_saturate() {
        assert_eq!(nanos_to_ticks_ceil(0), 0);
        // One nanosecond is not a whole tick at any sane rate: it rounds up to one tick.
        assert_eq!(nanos_to_ticks_ceil(1), 1);
        assert!(ticks_to_nanos(1) >= 1);
        let ms = 1_000_000;
        assert_eq!(ticks_to_nanos(nanos_to_ticks_ceil(7 * ms)), 7 * ms);
        // No overflow at the ends.
        let _ = ticks_to_nanos(u64::MAX);
        let _ = nanos_to_ticks_ceil(u64::MAX);
    }
}
