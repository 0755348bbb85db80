//! The timers that bound each check, kept registered with tokio from one check to the next.
//!
//! A check's timeout is a tokio timer. A fresh timer that is the earliest in tokio's wheel
//! makes tokio wake the thread parked on its driver to shorten its sleep (a syscall, and a
//! wake-up of another thread): on an otherwise idle runtime that is every check, and it cost
//! about a tenth of a check's round trip on loopback (the bench in `tests/bench.rs`, the
//! script called by hand with and without `tokio::time::timeout` around it). A timer that stays
//! registered after its check and is moved later for the next one never is the earliest:
//! the driver already sleeps until the old deadline, which is sooner. So the timers of
//! finished checks wait here for the next check to reset.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bulwark::{Clock, Instant, Sleep};
use bulwark_tokio::TokioClock;
use tokio::runtime::{Handle, Id};

/// At most this many idle timers are kept (about the checks in flight at once); more are
/// dropped.
const KEEP: usize = 64;

/// A pool of tokio timers; `&Alarms` is the [`Sleep`] a check's timeout runs on.
#[derive(Debug, Default)]
pub(crate) struct Alarms {
    idle: Mutex<Vec<(Id, Pin<Box<tokio::time::Sleep>>)>>,
}

impl Clock for &Alarms {
    fn now(&self) -> Instant {
        TokioClock.now()
    }
}

impl<'a> Sleep for &'a Alarms {
    type Sleep = Alarm<'a>;

    fn sleep_until(&self, deadline: Instant) -> Alarm<'a> {
        let at = TokioClock.to_tokio(deadline);
        // A timer belongs to the runtime it was made in: one of another runtime (the limiter
        // moved, or a test's runtime ended) is dropped, never reset.
        let runtime = Handle::try_current().ok().map(|h| h.id());
        let reused = runtime.and_then(|rt| {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            while let Some((id, sleep)) = idle.pop() {
                if id == rt {
                    return Some((id, sleep));
                }
            }
            None
        });
        // Outside a runtime nothing can be armed (tokio's own sleep would panic): the alarm
        // never rings, and redis-rs cannot run there either.
        let timer = match reused {
            Some((id, mut sleep)) => {
                sleep.as_mut().reset(at);
                Some((id, sleep))
            }
            None => runtime.map(|id| (id, Box::pin(tokio::time::sleep_until(at)))),
        };
        Alarm { pool: self, timer }
    }
}

/// One check's timer, back in its pool when the check is done.
#[derive(Debug)]
pub(crate) struct Alarm<'a> {
    pool: &'a Alarms,
    timer: Option<(Id, Pin<Box<tokio::time::Sleep>>)>,
}

impl Future for Alarm<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.timer {
            Some((_, sleep)) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl Drop for Alarm<'_> {
    fn drop(&mut self) {
        // Back to the pool as it is, still registered. It is not polled again here (tokio
        // panics when a timer of a runtime that is shutting down is polled): if its deadline
        // passes before a check resets it, it wakes the task of the check that last used it
        // once, spuriously, which is harmless.
        if let Some(timer) = self.timer.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < KEEP {
                idle.push(timer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_reused_timer_rings_at_its_new_deadline_only() {
        let alarms = Alarms::default();
        let clock = &alarms;
        let t0 = clock.now();
        // First check: done before its 100 ms; its timer goes back to the pool.
        drop(clock.sleep(Duration::from_millis(100)));
        assert_eq!(alarms.idle.lock().unwrap().len(), 1);
        // Second check, reset to 300 ms: the old 100 ms deadline does not ring it.
        let second = clock.sleep(Duration::from_millis(300));
        assert!(
            alarms.idle.lock().unwrap().is_empty(),
            "the timer was reused"
        );
        second.await;
        assert_eq!(clock.now() - t0, Duration::from_millis(300));
        // Many at once: each has its own timer; at most KEEP are kept.
        let many: Vec<_> = (0..KEEP + 3)
            .map(|_| clock.sleep(Duration::from_millis(5)))
            .collect();
        drop(many);
        assert_eq!(alarms.idle.lock().unwrap().len(), KEEP);
    }

    #[test]
    fn a_timer_of_an_ended_runtime_is_dropped_not_reused() {
        let alarms = Alarms::default();
        let rt = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap()
        };
        // A check's timer dropped after its runtime ended: kept, nothing polled, no panic.
        let first = rt();
        let late = {
            let _in = first.enter();
            (&alarms).sleep(Duration::from_millis(1))
        };
        drop(first);
        drop(late);
        assert_eq!(alarms.idle.lock().unwrap().len(), 1);
        // A new runtime: the old timer belongs to a dead driver (polling it would panic); it is
        // dropped instead.
        rt().block_on(async {
            (&alarms).sleep(Duration::from_millis(1)).await;
        });
        assert_eq!(alarms.idle.lock().unwrap().len(), 1, "only the new one");
        // Outside any runtime nothing is armed, and nothing panics.
        let mut outside = std::pin::pin!((&alarms).sleep(Duration::from_millis(1)));
        let cx = &mut Context::from_waker(std::task::Waker::noop());
        assert_eq!(outside.as_mut().poll(cx), Poll::Pending);
    }
}
