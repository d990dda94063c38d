//! The HTTP API against a server on 127.0.0.1 (ephemeral port): every route,
//! every error code, batches, idempotency, concurrent submitters.

mod support;

use serde_json::json;
use support::http::{get, post, request, TestServer};
use support::*;

fn key_material(key_id: &str) -> sunledger::keys::KeyMaterial {
    let keys: Vec<serde_json::Value> = serde_json::from_str(&read_vector("keys.json")).unwrap();
    let key = keys.iter().find(|k| k["key_id"] == key_id).unwrap();
    sunledger::keys::parse(&key.to_string()).unwrap()
}

fn server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let server = TestServer::start(&data, Some(key_material("log/k1")));
    (dir, server)
}

fn payout(id: &str, amount: u64) -> String {
    let body = json!({"household_id": "422822101201-0001", "program": "ranger", "amount_fen": amount,
                      "period": "2019", "card_digest": "a".repeat(64)});
    sign(&payload(id, "payout", "422822", "2018-12-22", body), &["422822/k1"])
}

#[test]
fn health_and_metrics() {
    // Goal: /healthz answers 200 when ready; /metrics is Prometheus text with the counters.
    let (_dir, server) = server();
    let health = get(server.addr, "/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok", "{}", health.text());
    assert_eq!(health.json()["size"], 27, "{}", health.text());
    post(server.addr, "/v1/events", payout("m1", 100).as_bytes());
    post(server.addr, "/v1/events", b"garbage");
    let metrics = get(server.addr, "/metrics").text();
    assert!(metrics.contains("sunledger_events_appended_total 1"), "{metrics}");
    assert!(metrics.contains("sunledger_events_rejected_total{code=\"bad_envelope\"} 1"), "{metrics}");
    assert!(metrics.contains("sunledger_commit_seconds_count"), "{metrics}");
    assert!(metrics.contains("sunledger_ledger_size 28"), "{metrics}");
}

#[test]
fn single_event_and_idempotent_resubmission() {
    // Goal: POST one envelope → 200 {seq, hash}; the same bytes again → the same seq, nothing added.
    let (_dir, server) = server();
    let line = payout("p1", 1000);
    let first = post(server.addr, "/v1/events", line.as_bytes());
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["seq"], 27);
    let again = post(server.addr, "/v1/events", line.as_bytes());
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), first.json());
    let next = post(server.addr, "/v1/events", payout("p2", 1000).as_bytes());
    assert_eq!(next.json()["seq"], 28);
}

#[test]
fn every_error_code_over_http() {
    // Goal: each SPEC §4 code comes back as {"error": code, "message"} with a 4xx status; the ledger is unchanged.
    let (_dir, server) = server();
    let before = get(server.addr, "/v1/export").body.clone();
    let mut seen = std::collections::BTreeSet::new();
    for (code, line) in cases::rejection_cases() {
        let response = post(server.addr, "/v1/events", line.as_bytes());
        assert!((400..500).contains(&response.status), "{code}: {}", response.status);
        let body = response.json();
        assert_eq!(body["error"], code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        seen.insert(code);
    }
    assert_eq!(seen.len(), sunledger::error::Code::ALL.len());
    assert_eq!(get(server.addr, "/v1/export").body, before);
}

#[test]
fn batches_atomic_and_per_event() {
    // Goal: an atomic batch with one bad event adds nothing (4xx with its index); a per-event batch reports each.
    let (_dir, server) = server();
    let envelopes: Vec<serde_json::Value> = [payout("b1", 100_000), payout("b2", 100_000), payout("b3", 300_000)]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let atomic =
        post(server.addr, "/v1/events", json!({"envelopes": envelopes, "atomic": true}).to_string().as_bytes());
    assert_eq!(atomic.status, 409, "{}", atomic.text());
    assert_eq!(atomic.json()["error"], "insufficient_funds");
    assert_eq!(atomic.json()["index"], 2);
    assert_eq!(get(server.addr, "/v1/export").text().lines().count(), 27);
    let per_event =
        post(server.addr, "/v1/events", json!({"envelopes": envelopes, "atomic": false}).to_string().as_bytes());
    assert_eq!(per_event.status, 200);
    let results = per_event.json()["results"].clone();
    assert_eq!(results[0]["seq"], 27);
    assert_eq!(results[1]["seq"], 28);
    assert_eq!(results[2]["error"], "insufficient_funds");
    let too_many = json!({"envelopes": [], "atomic": true});
    assert_eq!(post(server.addr, "/v1/events", too_many.to_string().as_bytes()).status, 400);
}

#[test]
fn concurrent_submitters_never_overdraw() {
    // Goal: 8 clients racing to pay out of one account (4,000 yuan held) get exactly 4 payouts of 1,000 yuan through.
    let (_dir, server) = server();
    let addr = server.addr;
    let threads: Vec<_> = (0..8)
        .map(|client| {
            std::thread::spawn(move || {
                let mut accepted = 0;
                for n in 0..3 {
                    let response = post(addr, "/v1/events", payout(&format!("race-{client}-{n}"), 100_000).as_bytes());
                    match response.status {
                        200 => accepted += 1,
                        409 => assert_eq!(response.json()["error"], "insufficient_funds"),
                        other => panic!("unexpected {other}: {}", response.text()),
                    }
                }
                accepted
            })
        })
        .collect();
    let accepted: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(accepted, 4);
    let balances = get(addr, "/v1/balances").json();
    assert_eq!(balances["fund_accounts"]["422822/ranger"], 0);
}

#[test]
fn records_events_export_and_proofs() {
    // Goal: records by seq and by event id, the export stream, inclusion/consistency proofs, 404/400 where due.
    let (_dir, server) = server();
    let chain = vector_lines("chain.jsonl");
    let record = get(server.addr, "/v1/records/5").json();
    assert_eq!(record["seq"], 5);
    let expected: serde_json::Value = serde_json::from_str(&chain[5]).unwrap();
    assert_eq!(record["envelope"], expected["envelope"]);
    let by_id = get(server.addr, "/v1/events/e000016").json();
    assert_eq!(by_id["seq"], 15);
    assert_eq!(get(server.addr, "/v1/records/99").status, 404);
    assert_eq!(get(server.addr, "/v1/events/nope").status, 404);
    let export = get(server.addr, "/v1/export?from=20&to=25").text();
    assert_eq!(export.lines().count(), 5);
    let full = get(server.addr, "/v1/export").text();
    assert_eq!(full.lines().count(), 27);
    let inclusion = get(server.addr, "/v1/proofs/inclusion?seq=3&size=7").json();
    assert_eq!(inclusion["proof"].as_array().unwrap().len(), 3);
    let consistency = get(server.addr, "/v1/proofs/consistency?from=3&to=7").json();
    assert_eq!(consistency["proof"].as_array().unwrap().len(), 4);
    assert_eq!(get(server.addr, "/v1/proofs/inclusion?seq=30").status, 400);
    assert_eq!(get(server.addr, "/v1/proofs/inclusion").status, 400);
}

#[test]
fn checkpoints_and_signed_requests() {
    // Goal: POST /v1/checkpoint needs a signed request; then GET /v1/checkpoint returns the note, which verifies.
    // (The server also issues one at start and then every CHECKPOINT_INTERVAL, so no 404 check here.)
    let (dir, server) = server();
    let unsigned = request(server.addr, "POST", "/v1/checkpoint", &[], b"");
    assert_eq!(unsigned.status, 401);
    assert_eq!(unsigned.json()["error"], "unauthorized");
    let key = &keys()["422822-aud/k1"];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let auth = sunledger::server::auth::authorization("422822-aud/k1", key, "POST", "/v1/checkpoint", now);
    let issued = request(server.addr, "POST", "/v1/checkpoint", &[("Authorization", &auth)], b"");
    assert_eq!(issued.status, 200, "{}", issued.text());
    let stale = sunledger::server::auth::authorization("422822-aud/k1", key, "POST", "/v1/checkpoint", now - 3_600_000);
    assert_eq!(request(server.addr, "POST", "/v1/checkpoint", &[("Authorization", &stale)], b"").status, 401);
    let note = get(server.addr, "/v1/checkpoint");
    assert_eq!(note.status, 200);
    assert_eq!(note.text(), issued.text());
    let path = dir.path().join("cp.txt");
    std::fs::write(&path, note.text()).unwrap();
    let export = dir.path().join("export.jsonl");
    std::fs::write(&export, &get(server.addr, "/v1/export").body).unwrap();
    let verified = run(&["verify", export.to_str().unwrap(), "--checkpoint", path.to_str().unwrap()]);
    assert!(verified.status.success(), "{}", stdout(&verified));
}

#[test]
fn offices_accounts_balances() {
    // Goal: the public fund views answer with the ledger's figures.
    let (_dir, server) = server();
    let balances = get(server.addr, "/v1/balances").json();
    let want: serde_json::Value = serde_json::from_str(&read_vector("balances.json")).unwrap();
    assert_eq!(balances, want);
    let offices = get(server.addr, "/v1/offices").json();
    assert_eq!(offices["offices"].as_array().unwrap().len(), 6);
    let account = get(server.addr, "/v1/accounts/420000/ranger").json();
    assert_eq!(account["balance_fen"], 98_000_000);
    assert_eq!(get(server.addr, "/v1/accounts/420000/none").status, 404);
}

#[test]
fn oversized_and_malformed_bodies() {
    // Goal: bodies beyond the limit get 413; non-JSON gets bad_envelope; nothing changes.
    let (_dir, server) = server();
    let huge = vec![b'x'; sunledger::server::REQUEST_BODY_BYTES_MAX + 1];
    assert_eq!(post(server.addr, "/v1/events", &huge).status, 413);
    let response = post(server.addr, "/v1/events", &[0xff, 0xfe, 0x00]);
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"], "bad_envelope");
    assert_eq!(get(server.addr, "/v1/export").text().lines().count(), 27);
}

#[test]
fn every_route_is_documented_in_openapi() {
    // Goal: schemas/openapi.json lists exactly the router's routes.
    let text =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json")).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    // One documented special case: the router's `/notice/{file}` serves two documented paths.
    let documented_as = |path: &str| -> Vec<String> {
        match sunledger::server::DOCUMENTED_AS.iter().find(|(routed, _)| *routed == path) {
            Some((_, paths)) => paths.iter().map(|p| p.to_string()).collect(),
            None => vec![path.to_string()],
        }
    };
    let routed: std::collections::BTreeSet<(String, String)> = sunledger::server::ROUTES
        .iter()
        .flat_map(|(m, p)| documented_as(p).into_iter().map(move |p| (m.to_string(), p)))
        .collect();
    assert_eq!(documented, routed);
}

/// A GET signed by the county auditor's key.
fn signed_get(server: &TestServer, path: &str) -> support::http::Response {
    let key = &keys()["422822-aud/k1"];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let auth = sunledger::server::auth::authorization("422822-aud/k1", key, "GET", path, now);
    request(server.addr, "GET", path, &[("Authorization", &auth)], b"")
}

#[test]
fn flags_follow_new_events() {
    // Goal: the server's per-size flag cache never serves flags of an older ledger: a payout with no
    // roster notice raises paid_before_notice on /v1/flags and on the household at once.
    let (_dir, server) = server();
    let unnoticed = |server: &TestServer| {
        let flags = signed_get(server, "/v1/flags?rule=paid_before_notice");
        assert_eq!(flags.status, 200, "{}", flags.text());
        flags.json()["count"].as_u64().unwrap()
    };
    let household_flags = |server: &TestServer| {
        let view = signed_get(server, "/v1/households/422822101201-0001");
        assert_eq!(view.status, 200, "{}", view.text());
        view.json()["flags"].as_array().map_or(0, Vec::len)
    };
    let before = (unnoticed(&server), household_flags(&server));
    assert_eq!(post(server.addr, "/v1/events", payout("fc1", 100).as_bytes()).status, 200);
    assert_eq!(unnoticed(&server), before.0 + 1, "the new flag is served");
    assert_eq!(household_flags(&server), before.1 + 1, "and shown with its household");
}

#[test]
fn flags_of_a_ledger_slow_to_evaluate_come_from_the_background_with_their_size() {
    // Goal (issue 6): when evaluating the rules takes longer than the cache's limit (every evaluation,
    // with a limit of zero), a read after new events is not held up: it gets the last flags, says
    // which ledger size they are as of (/v1/flags, the household, the audit page's note), and a
    // background evaluation brings them to the new size, new flag included.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    // Without the snapshot the open replays the chain, so nothing is left for the warm-up (whose end
    // starts an evaluation of its own) and the sizes below are the test's alone.
    std::fs::remove_file(data.join(sunledger::store::SNAPSHOT_FILE)).unwrap();
    let server = TestServer::start_with(
        &data,
        Some(key_material("log/k1")),
        sunledger::server::flags::FlagCache::with_sync_max(std::time::Duration::ZERO),
    );
    let flags = |server: &TestServer| {
        let response = signed_get(server, "/v1/flags?rule=paid_before_notice");
        assert_eq!(response.status, 200, "{}", response.text());
        let json = response.json();
        (json["size"].as_u64().unwrap(), json["flags_as_of_size"].as_u64().unwrap(), json["count"].as_u64().unwrap())
    };
    let (size, as_of, before) = flags(&server);
    assert_eq!(as_of, size, "the first evaluation is done in the read");
    assert_eq!(post(server.addr, "/v1/events", payout("bg1", 100).as_bytes()).status, 200);
    let audit = get(server.addr, "/audit").text();
    assert!(audit.contains(&format!("疑点按账本前 {size} 条记录核查（账本现有 {} 条）", size + 1)), "{audit}");
    let view = signed_get(&server, "/v1/households/422822101201-0001").json();
    let view_as_of = view["flags_as_of_size"].as_u64();
    assert!(view_as_of == Some(size) || view_as_of == Some(size + 1), "{view_as_of:?}: the old size or the new");
    let started = std::time::Instant::now();
    loop {
        let (now, as_of, count) = flags(&server);
        assert_eq!(now, size + 1);
        if as_of == now {
            assert_eq!(count, before + 1, "the background evaluation has the new flag");
            break;
        }
        assert_eq!((as_of, count), (size, before), "stale flags are the old size's, whole");
        assert!(started.elapsed().as_secs() < 30, "no background evaluation");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let view = signed_get(&server, "/v1/households/422822101201-0001").json();
    assert_eq!(view["flags_as_of_size"].as_u64(), Some(size + 1));
    assert!(!get(server.addr, "/audit").text().contains("疑点按账本前"), "no note once the flags are current");
}

#[test]
fn a_read_finding_no_flags_does_not_wait_for_an_evaluation_queued_behind_the_writer() {
    // Goal (session 9 review): a read that holds the read lock and finds no flags yet, while the
    // writer is queued for the write lock and the start-up evaluation is queued behind the writer,
    // evaluates itself. Waiting for that evaluation (as the first version did) never ends: it waits
    // for the writer, which waits for this read.
    use std::sync::{mpsc, Arc, RwLock};
    use std::time::Duration;
    use sunledger::server::flags::FlagCache;
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let shared = Arc::new(RwLock::new(sunledger::ledger::Ledger::open(&data).unwrap()));
    let size = shared.read().unwrap().head().size;
    let cache = Arc::new(FlagCache::with_sync_max(Duration::ZERO));
    let (held_tx, held_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let reader = {
        let (shared, cache) = (Arc::clone(&shared), Arc::clone(&cache));
        std::thread::spawn(move || {
            let guard = shared.read().unwrap();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            done_tx.send(cache.flags(&shared, &guard).size).unwrap();
        })
    };
    held_rx.recv().unwrap();
    let writer = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || drop(shared.write().unwrap()))
    };
    std::thread::sleep(Duration::from_millis(200)); // the writer queues behind the read
    cache.start_refresh(&shared);
    std::thread::sleep(Duration::from_millis(200)); // the evaluation queues behind the writer
    assert!(cache.refreshing(), "the background evaluation is waiting for the lock");
    go_tx.send(()).unwrap();
    let answered = done_rx.recv_timeout(Duration::from_secs(30)).expect("the read waited for the queued evaluation");
    assert_eq!(answered, size, "the read's own evaluation, of its size");
    reader.join().unwrap();
    writer.join().unwrap();
    let started = std::time::Instant::now();
    while cache.refreshing() {
        assert!(started.elapsed() < Duration::from_secs(30), "the background evaluation never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn start_up_warm_up_decodes_what_the_reopen_left_encoded() {
    // Goal (issue 6): a server opened from a snapshot leaves households encoded until first used
    // (fast reopen); its background warm-up decodes them all without any request, which the
    // sunledger_households_undecoded gauge shows going to 0.
    let (_dir, server) = server();
    let started = std::time::Instant::now();
    loop {
        let metrics = get(server.addr, "/metrics").text();
        assert!(metrics.contains("# TYPE sunledger_households_undecoded gauge"), "{metrics}");
        if metrics.lines().any(|l| l == "sunledger_households_undecoded 0") {
            break;
        }
        assert!(started.elapsed().as_secs() < 30, "the warm-up did not finish: {metrics}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
