//! Failed authentications per client address, as a token bucket: each
//! address may fail `burst` times, and earns one more try every
//! 60 / `per_minute` seconds. An address with no tries left is refused
//! (429, with the wait in `Retry-After`) before its token is looked at, so
//! guessing costs the guesser time and the server almost nothing; other
//! addresses are unaffected. Memory is bounded: at most `clients_max`
//! addresses are tracked; when the table is full, addresses that have
//! earned back all their tries are forgotten, and if none has, the
//! newcomers share one bucket (so a flood from many addresses is still
//! bounded, at the price of those newcomers sharing a limit).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct FailureLimiter {
    burst: f64,
    /// Tries earned per second.
    rate: f64,
    clients_max: usize,
    state: Mutex<Clients>,
}

#[derive(Default)]
struct Clients {
    by_address: HashMap<IpAddr, Bucket>,
    /// The bucket of addresses that found the table full.
    overflow: Option<Bucket>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tries: f64,
    at: Instant,
}

impl Bucket {
    /// The tries left at `now`.
    fn refill(&mut self, now: Instant, burst: f64, rate: f64) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * rate;
        self.tries = (self.tries + earned).min(burst);
        self.at = now;
    }
}

impl FailureLimiter {
    pub fn new(burst: u32, per_minute: u32, clients_max: usize) -> FailureLimiter {
        FailureLimiter {
            burst: f64::from(burst.max(1)),
            rate: f64::from(per_minute.max(1)) / 60.0,
            clients_max: clients_max.max(1),
            state: Mutex::new(Clients::default()),
        }
    }

    /// How long `client` must wait before it may try again, or None if it
    /// may try now.
    pub fn refused_for(&self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.by_address.is_empty() && state.overflow.is_none() {
            return None;
        }
        let (burst, rate) = (self.burst, self.rate);
        let Clients { by_address, overflow } = &mut *state;
        let full = by_address.len() >= self.clients_max;
        let bucket = match by_address.get_mut(&client) {
            Some(bucket) => bucket,
            None if full => overflow.as_mut()?,
            None => return None,
        };
        bucket.refill(now, burst, rate);
        (bucket.tries < 1.0).then(|| Duration::from_secs_f64((1.0 - bucket.tries) / rate))
    }

    /// `client` failed once more.
    pub fn record_failure(&self, client: IpAddr) {
        let now = Instant::now();
        let (burst, rate) = (self.burst, self.rate);
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let fresh = Bucket { tries: burst, at: now };
        if !state.by_address.contains_key(&client) && state.by_address.len() >= self.clients_max {
            state.by_address.retain(|_, bucket| {
                bucket.refill(now, burst, rate);
                bucket.tries < burst
            });
        }
        let bucket = if state.by_address.contains_key(&client) || state.by_address.len() < self.clients_max {
            state.by_address.entry(client).or_insert(fresh)
        } else {
            state.overflow.get_or_insert(fresh)
        };
        bucket.refill(now, burst, rate);
        bucket.tries = (bucket.tries - 1.0).max(0.0);
    }

    /// Addresses tracked now (for tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.state.lock().unwrap().by_address.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn an_address_is_refused_after_its_burst_and_others_are_not() {
        let limiter = FailureLimiter::new(3, 60, 100);
        for _ in 0..3 {
            assert_eq!(limiter.refused_for(ip(1)), None);
            limiter.record_failure(ip(1));
        }
        let wait = limiter.refused_for(ip(1)).expect("refused after the burst");
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(limiter.refused_for(ip(2)), None, "another address may still try");
    }

    #[test]
    fn tries_come_back_at_the_rate() {
        // 6000 a minute: one try every 10 ms.
        let limiter = FailureLimiter::new(1, 6000, 100);
        limiter.record_failure(ip(1));
        assert!(limiter.refused_for(ip(1)).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(limiter.refused_for(ip(1)), None);
    }

    #[test]
    fn memory_is_bounded_and_a_full_table_shares_one_bucket() {
        let limiter = FailureLimiter::new(2, 1, 4);
        for last in 0..4 {
            limiter.record_failure(ip(last));
        }
        assert_eq!(limiter.tracked(), 4);
        // The table is full of addresses that have not earned their tries
        // back: newcomers share the overflow bucket.
        limiter.record_failure(ip(10));
        limiter.record_failure(ip(11));
        assert_eq!(limiter.tracked(), 4);
        assert!(limiter.refused_for(ip(12)).is_some(), "the shared bucket is spent");
        assert_eq!(limiter.refused_for(ip(0)), None, "a tracked address keeps its own tries");
    }
}
