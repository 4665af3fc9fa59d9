//! The admission queue's unit tests: many clients on few slots, CoDel's
//! refusal of a standing queue, a full queue, and a slot handed on by a
//! waiter dropped as it arrives.

use super::*;
use std::sync::Arc;

fn admission(limit: usize, target_ms: u64, wait_ms: u64, queue_max: usize) -> Arc<Admission> {
    Arc::new(Admission::new(Settings {
        limit,
        target: Duration::from_millis(target_ms),
        interval: Duration::from_millis(50),
        wait_max: Duration::from_millis(wait_ms),
        queue_max,
    }))
}

/// `clients` tasks, each taking a slot `rounds` times and holding it for
/// `hold`; returns (admitted, refused).
async fn drive(a: &Arc<Admission>, clients: usize, rounds: usize, hold: Duration) -> (usize, usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let a = a.clone();
        tasks.spawn(async move {
            let (mut ok, mut refused) = (0, 0);
            for _ in 0..rounds {
                match a.acquire().await {
                    Ok(slot) => {
                        tokio::time::sleep(hold).await;
                        drop(slot);
                        ok += 1;
                    }
                    Err(_) => refused += 1,
                }
            }
            (ok, refused)
        });
    }
    let mut totals = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (ok, refused) = done.unwrap();
        totals.0 += ok;
        totals.1 += refused;
    }
    totals
}

#[tokio::test]
async fn many_clients_on_few_slots_are_served_while_the_queue_drains_within_target() {
    // 40 clients, 4 slots held 1 ms: each waits about 10 ms, under the
    // 50 ms target.
    let a = admission(4, 50, 1_000, 1_000);
    let (ok, refused) = drive(&a, 40, 10, Duration::from_millis(1)).await;
    assert_eq!((ok, refused), (400, 0));
    assert!(!a.overloaded());
    assert_eq!(a.occupancy(), (0, 0), "every slot came back");
}

#[tokio::test]
async fn a_standing_queue_is_refused_fast_and_the_state_recovers() {
    // 40 clients, 2 slots held 20 ms: waits of 400 ms, far past the
    // 10 ms target; the queue turns overloaded and refuses.
    let a = admission(2, 10, 1_000, 1_000);
    let (ok, refused) = drive(&a, 40, 5, Duration::from_millis(20)).await;
    assert!(refused > 0, "a standing queue must refuse");
    assert!(ok > 0, "the admitted keep being served");
    let report = a.report();
    assert_eq!(report.refused_timeout as usize, refused);
    // Quiet again: the next intervals see no wait and the state clears.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        drop(a.acquire().await.expect("a slot when quiet"));
    }
    assert!(!a.overloaded(), "no metastable overload after the flood");
}

/// A waiter whose slot was sent to it, dropped before it took it (a
/// client that disconnected at that moment), loses no slot.
#[tokio::test]
async fn a_waiter_dropped_as_its_slot_arrives_hands_the_slot_on() {
    use futures_util::FutureExt;
    let a = admission(1, 1_000, 5_000, 10);
    let held = a.acquire().await.expect("a free slot");
    let mut waiter = Box::pin(a.acquire());
    assert!((&mut waiter).now_or_never().is_none(), "one slot, taken: the second waits");
    assert_eq!(a.occupancy(), (1, 1));
    drop(held); // sends the slot to the waiter, which is never polled again
    drop(waiter);
    assert_eq!(a.occupancy(), (0, 0), "the slot came back");
    let again = tokio::time::timeout(Duration::from_millis(100), a.acquire()).await;
    assert!(matches!(again, Ok(Ok(_))), "the next request gets the slot at once");
}

#[tokio::test]
async fn a_full_queue_refuses_at_once() {
    let a = admission(1, 10, 1_000, 2);
    let held = a.acquire().await.unwrap();
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.acquire().await.map(drop) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(a.occupancy(), (1, 2));
    assert_eq!(a.acquire().await.err(), Some(Refusal::Full));
    drop(held);
    for w in waiting {
        assert!(w.await.unwrap().is_ok(), "waiters are served in turn");
    }
    assert_eq!(a.report().refused_full, 1);
}
