//! Bandwidth limits on transfers: a [`RateLimiter`] (pure arithmetic on an injected
//! clock) and [`Throttled`], a [`SendStream`] that reads through it.
//!
//! A throttled stream never hands its process to the receiver
//! ([`SendStream::take_command`] is `None`), so its bytes pass through zsnap, where they
//! are counted and paced.
//!
//! # Invariants
//! A token bucket: the allowance grows by `rate` bytes per second up to `burst` bytes
//! and each byte moved spends one; when it is spent, the caller waits until it is paid
//! back. Over any stretch of time `t`, at most `rate × t + burst` bytes move.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{SendCommand, SendError, SendStream};

/// A monotonic clock that can sleep; injected so tests can observe the sleeps.
pub trait Clock: Send + Sync {
    /// Time since an arbitrary fixed origin.
    fn elapsed(&self) -> Duration;
    /// Sleeps for `d`.
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Paces a byte stream to `rate` bytes per second.
///
/// # Example
/// 1 MiB/s with no burst: 512 KiB moved at once must wait half a second; after a long
/// pause, only the burst allowance is saved up.
/// ```
/// use std::time::Duration;
/// use zsnap_exec::throttle::RateLimiter;
/// let mut l = RateLimiter::new(1 << 20, 0);
/// assert_eq!(l.account(Duration::ZERO, 512 << 10), Duration::from_millis(500));
/// // Called again at once: the next 512 KiB are due at 1 s.
/// assert_eq!(l.account(Duration::ZERO, 512 << 10), Duration::from_secs(1));
/// // Ten idle seconds later: no credit was saved (burst 0).
/// assert_eq!(l.account(Duration::from_secs(11), 1 << 20), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: u64,
    burst: u64,
    /// The allowance in byte-nanoseconds (bytes × 10⁹), negative while in debt; starts
    /// full (the burst).
    allowance: i128,
    /// When the allowance was last brought up to date.
    last: Option<Duration>,
}

const NANOS: i128 = 1_000_000_000;

impl RateLimiter {
    /// A limiter of `rate` bytes per second (at least 1) that saves up at most `burst`
    /// bytes of unused allowance while idle (and starts with them).
    pub fn new(rate: u64, burst: u64) -> Self {
        RateLimiter {
            rate: rate.max(1),
            burst,
            allowance: i128::from(burst) * NANOS,
            last: None,
        }
    }

    /// The rate in bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Accounts `bytes` moved at instant `now` (from the same clock on every call);
    /// returns how long to wait before moving more.
    pub fn account(&mut self, now: Duration, bytes: u64) -> Duration {
        let rate = i128::from(self.rate);
        if let Some(last) = self.last {
            let idle = i128::try_from(now.saturating_sub(last).as_nanos()).unwrap_or(i128::MAX);
            self.allowance = self
                .allowance
                .saturating_add(idle.saturating_mul(rate))
                .min(i128::from(self.burst) * NANOS);
        }
        self.last = Some(now.max(self.last.unwrap_or(now)));
        self.allowance -= i128::from(bytes) * NANOS;
        if self.allowance >= 0 {
            return Duration::ZERO;
        }
        // Round up: waking early would let the average creep over the rate.
        let nanos = (-self.allowance + rate - 1) / rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The largest read worth making at once: about an eighth of a second of bytes
    /// (at least 4 KiB), so the pacing stays smooth.
    pub fn chunk(&self) -> usize {
        usize::try_from((self.rate / 8).max(4096)).unwrap_or(usize::MAX)
    }
}

/// A send stream read at a limited rate. See the [module docs](self).
pub struct Throttled {
    inner: Box<dyn SendStream>,
    limiter: RateLimiter,
    clock: Arc<dyn Clock>,
}

impl Throttled {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn SendStream>, limiter: RateLimiter, clock: Arc<dyn Clock>) -> Self {
        Throttled {
            inner,
            limiter,
            clock,
        }
    }
}

impl Read for Throttled {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min(self.limiter.chunk());
        let n = self.inner.read(&mut buf[..want])?;
        if n > 0 {
            let wait = self.limiter.account(self.clock.elapsed(), n as u64);
            if !wait.is_zero() {
                self.clock.sleep(wait);
            }
        }
        Ok(n)
    }
}

impl SendStream for Throttled {
    fn take_command(&mut self) -> Option<SendCommand> {
        None
    }

    fn finish(self: Box<Self>) -> Result<(), SendError> {
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A clock that only moves when slept on, and remembers the sleeps.
    #[derive(Default)]
    struct Manual {
        now: Mutex<Duration>,
        sleeps: Mutex<Vec<Duration>>,
    }

    impl Clock for Manual {
        fn elapsed(&self) -> Duration {
            *self.now.lock().expect("not poisoned")
        }
        fn sleep(&self, d: Duration) {
            *self.now.lock().expect("not poisoned") += d;
            self.sleeps.lock().expect("not poisoned").push(d);
        }
    }

    #[test]
    fn average_rate_holds_over_any_chunking() {
        for chunk in [1u64, 100, 4096, 65_536, 1 << 20] {
            let mut l = RateLimiter::new(100_000, 0);
            let mut now = Duration::ZERO;
            let mut moved = 0;
            while moved < 1_000_000 {
                now += l.account(now, chunk);
                moved += chunk;
            }
            // Exactly rate-paced: moved bytes took moved / rate seconds.
            let want = Duration::from_nanos(moved * 10_000);
            assert!(
                now.abs_diff(want) < Duration::from_micros(100),
                "{chunk}: {now:?}"
            );
        }
    }

    #[test]
    fn burst_saves_only_so_much_while_idle() {
        let mut l = RateLimiter::new(1000, 500);
        assert_eq!(l.account(Duration::ZERO, 1000), Duration::from_millis(500));
        // Idle for a minute: 500 bytes of credit, not 60,000.
        let now = Duration::from_secs(60);
        assert_eq!(l.account(now, 500), Duration::ZERO);
        assert_eq!(l.account(now, 500), Duration::from_millis(500));
    }

    #[test]
    fn throttled_stream_sleeps_what_the_limiter_says() {
        let data = vec![7u8; 300_000];
        let clock = Arc::new(Manual::default());
        let inner = crate::backend::ReadStream::new(std::io::Cursor::new(data.clone()));
        let mut t = Throttled::new(Box::new(inner), RateLimiter::new(100_000, 0), clock.clone());
        assert!(t.take_command().is_none(), "bytes must pass through zsnap");
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = t.read(&mut buf).expect("reads");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
        let sleeps = clock.sleeps.lock().expect("not poisoned").clone();
        let total: Duration = sleeps.iter().sum();
        assert_eq!(total, Duration::from_secs(3));
        // Reads of an eighth of a second each: 12,500 bytes, 125 ms apiece.
        assert_eq!(sleeps.len(), 24);
        assert!(sleeps.iter().all(|s| *s == Duration::from_millis(125)));
        assert!(Box::new(t).finish().is_ok());
    }
}
