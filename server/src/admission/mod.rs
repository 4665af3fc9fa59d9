//! The queues at the door of the databases, one for reads and one for
//! writes: at most `ATELIER_READ_INFLIGHT_MAX` reads and
//! `ATELIER_WRITE_INFLIGHT_MAX` writes use the databases at once; the rest
//! wait here, before any deadline of theirs has started, and are refused
//! only when the queue has stopped draining.
//!
//! The rule is CoDel's, applied to an admission queue as Facebook's "Fail
//! at Scale" describes, with its adaptive LIFO. Every admitted request
//! reports how long it waited. When the shortest wait seen over a whole
//! `ATELIER_QUEUE_INTERVAL_MS` stays above `ATELIER_QUEUE_TARGET_MS`, the
//! queue is standing, not a burst passing through: the server is
//! overloaded. Then a newcomer may wait only the target, and waiters are
//! served newest first (a client that has waited long has likely given up;
//! the newest still has its whole deadline), so the admitted requests keep
//! the full capacity and answer fast while the excess is refused at once.
//! Otherwise a request may wait up to `ATELIER_QUEUE_WAIT_MS`, first come
//! first served: many clients at once are served, not refused.
//!
//! Why this and not an adaptive limit (Vegas, gradient): the databases'
//! capacity here is fixed by two cores shared with PostgreSQL, and the
//! limit only has to be large enough to keep them busy; what went wrong
//! (issue 26) was where the excess waited and for how long, which is
//! exactly what CoDel governs, with two parameters that mean a time.
//!
//! The write queue uses the same code with an unreachable target (never
//! overloaded, so first come, first served) and a wait bounded by half the
//! write deadline, which covers the wait and the write together: writers
//! of one product serialise on its lock anyway, and a checkout's movement
//! is worth its bounded wait.
//!
//! Only database work is admitted: answers from the document cache, 304s
//! the cache decides, the catalog page, the contract and the operational
//! endpoints never wait here and are never refused for lack of a slot.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::metrics::{Counter, Metrics};

mod settings;
pub use settings::AdmissionSettings;

/// Upper bounds of the queue-delay histogram, in seconds.
pub const DELAY_BUCKETS_SECONDS: [f64; 10] = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It waited its whole allowance (the target, when overloaded).
    Timeout,
    /// The queue already held `ATELIER_QUEUE_MAX` waiters.
    Full,
}

pub struct Settings {
    pub limit: usize,
    pub target: Duration,
    pub interval: Duration,
    pub wait_max: Duration,
    pub queue_max: usize,
}

pub(crate) struct Admission {
    settings: Settings,
    state: Mutex<State>,
    histogram: [AtomicU64; DELAY_BUCKETS_SECONDS.len() + 1],
    delay_sum_micros: AtomicU64,
    refused_timeout: AtomicU64,
    refused_full: AtomicU64,
}

struct State {
    free: usize,
    waiters: VecDeque<oneshot::Sender<()>>,
    /// CoDel: the current interval's start and shortest wait.
    interval_start: Instant,
    interval_min: Duration,
    overloaded: bool,
}

/// A request waiting for a slot. A slot `release` sends it is the
/// request's once sent; if the request is dropped before it takes it (its
/// client disconnected as the slot arrived), dropping this hands the slot
/// on, so no slot is ever lost (one lost per disconnect at the wrong
/// moment left the read queue with none after a flood: docs/benchmarks.md).
struct Waiting<'a> {
    admission: &'a Admission,
    receiver: oneshot::Receiver<()>,
    /// The slot was taken, or the wait given up.
    done: bool,
}

impl Waiting<'_> {
    /// Stops waiting: whether a slot had been sent. Under the lock, which
    /// `release` holds while it sends, the receiver is closed, so a slot
    /// is either seen here or never sent.
    fn give_up(&mut self) -> bool {
        if std::mem::replace(&mut self.done, true) {
            return false;
        }
        let _state = self.admission.lock();
        self.receiver.close();
        self.receiver.try_recv().is_ok()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.give_up() {
            self.admission.release();
        }
    }
}

/// A slot: released (handed to the next waiter) when dropped.
pub(crate) struct Slot<'a> {
    admission: &'a Admission,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.admission.release();
    }
}

impl Admission {
    pub fn new(mut settings: Settings) -> Admission {
        settings.limit = settings.limit.max(1);
        let free = settings.limit;
        Admission {
            state: Mutex::new(State {
                free,
                waiters: VecDeque::new(),
                interval_start: Instant::now(),
                interval_min: Duration::MAX,
                overloaded: false,
            }),
            settings,
            histogram: Default::default(),
            delay_sum_micros: AtomicU64::new(0),
            refused_timeout: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for a slot, as long as the queue's state allows.
    pub async fn acquire(&self) -> Result<Slot<'_>, Refusal> {
        let arrived = Instant::now();
        let (receiver, allowance) = {
            let mut state = self.lock();
            if state.free > 0 && state.waiters.is_empty() {
                state.free -= 1;
                self.observe(&mut state, Duration::ZERO, arrived);
                return Ok(Slot { admission: self });
            }
            if state.waiters.len() >= self.settings.queue_max {
                // Waiters that gave up stay queued until a release passes
                // them (with LIFO that can be long): sweep them first.
                state.waiters.retain(|waiter| !waiter.is_closed());
            }
            if state.waiters.len() >= self.settings.queue_max {
                drop(state);
                self.refused_full.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Full);
            }
            let (sender, receiver) = oneshot::channel();
            state.waiters.push_back(sender);
            let allowance = if state.overloaded { self.settings.target } else { self.settings.wait_max };
            (receiver, allowance)
        };
        // If this future is dropped while it waits (its client went away),
        // `Waiting` hands on a slot that was sent to it and never taken.
        let mut waiting = Waiting { admission: self, receiver, done: false };
        let admitted = match tokio::time::timeout(allowance, &mut waiting.receiver).await {
            Ok(Ok(())) => {
                waiting.done = true;
                true
            }
            // A slot sent as the wait ran out is still ours.
            _ => waiting.give_up(),
        };
        if !admitted {
            self.refused_timeout.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Timeout);
        }
        let now = Instant::now();
        self.observe(&mut self.lock(), now - arrived, now);
        Ok(Slot { admission: self })
    }

    /// `acquire`, as the request path uses it: a refusal is a 503 (nothing
    /// was sent to any database, so a write may simply be retried).
    pub async fn admit(&self, metrics: &Metrics) -> Result<Slot<'_>, ApiError> {
        self.acquire().await.map_err(|refusal| {
            metrics.count(Counter::Shed);
            ApiError::Busy(match refusal {
                Refusal::Timeout => "the server's database queue did not drain in time".into(),
                Refusal::Full => "the server's database queue is full".into(),
            })
        })
    }

    /// Hands the slot to the next live waiter (the oldest, or the newest
    /// when overloaded), or frees it.
    fn release(&self) {
        let mut state = self.lock();
        loop {
            let next = if state.overloaded { state.waiters.pop_back() } else { state.waiters.pop_front() };
            match next {
                Some(waiter) => {
                    if waiter.send(()).is_ok() {
                        return;
                    }
                    // That waiter gave up; try the next.
                }
                None => {
                    state.free += 1;
                    return;
                }
            }
        }
    }

    /// Records one admitted request's wait: the histogram, and CoDel's
    /// interval minimum, which decides the state at each interval's end.
    fn observe(&self, state: &mut State, waited: Duration, now: Instant) {
        let seconds = waited.as_secs_f64();
        let bucket = DELAY_BUCKETS_SECONDS.iter().position(|b| seconds <= *b).unwrap_or(DELAY_BUCKETS_SECONDS.len());
        self.histogram[bucket].fetch_add(1, Ordering::Relaxed);
        self.delay_sum_micros.fetch_add(u64::try_from(waited.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        state.interval_min = state.interval_min.min(waited);
        if now.saturating_duration_since(state.interval_start) >= self.settings.interval {
            let was = state.overloaded;
            state.overloaded = state.interval_min > self.settings.target;
            if state.overloaded != was {
                tracing::warn!(
                    overloaded = state.overloaded,
                    shortest_wait_ms = state.interval_min.as_millis() as u64,
                    "admission queue state changed"
                );
            }
            state.interval_start = now;
            state.interval_min = Duration::MAX;
        }
    }

    /// Whether the queue is standing (CoDel's state).
    pub fn overloaded(&self) -> bool {
        self.lock().overloaded
    }

    /// Saturated: the queue stands, or more than half the slots are taken.
    /// For the hedges: a slow read then is our own queueing, not a
    /// replica's fault.
    pub fn saturated(&self) -> bool {
        let state = self.lock();
        state.overloaded || self.settings.limit - state.free > self.settings.limit / 2
    }

    /// Slots in use and requests waiting now.
    pub fn occupancy(&self) -> (usize, usize) {
        let state = self.lock();
        (self.settings.limit - state.free, state.waiters.len())
    }

    pub fn limit(&self) -> usize {
        self.settings.limit
    }

    /// The delay histogram (each bound's own count, by upper bound; waits
    /// past the last bound count only in `count`), the sum of waits in
    /// seconds, and the refusals by reason.
    pub fn report(&self) -> AdmissionReport {
        let own = |i: usize| self.histogram[i].load(Ordering::Relaxed);
        AdmissionReport {
            buckets: DELAY_BUCKETS_SECONDS.iter().enumerate().map(|(i, bound)| (*bound, own(i))).collect(),
            count: (0..self.histogram.len()).map(own).sum(),
            sum_seconds: self.delay_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            refused_timeout: self.refused_timeout.load(Ordering::Relaxed),
            refused_full: self.refused_full.load(Ordering::Relaxed),
        }
    }
}

pub struct AdmissionReport {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
    pub refused_timeout: u64,
    pub refused_full: u64,
}

#[cfg(test)]
mod tests;
