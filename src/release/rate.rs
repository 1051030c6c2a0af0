//! A token bucket: `plan release serve` answers at most `rate` requests a second on
//! average, with bursts of `burst`; beyond that a request gets 429 before its body is read.
//! Alertmanager sends a few requests a minute, so only a flood meets the limit.

use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(rate: f64, burst: f64, now: Instant) -> Bucket {
        Bucket {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Takes one token at `now`, if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, 20.0, t0);
        assert_eq!((0..30).filter(|_| b.take(t0)).count(), 20, "the burst");
        assert!(!b.take(t0));
        // A second later, ten more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..30).filter(|_| b.take(t1)).count(), 10);
        // Never more than the burst, however long it rested.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..100).filter(|_| b.take(t2)).count(), 20);
    }
}
