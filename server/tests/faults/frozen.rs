//! Frozen nodes: a replica, both, the primary (alone and mid-batch), a
//! slow primary shrinking batches, the first host of a multi-host URL.

use super::*;

#[test]
fn reads_carry_on_when_a_replica_freezes() {
    let _serial = serial();
    let addr = spawn_server(config());
    let rate = 300;
    let step = during(
        Duration::from_secs(1),
        || {
            let _frozen = Frozen::node(local::replicas()[0]);
            std::thread::sleep(Duration::from_secs(4));
        },
        || load_for(addr, Target::Product, rate, 6),
    );
    let p99_ms = step.summary.p99_us as f64 / 1000.0;
    eprintln!("replica1 frozen 4 s at {rate} GET/s: {step}");
    assert_eq!(step.error_rate, 0.0, "no read failed: {step}\n{}", read_counters(addr));
    assert!(p99_ms < 150.0, "reads did not wait on the frozen replica: p99 {p99_ms} ms");
    assert!(metric(addr, "atelier_replica_ejections_total") >= 1.0, "the frozen replica was ejected");
    // Hedging stays within its budget (state.rs: a burst of 20, then 5% of
    // reads), however slow the frozen replica makes the reads look. The
    // probes and warm-up reads of readiness earn too: allow for 50 of them.
    let hedges = metric(addr, "atelier_read_hedges_total");
    let reads = metric(addr, "atelier_requests_total{route=\"/products/:id\",status=\"200\"}");
    let allowed = 20.0 + 0.05 * (reads + 50.0);
    assert!(hedges <= allowed, "{hedges} hedges for {reads} reads: over the budget of {allowed}");
    // Unfrozen, it answers a probe and comes back.
    let started = Instant::now();
    while metric(addr, "atelier_replica_in_rotation{replica=\"replica1\"}") != 1.0 {
        assert!(started.elapsed() < Duration::from_secs(10), "replica1 never came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_clean();
}

/// A frozen replica stops sending change notices without closing its
/// connection: the listener's heartbeat misses its deadline, the cache
/// forgets everything and keeps only the other replica's answers, reads
/// carry on, and once thawed the listener is back.
#[test]
fn a_frozen_replica_loses_its_listener_and_the_cache_forgets() {
    let _serial = serial();
    let mut config = config();
    config.cache.cache_bytes = atelier_server::Config::defaults(service_urls(FAULTS_DB)).cache.cache_bytes;
    config.cache.listener_timeout = Duration::from_millis(300);
    let addr = spawn_server(config);
    let up = "atelier_cache_listener_up{replica=\"replica1\"}";
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(15), "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("replica1's listener connects", &|| metric(addr, up) == 1.0);
    let forgets = metric(addr, "atelier_cache_forgets_total");
    {
        let _frozen = Frozen::node(local::replicas()[0]);
        wait_for("the frozen replica's listener is given up", &|| metric(addr, up) == 0.0);
        assert!(metric(addr, "atelier_cache_forgets_total") > forgets, "the cache forgot");
        let step = load_for(addr, Target::Product, 200, 2);
        assert_eq!(step.error_rate, 0.0, "no read failed: {step}\n{}", read_counters(addr));
        assert!(metric(addr, "atelier_cache_hits_total") > 0.0, "the cache served replica2's answers");
    }
    wait_for("the thawed replica's listener reconnects", &|| metric(addr, up) == 1.0);
    assert_clean();
}

#[test]
fn with_every_replica_frozen_reads_go_to_the_primary_or_fail_fast() {
    let _serial = serial();
    let fallback = spawn_server(config());
    let mut strict = config();
    strict.read.fallback_primary = false;
    let strict = spawn_server(strict);
    {
        let _one = Frozen::node(local::replicas()[0]);
        let _two = Frozen::node(local::replicas()[1]);
        for _ in 0..5 {
            let (answer, took) = timed(|| request_to(fallback, "GET", "/products/3", &[], None));
            assert_eq!(answer.status, 200, "{}", answer.text());
            assert_eq!(answer.header("x-served-by"), Some("primary"), "marked as the primary's copy");
            assert!(took < Duration::from_millis(500), "fallback took {took:?}");
            let (refused, took) = timed(|| request_to(strict, "GET", "/products/3", &[], None));
            assert_eq!(refused.status, 503, "{}", refused.text());
            assert_eq!(refused.header("retry-after"), Some("1"));
            assert!(took < Duration::from_millis(400), "503 took {took:?} (target 250 ms)");
        }
        assert!(metric(fallback, "atelier_read_fallbacks_total") >= 5.0);
    }
    assert_clean();
}

#[test]
fn a_frozen_primary_fails_writes_fast_and_loses_none() {
    let _serial = serial();
    let cluster = cluster();
    let addr = spawn_server(config());
    let sku = cluster.ids[0].sku_id;
    let ledger = |sql: &str| -> i64 {
        runtime().block_on(async { connect(&cluster.primary).await.unwrap().query_one(sql, &[]).await.unwrap().get(0) })
    };
    let marker = format!("fault {}", std::process::id());
    let movement = move |key: String, marker: String| {
        let body = format!("{{\"delta\":1,\"reason\":\"{marker}\"}}");
        let headers = [("Content-Type", "application/json"), ("Idempotency-Key", key.as_str())];
        timed(|| request_to(addr, "POST", &format!("/skus/{sku}/movements"), &headers, Some(body.as_bytes())))
    };
    let keys: Vec<String> = (0..12).map(|i| format!("{marker}-{i}")).collect();
    let answers: Vec<(String, u16)> = {
        let _frozen = Frozen::node(local::primary());
        let writers: Vec<_> = keys
            .iter()
            .map(|key| {
                let (key, marker) = (key.clone(), marker.clone());
                std::thread::spawn(move || (key.clone(), movement(key, marker)))
            })
            .collect();
        // Reads do not need the primary.
        let (read, _) = timed(|| request_to(addr, "GET", "/products/3/styles", &[], None));
        assert_eq!(read.status, 200, "reads carry on while the primary is stuck");
        // The bound itself, while the primary is still frozen: every write
        // has answered within the write deadline (a wait for a slot of at
        // most half of it, then the rest), plus slack for a loaded
        // machine. Without a deadline they would hang until the primary
        // thaws, which it only does after this check.
        let bound = Duration::from_millis(1_000 + 300);
        let waiting = Instant::now();
        while !writers.iter().all(|w| w.is_finished()) {
            assert!(waiting.elapsed() < bound, "writes still unanswered after {bound:?} with the primary frozen");
            std::thread::sleep(Duration::from_millis(10));
        }
        writers
            .into_iter()
            .map(|w| {
                let (key, (answer, took)) = w.join().unwrap();
                assert!(took < Duration::from_millis(1_300), "a write waited {took:?} (deadline 1 s)");
                if answer.status == 503 {
                    // Unavailable: either never sent (no connection could be
                    // opened) or sent with its outcome unknown (the message
                    // says to retry with the same key). Either way a retry
                    // with the same key applies it once.
                    assert_eq!(answer.header("retry-after"), Some("1"));
                    assert_eq!(answer.json()["error"], "unavailable");
                }
                (key, answer.status)
            })
            .collect()
    };
    assert!(answers.iter().any(|(_, status)| *status == 503), "the frozen primary turned writes away: {answers:?}");
    // What the client does with an unknown outcome: retry with the same key.
    for (key, status) in &answers {
        if *status != 201 {
            let (retry, _) = movement(key.clone(), marker.clone());
            assert_eq!(retry.status, 201, "retry of {key}: {}", retry.text());
        }
    }
    let applied = ledger(&format!("select count(*) from stock_movement where reason = '{marker}'"));
    assert_eq!(applied, keys.len() as i64, "every write applied exactly once");
    let off = ledger(&format!(
        "select count(*) from sku k where k.id = {sku} and k.quantity <> (select sum(delta) from stock_movement where sku_id = k.id)"
    ));
    assert_eq!(off, 0, "the quantity is the ledger's sum");
    assert_clean();
}

/// POST /skus/:sku/movements of one unit, with `reason` (letters, digits
/// and spaces: it goes into the JSON as it is); the status.
fn restock_one(addr: SocketAddr, sku: i64, reason: &str) -> u16 {
    let body = format!("{{\"delta\":1,\"reason\":\"{reason}\"}}");
    let path = format!("/skus/{sku}/movements");
    request_to(addr, "POST", &path, &[("Content-Type", "application/json")], Some(body.as_bytes())).status
}

/// The primary frozen while movements go through the batcher (forced into
/// batches: one lane that waits 50 ms to fill each): a batch in flight
/// when it froze is answered "outcome unknown" for each of its movements,
/// never 201, and no movement answered 201 is missing from the ledger once
/// it thaws.
#[test]
fn a_frozen_primary_mid_batch_loses_no_acknowledged_movement() {
    let _serial = serial();
    let cluster = cluster();
    let mut config = config();
    config.write.movement_batch_max = 200;
    config.write.movement_batch_lanes = 1;
    config.write.movement_batch_wait = Duration::from_micros(50_000);
    let addr = spawn_server(config);
    let skus: Vec<i64> = cluster.ids.iter().take(4).map(|i| i.sku_id).collect();
    let marker = format!("batched fault {}", std::process::id());
    let sender = |writer: usize| {
        let (skus, marker) = (skus.clone(), marker.clone());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            let until = Instant::now() + Duration::from_secs(4);
            let mut n = 0;
            while Instant::now() < until {
                let reason = format!("{marker} {writer}-{n}");
                let status = restock_one(addr, skus[(writer + n) % skus.len()], &reason);
                answers.push((reason, status));
                n += 1;
            }
            answers
        })
    };
    let writers: Vec<_> = (0..24).map(sender).collect();
    std::thread::sleep(Duration::from_millis(1_000));
    {
        let _frozen = Frozen::node(local::primary());
        std::thread::sleep(Duration::from_millis(1_500));
    }
    let answers: Vec<(String, u16)> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let acknowledged: Vec<&String> = answers.iter().filter(|(_, s)| *s == 201).map(|(r, _)| r).collect();
    assert!(answers.iter().all(|(_, s)| *s == 201 || *s == 503), "only 201 or 503: {answers:?}");
    assert!(!acknowledged.is_empty(), "movements went through before and after the freeze");
    assert!(answers.iter().any(|(_, s)| *s == 503), "the frozen primary turned movements away");
    // The marker is ours: digits, letters and spaces only.
    let stored: std::collections::HashSet<String> =
        query(&cluster.primary, &format!("select reason from stock_movement where reason like '{marker} %'"))
            .iter()
            .map(|r| r.get(0))
            .collect();
    let missing: Vec<&&String> = acknowledged.iter().filter(|r| !stored.contains(r.as_str())).collect();
    assert!(missing.is_empty(), "movements answered 201 and missing from the ledger: {missing:?}");
    let metric_batches = metric(addr, "atelier_movement_batches_total");
    let metric_batched = metric(addr, "atelier_movements_batched_total");
    assert!(metric_batched > metric_batches, "movements were batched ({metric_batched} in {metric_batches} batches)");
    let ids = skus.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let off: i64 = query(&cluster.primary, &format!(
        "select count(*) from sku k where k.id in ({ids}) and k.quantity <> (select sum(delta) from stock_movement where sku_id = k.id)"
    ))[0]
        .get(0);
    assert_eq!(off, 0, "each quantity is its ledger's sum");
    assert_clean();
}

/// Movements slowed on the primary (a trigger that sleeps 20 ms for each
/// of this test's ledger rows, so a batch of n takes n × 20 ms), forced
/// into batches (four lanes that wait 50 ms to fill one, up to 200): 60 at
/// once would be one batch of about 60, 1.2 s, past the 1 s write
/// deadline, and every one of them would fail. The batch limit
/// (write/batch_limit.rs) starts at 8 and falls to what fits the 100 ms
/// target, so every movement is answered 201 (each of a product of its
/// own, so the lanes' batches lock no row in common and run side by side:
/// their 1.2 s of sleeping fits the deadline, which covers a movement's
/// wait for its batch too); once the slowness is gone, fast batches bring
/// the limit back up.
#[test]
fn slow_batches_shrink_the_next_ones_so_none_misses_its_deadline() {
    let _serial = serial();
    let cluster = cluster();
    let mut config = config();
    config.write.movement_batch_max = 200;
    config.write.movement_batch_lanes = 4;
    config.write.movement_batch_wait = Duration::from_micros(50_000);
    config.write.movement_batch_target = Duration::from_millis(100);
    let addr = spawn_server(config);
    let marker = format!("slow batch {}", std::process::id());
    struct Slowed<'a>(&'a str);
    impl Drop for Slowed<'_> {
        fn drop(&mut self) {
            query(self.0, "drop trigger if exists slow_batch_test on stock_movement");
            query(self.0, "drop function if exists slow_batch_test()");
        }
    }
    let slowed = Slowed(&cluster.primary);
    query(
        &cluster.primary,
        "create function slow_batch_test() returns trigger language plpgsql as \
         $$ begin perform pg_sleep(0.02); return new; end $$",
    );
    query(
        &cluster.primary,
        &format!(
            "create trigger slow_batch_test before insert on stock_movement for each row \
             when (new.reason like '{marker} %') execute function slow_batch_test()"
        ),
    );
    let mut products = std::collections::HashSet::new();
    let skus: Vec<i64> =
        cluster.ids.iter().filter(|i| products.insert(i.product_id)).take(60).map(|i| i.sku_id).collect();
    assert_eq!(skus.len(), 60, "60 products among the test's ids");
    let burst = |tag: &str, n: usize| -> Vec<u16> {
        let start = Arc::new(std::sync::Barrier::new(n));
        let senders: Vec<_> = (0..n)
            .map(|i| {
                let (start, sku) = (start.clone(), skus[i % skus.len()]);
                let reason = format!("{marker} {tag} {i}");
                std::thread::spawn(move || {
                    start.wait();
                    restock_one(addr, sku, &reason)
                })
            })
            .collect();
        senders.into_iter().map(|s| s.join().unwrap()).collect()
    };
    let statuses = burst("slow", 60);
    let limit_slow = metric(addr, "atelier_movement_batch_limit");
    assert!(statuses.iter().all(|s| *s == 201), "every slowed movement answered 201: {statuses:?}");
    assert!(limit_slow <= 8.0, "slow batches kept the limit small: {limit_slow}");
    let stored: i64 =
        query(&cluster.primary, &format!("select count(*) from stock_movement where reason like '{marker} slow %'"))[0]
            .get(0);
    assert_eq!(stored, 60, "each movement answered 201 is in the ledger once");
    drop(slowed);
    for round in 0..6 {
        burst(&format!("fast{round}"), 40);
    }
    let limit_fast = metric(addr, "atelier_movement_batch_limit");
    assert!(limit_fast > limit_slow, "fast batches raised the limit again: {limit_slow} then {limit_fast}");
    let batches = metric(addr, "atelier_movement_batches_total");
    let batched = metric(addr, "atelier_movements_batched_total");
    assert!(batched > batches, "movements were batched ({batched} in {batches} batches)");
    assert_clean();
}

/// A multi-host primary URL (a Patroni pair's nodes) whose first host is
/// frozen still reaches the next. A frozen PostgreSQL completes TCP in its
/// kernel and then never answers, so each host must get the connect
/// timeout for its whole handshake (atelier_schema::connect); with only
/// tokio-postgres' connect_timeout (TCP alone) the pool and the tools
/// waited on the frozen host until their own timeouts and never tried the
/// node that takes writes.
#[test]
fn a_frozen_first_host_of_a_multi_host_url_is_passed_over() {
    let _serial = serial();
    let cluster = cluster();
    let (primary, replica1) = (local::primary(), local::replicas()[0]);
    let first_frozen = |url: &str| {
        let one = format!("host=127.0.0.1 port={}", primary.port);
        assert!(url.contains(&one), "{url}");
        url.replace(&one, &format!("host=127.0.0.1,127.0.0.1 port={},{}", replica1.port, primary.port))
            + " target_session_attrs=read-write"
    };
    let mut config = config();
    config.databases.primary_url = first_frozen(&config.databases.primary_url);
    config.pools.connect_timeout = Duration::from_millis(1_000);
    // A write may wait for a connection through the frozen host's timeout.
    config.write.deadline = Duration::from_millis(5_000);
    let _frozen = Frozen::node(replica1);
    let tool_url = first_frozen(&cluster.primary) + " connect_timeout=1";
    let port: i32 = runtime().block_on(async {
        let client = tokio::time::timeout(Duration::from_secs(20), connect(&tool_url))
            .await
            .expect("the tools' connection gave up on the frozen host")
            .expect("the tools reach the primary");
        client.query_one("select inet_server_port()", &[]).await.unwrap().get(0)
    });
    assert_eq!(port, i32::from(primary.port), "the tools reached the primary, the second host");
    let addr = spawn_server(config);
    let sku = cluster.ids[0].sku_id;
    let headers = [("Content-Type", "application/json"), ("Idempotency-Key", "frozen-first-host")];
    let write = request_to(addr, "POST", &format!("/skus/{sku}/movements"), &headers, Some(br#"{"delta":1}"#));
    assert_eq!(write.status, 201, "a write through the frozen first host: {}", write.text());
    let ready = request_to(addr, "GET", "/readyz", &[], None);
    assert_eq!(ready.json()["primary"]["node"], format!("127.0.0.1:{}", primary.port), "{}", ready.text());
    drop(_frozen);
    assert_clean();
}
