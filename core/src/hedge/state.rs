//! The pure schedule of a hedged call: [`Machine`].

use core::time::Duration;

use crate::time::Instant;

/// What a hedged call does next.
///
/// ```
/// use bulwark::hedge::Next;
/// use bulwark::Instant;
/// assert_ne!(Next::StartAt(Instant::ZERO), Next::Wait);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Next {
    /// Start the next copy at this instant (now, if it has passed).
    StartAt(Instant),
    /// Every copy has started: wait for the ones running.
    Wait,
    /// Every copy has started and failed: the call fails with the primary's answer.
    GiveUp,
}

/// The schedule of one hedged call of `N` copies: the next copy starts a delay after the one
/// before it, or at once when a copy's answer is not acceptable.
///
/// ```
/// use bulwark::hedge::{Machine, Next};
/// use bulwark::Instant;
/// use core::time::Duration;
/// let mut m = Machine::<3>::new();
/// m.started(Instant::ZERO, Duration::from_millis(50));
/// assert_eq!(m.next(), Next::StartAt(Instant::from_millis(50)));
/// m.started(Instant::from_millis(50), Duration::from_millis(50));
/// m.failed(Instant::from_millis(60)); // a copy failed: the last one starts at once
/// assert_eq!(m.next(), Next::StartAt(Instant::from_millis(60)));
/// m.started(Instant::from_millis(60), Duration::from_millis(50));
/// assert_eq!(m.next(), Next::Wait);
/// m.failed(Instant::from_millis(70));
/// m.failed(Instant::from_millis(80));
/// assert_eq!(m.next(), Next::GiveUp);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Machine<const N: usize> {
    started: usize,
    failed: usize,
    next_at: Instant,
}

impl<const N: usize> Default for Machine<N> {
    fn default() -> Self {
        Machine::new()
    }
}

impl<const N: usize> Machine<N> {
    /// No copy started yet: the first starts at once.
    ///
    /// ```
    /// assert_eq!(bulwark::hedge::Machine::<2>::new().next(), bulwark::hedge::Next::StartAt(bulwark::Instant::ZERO));
    /// ```
    pub const fn new() -> Self {
        Machine {
            started: 0,
            failed: 0,
            next_at: Instant::ZERO,
        }
    }

    /// A copy started at `now`; the next one is due `delay` later.
    ///
    /// ```
    /// use bulwark::hedge::{Machine, Next};
    /// let mut m = Machine::<2>::new();
    /// m.started(bulwark::Instant::from_secs(1), core::time::Duration::from_secs(1));
    /// assert_eq!(m.next(), Next::StartAt(bulwark::Instant::from_secs(2)));
    /// ```
    pub fn started(&mut self, now: Instant, delay: Duration) {
        self.started = (self.started + 1).min(N);
        self.next_at = now.saturating_add(delay);
    }

    /// A copy answered at `now` with an answer that is not acceptable: the next copy, if
    /// any, starts at once.
    ///
    /// ```
    /// use bulwark::hedge::{Machine, Next};
    /// let mut m = Machine::<2>::new();
    /// m.started(bulwark::Instant::ZERO, core::time::Duration::from_secs(9));
    /// m.failed(bulwark::Instant::from_secs(1));
    /// assert_eq!(m.next(), Next::StartAt(bulwark::Instant::from_secs(1)));
    /// ```
    pub fn failed(&mut self, now: Instant) {
        self.failed = (self.failed + 1).min(self.started);
        if now < self.next_at {
            self.next_at = now;
        }
    }

    /// Copies running now.
    ///
    /// ```
    /// assert_eq!(bulwark::hedge::Machine::<2>::new().running(), 0);
    /// ```
    pub const fn running(&self) -> usize {
        self.started - self.failed
    }

    /// Copies started so far.
    ///
    /// ```
    /// assert_eq!(bulwark::hedge::Machine::<2>::new().copies(), 0);
    /// ```
    pub const fn copies(&self) -> usize {
        self.started
    }

    /// What comes next.
    ///
    /// ```
    /// use bulwark::hedge::{Machine, Next};
    /// let mut m = Machine::<2>::new();
    /// m.started(bulwark::Instant::ZERO, core::time::Duration::ZERO);
    /// m.started(bulwark::Instant::ZERO, core::time::Duration::ZERO);
    /// assert_eq!(m.next(), Next::Wait);
    /// ```
    pub const fn next(&self) -> Next {
        if self.started < N {
            Next::StartAt(self.next_at)
        } else if self.running() > 0 {
            Next::Wait
        } else {
            Next::GiveUp
        }
    }
}
