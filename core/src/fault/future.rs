//! The async form: [`Injector::call`] and its [`Call`] future.

use core::fmt;
use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::error::{Error, Injected};
use super::shared::Injector;
use crate::time::Sleep;

impl<S: Sleep> Injector<S> {
    /// Runs `op` under the next [`Fault`](super::Fault), decided when the future is first
    /// polled: waits the delay on the injector's clock, then refuses the call, or makes it and
    /// returns its outcome, or makes it and replaces its outcome. `op` is called only when the
    /// call is made.
    ///
    /// # Errors
    ///
    /// [`Error::Injected`] with the fault, or [`Error::Operation`] with the operation's own
    /// error.
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops the delay or the running call.
    ///
    /// ```
    /// use bulwark::fault::{Config, Error, Injected, Injector, Rate};
    /// use bulwark::{MockClock, mock};
    /// use core::cell::Cell;
    /// let clock = MockClock::new();
    /// let chaos = Injector::new(Config::new().replace(Rate::ALWAYS), &clock).unwrap();
    /// let made = Cell::new(false);
    /// let out = mock::run(&clock, chaos.call(|| async { made.set(true); Ok::<_, ()>(1) })).unwrap();
    /// assert_eq!(out, Err(Error::Injected(Injected::Replaced)));
    /// assert!(made.get()); // the call was made; its outcome was thrown away
    /// ```
    pub fn call<F, Fut, T, E>(&self, op: F) -> Call<&Self, S, F, Fut>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Call::new(self, op)
    }
}

pin_project! {
    #[project = StageProj]
    #[project_replace = StageReplace]
    enum Stage<Sl, F, Fut> {
        Start { op: F },
        Delaying { #[pin] sleep: Sl, op: F, fail: Option<Injected> },
        Running { #[pin] fut: Fut, replace: bool },
        Done,
    }
}

pin_project! {
    /// The future of [`Injector::call`], for any owner of the injector (`&`, `Arc`,
    /// `&'static`) through [`Call::new`].
    ///
    /// ```
    /// use bulwark::fault::{Call, Config, Injector};
    /// use bulwark::{MockClock, mock};
    /// use std::sync::Arc;
    /// let clock = MockClock::new();
    /// let chaos = Arc::new(Injector::new(Config::new(), &clock).unwrap());
    /// let call = Call::new(Arc::clone(&chaos), || async { Ok::<_, ()>(7) });
    /// assert_eq!(mock::run(&clock, call).unwrap(), Ok(7));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Call<R, S: Sleep, F, Fut> {
        injector: R,
        #[pin]
        stage: Stage<S::Sleep, F, Fut>,
    }
}

impl<R, S, F, Fut> Call<R, S, F, Fut>
where
    R: Deref<Target = Injector<S>>,
    S: Sleep,
{
    /// A call of `op` through the injector `injector` points to.
    ///
    /// ```
    /// use bulwark::fault::{Call, Config, Error, Injected, Injector, Rate};
    /// use bulwark::{MockClock, mock};
    /// let clock = MockClock::new();
    /// let chaos = Injector::new(Config::new().abort(Rate::ALWAYS), &clock).unwrap();
    /// let call = Call::new(&chaos, || -> core::future::Ready<Result<(), ()>> { unreachable!("refused") });
    /// assert_eq!(mock::run(&clock, call).unwrap(), Err(Error::Injected(Injected::Aborted)));
    /// ```
    pub fn new(injector: R, op: F) -> Self {
        Call {
            injector,
            stage: Stage::Start { op },
        }
    }
}

impl<R, S, F, Fut, T, E> Future for Call<R, S, F, Fut>
where
    R: Deref<Target = Injector<S>>,
    S: Sleep,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.stage.as_mut().project() {
                StageProj::Start { .. } => {
                    let fault = this.injector.decide();
                    let StageReplace::Start { op } =
                        this.stage.as_mut().project_replace(Stage::Done)
                    else {
                        unreachable!("matched Start above")
                    };
                    if fault.delay.is_zero() {
                        match start(op, fault.fail) {
                            Ok(next) => this.stage.set(next),
                            Err(e) => return Poll::Ready(Err(e)),
                        }
                    } else {
                        this.stage.set(Stage::Delaying {
                            sleep: this.injector.sleeper.sleep(fault.delay),
                            op,
                            fail: fault.fail,
                        });
                    }
                }
                StageProj::Delaying { sleep, fail, .. } => {
                    core::task::ready!(sleep.poll(cx));
                    let fail = *fail;
                    let StageReplace::Delaying { op, .. } =
                        this.stage.as_mut().project_replace(Stage::Done)
                    else {
                        unreachable!("matched Delaying above")
                    };
                    match start(op, fail) {
                        Ok(next) => this.stage.set(next),
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                StageProj::Running { fut, replace } => {
                    let out = core::task::ready!(fut.poll(cx));
                    let replace = *replace;
                    this.stage.set(Stage::Done);
                    return Poll::Ready(if replace {
                        Err(Error::Injected(Injected::Replaced))
                    } else {
                        out.map_err(Error::Operation)
                    });
                }
                StageProj::Done => return Poll::Pending, // polled after completion
            }
        }
    }
}

/// Makes the call (the stage that runs it), or refuses it.
#[allow(clippy::type_complexity)]
fn start<Sl, F: FnOnce() -> Fut, Fut, E>(
    op: F,
    fail: Option<Injected>,
) -> Result<Stage<Sl, F, Fut>, Error<E>> {
    match fail {
        Some(Injected::Aborted) => Err(Error::Injected(Injected::Aborted)),
        fail => Ok(Stage::Running {
            fut: op(),
            replace: fail == Some(Injected::Replaced),
        }),
    }
}

impl<R, S: Sleep, F, Fut> fmt::Debug for Call<R, S, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}
