//! A token bucket to rate-limit the ICMP errors a router sends (RFC 1812 4.3.2.8).

use std::time::Instant;

/// One token, in the bucket's unit (token-nanoseconds per second).
const TOKEN: u128 = 1_000_000_000;

/// A token bucket for ICMP errors (RFC 1812 4.3.2.8): `rate` per second with a `burst`; pure:
/// time is passed in. It starts full.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate_per_sec: u32,
    /// Capacity, in [`TOKEN`] units.
    capacity: u128,
    /// Current credit, in [`TOKEN`] units (exact: no float drift).
    credit: u128,
    last: Option<Instant>,
}

impl RateLimiter {
    /// A bucket refilled at `rate_per_sec` tokens per second, holding at most `burst`.
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        let capacity = u128::from(burst) * TOKEN;
        Self {
            rate_per_sec,
            capacity,
            credit: capacity,
            last: None,
        }
    }

    /// Takes one token if there is one at `now`. Time going backwards refills nothing.
    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now
                .saturating_duration_since(last)
                .as_nanos()
                .saturating_mul(u128::from(self.rate_per_sec));
            self.credit = self.credit.saturating_add(refill).min(self.capacity);
        }
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        if self.credit >= TOKEN {
            self.credit -= TOKEN;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn test_rate_limiter() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut limiter = RateLimiter::new(10, 3);
        assert_eq!((0..5).filter(|_| limiter.allow(start)).count(), 3);
        // 10/s: one token per 100 ms, exactly.
        assert!(!limiter.allow(ms(99)));
        assert!(limiter.allow(ms(100)));
        assert!(!limiter.allow(ms(150)));
        assert!(limiter.allow(ms(200)));
        // Time going backwards refills nothing; a long pause refills only up to the burst.
        assert!(!limiter.allow(start));
        assert_eq!((0..10).filter(|_| limiter.allow(ms(3_600_000))).count(), 3);
        assert!(!RateLimiter::new(0, 0).allow(ms(1)));
    }
}
