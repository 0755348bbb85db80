//! gRPC's `retryThrottling` as a retry budget.

use core::fmt;

use super::error::ConfigError;
use crate::retry::RetryBudget;
use crate::sync::{AtomicU64, Ordering};
use crate::time::Instant;

/// gRPC's `retryThrottling` (A6 "gRPC Retry Design"): a token count starting at
/// `max_tokens`; every failure that asks for a retry takes one token, every success gives
/// back `token_ratio`; retries (and hedges) are allowed only while more than half the tokens
/// are left. A [`RetryBudget`]: give it to a [`Retry`](crate::retry::Retry) or a pipeline with
/// `budget(&throttling)`, shared by every client of one backend. Lock-free: one `AtomicU64` of
/// thousandths of a token.
///
/// One difference from gRPC, where every failed attempt takes a token: here a failure takes one
/// when it asks for a retry (a retry policy asks after every retryable failure but the last).
///
/// ```
/// use bulwark::retry::RetryBudget;
/// use bulwark::throttle::RetryThrottling;
/// use bulwark::Instant;
/// let t = RetryThrottling::new(10, 100).unwrap(); // max 10 tokens, 0.1 back per success
/// // Failures: 10 → 9 → 8 → 7 → 6 allowed; 5 is not above half (5): refused.
/// let granted = (0..6).filter(|_| t.try_withdraw(Instant::ZERO)).count();
/// assert_eq!(granted, 4);
/// // Eleven successes bring it back above half: 4 + 1.1 = 5.1 tokens, then one more retry.
/// (0..11).for_each(|_| t.deposit());
/// assert_eq!(t.tokens_milli(), 5_100);
/// ```
pub struct RetryThrottling {
    tokens: AtomicU64,
    max: u64,
    ratio: u64,
}

impl RetryThrottling {
    /// `max_tokens` (1 to 1000, as gRPC allows) and `token_ratio` in thousandths of a token
    /// (gRPC keeps three decimals; `100` is 0.1).
    ///
    /// # Errors
    ///
    /// [`ConfigError::MaxTokens`] or [`ConfigError::TokenRatio`].
    ///
    /// ```
    /// use bulwark::throttle::{ConfigError, RetryThrottling};
    /// assert_eq!(RetryThrottling::new(0, 100).err(), Some(ConfigError::MaxTokens));
    /// assert_eq!(RetryThrottling::new(10, 0).err(), Some(ConfigError::TokenRatio));
    /// ```
    pub fn new(max_tokens: u32, token_ratio_milli: u32) -> Result<Self, ConfigError> {
        if max_tokens == 0 || max_tokens > 1_000 {
            return Err(ConfigError::MaxTokens);
        }
        if token_ratio_milli == 0 {
            return Err(ConfigError::TokenRatio);
        }
        let max = u64::from(max_tokens) * 1_000;
        Ok(RetryThrottling {
            tokens: AtomicU64::new(max),
            max,
            ratio: u64::from(token_ratio_milli),
        })
    }

    /// Tokens left, in thousandths.
    ///
    /// ```
    /// assert_eq!(bulwark::throttle::RetryThrottling::new(3, 500).unwrap().tokens_milli(), 3_000);
    /// ```
    pub fn tokens_milli(&self) -> u64 {
        // Relaxed: a snapshot.
        self.tokens.load(Ordering::Relaxed)
    }
}

impl RetryBudget for RetryThrottling {
    fn deposit(&self) {
        // Relaxed: the count publishes nothing; the RMW keeps every deposit.
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some((t + self.ratio).min(self.max))
            });
    }

    fn try_withdraw(&self, _now: Instant) -> bool {
        // Relaxed: as in `deposit`. The failure takes its token whatever the answer.
        let before = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(1_000))
            })
            .unwrap_or(0);
        before.saturating_sub(1_000) > self.max / 2
    }
}

impl fmt::Debug for RetryThrottling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryThrottling")
            .field("tokens_milli", &self.tokens_milli())
            .field("max_milli", &self.max)
            .field("ratio_milli", &self.ratio)
            .finish()
    }
}
