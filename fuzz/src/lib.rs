//! Helpers shared by the fuzz targets: structured inputs biased towards the edges
//! (0, 1, small values, `u64::MAX`), and a waker that records whether it was woken.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Wake, Waker};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

/// A `u64` that is usually small or near the top of its range, sometimes anything.
#[derive(Copy, Clone, Debug)]
pub struct Edgy(pub u64);

impl<'a> Arbitrary<'a> for Edgy {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Edgy(match u.int_in_range(0u8..=5)? {
            0 => u.int_in_range(0u64..=3)?,
            1 => u.int_in_range(0u64..=1_000)?,
            2 => u64::MAX - u.int_in_range(0u64..=3)?,
            3 => u64::MAX - u.int_in_range(0u64..=1_000_000_000_000)?,
            4 => 1u64 << u.int_in_range(0u32..=63)?,
            _ => u.arbitrary()?,
        }))
    }
}

/// A duration from nothing to [`Duration::MAX`], biased towards the interesting ones.
#[derive(Copy, Clone, Debug)]
pub struct Dur(pub Duration);

impl<'a> Arbitrary<'a> for Dur {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Dur(match u.int_in_range(0u8..=6)? {
            0 => Duration::ZERO,
            1 => Duration::from_nanos(u.int_in_range(1u64..=5)?),
            2 => Duration::from_millis(u.int_in_range(1u64..=2_000)?),
            3 => Duration::from_secs(u.int_in_range(1u64..=100_000)?),
            4 => Duration::MAX,
            5 => Duration::from_nanos(Edgy::arbitrary(u)?.0),
            _ => {
                let secs: u64 = u.arbitrary()?;
                let nanos: u32 = u.arbitrary()?;
                Duration::new(secs, nanos % 1_000_000_000)
            }
        }))
    }
}

/// A small duration in milliseconds (0 ..= 2 s): time that moves within a scenario.
#[derive(Copy, Clone, Debug)]
pub struct SmallStep(pub Duration);

impl<'a> Arbitrary<'a> for SmallStep {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(SmallStep(match u.int_in_range(0u8..=3)? {
            0 => Duration::ZERO,
            1 => Duration::from_nanos(u.int_in_range(1u64..=3)?),
            2 => Duration::from_millis(u.int_in_range(1u64..=100)?),
            _ => Duration::from_millis(u.int_in_range(100u64..=2_000)?),
        }))
    }
}

/// `x` as nanoseconds, saturating at `u64::MAX` (what the library's `duration_to_nanos` is
/// documented to do, written independently).
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A waker that remembers being woken (until [`Flag::clear`]).
#[derive(Debug, Default)]
pub struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Flag {
    /// A fresh flag and a waker that sets it.
    pub fn waker() -> (Arc<Flag>, Waker) {
        let f = Arc::new(Flag::default());
        (f.clone(), Waker::from(f))
    }
    /// Was it woken since the last clear?
    pub fn woken(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// Forget earlier wake-ups.
    pub fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// A count: usually small (the values configurations are made of), sometimes at or just
/// past the edges of the narrower fields configurations are stored in.
#[derive(Copy, Clone, Debug)]
pub struct Count(pub u32);

impl<'a> Arbitrary<'a> for Count {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Count(match u.int_in_range(0u8..=9)? {
            0..=5 => u.int_in_range(1u32..=6)?,
            6 => 0,
            7 => u.int_in_range(0u32..=70)?,
            8 => *u.choose(&[63, 64, 255, 256, 65_535, 65_536, u32::MAX])?,
            _ => u.arbitrary()?,
        }))
    }
}

/// A percentage: usually 1 ..= 100, sometimes 0 or above 100.
#[derive(Copy, Clone, Debug)]
pub struct Percent(pub u8);

impl<'a> Arbitrary<'a> for Percent {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Percent(match u.int_in_range(0u8..=9)? {
            0 => 0,
            1 => u.int_in_range(101u8..=255)?,
            2 => 100,
            _ => u.int_in_range(1u8..=100)?,
        }))
    }
}

/// A configured span of time: usually 0 ..= 500 ms (so that scenarios cross it), sometimes
/// anything up to [`Duration::MAX`].
#[derive(Copy, Clone, Debug)]
pub struct Span(pub Duration);

impl<'a> Arbitrary<'a> for Span {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Span(match u.int_in_range(0u8..=7)? {
            0 => Duration::ZERO,
            1..=5 => Duration::from_millis(u.int_in_range(1u64..=500)?),
            _ => Dur::arbitrary(u)?.0,
        }))
    }
}
