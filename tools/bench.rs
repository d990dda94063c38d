//! The macro benchmark runner (`cargo run --release --bin sunledger-bench`):
//! measures, in one run and on the same signatures, the ceiling (raw
//! ed25519-dalek batch verification on all cores) and sunledger's durable
//! import, full verify, reopen, HTTP submission and storage, and prints the
//! BENCHMARKS.md table with ratios to the ceiling. Medians of repeated runs.
//!
//! Usage: sunledger-bench [--events N] [--repeats R] [--skip-http]

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use serde_json::json;
use std::time::{Duration, Instant};
use sunledger::envelope::Envelope;
use sunledger::ledger::Ledger;

/// One office of the synthetic chain: id, level, parent, two finance keys.
struct Office {
    keys: [(String, SigningKey); 2],
}

fn key(seed: &str) -> SigningKey {
    SigningKey::from_bytes(&sunledger::encoding::sha256(seed.as_bytes()))
}

fn b64(bytes: &[u8]) -> String {
    sunledger::encoding::base64_encode(bytes)
}

fn signed(payload: serde_json::Value, keys: &[(String, SigningKey)]) -> String {
    Envelope::sign(payload.to_string().into_bytes(), keys).to_json()
}

fn event(id: String, kind: &str, office: &str, body: serde_json::Value) -> serde_json::Value {
    json!({"v": 1, "ledger": "bench", "id": id, "kind": kind, "office": office, "at": "2019-03-01", "body": body})
}

/// A chain of `events` envelopes: setup, then appropriations passed down
/// province → prefecture → county and spent by the county.
fn synthetic_chain(events: usize) -> Vec<String> {
    let root = ("root/k1".to_string(), key("root"));
    let log = key("log");
    let offices = [
        ("420000", "province", None, "420000"),
        ("422800", "prefecture", Some("420000"), "422800"),
        ("422822", "county", Some("422800"), "422822"),
    ];
    let offices: Vec<Office> = offices
        .iter()
        .map(|(id, _, _, _)| Office {
            keys: [(format!("{id}/k1"), key(&format!("{id}/k1"))), (format!("{id}/k2"), key(&format!("{id}/k2")))],
        })
        .collect();
    let mut lines = Vec::with_capacity(events + 8);
    let genesis = json!({"name": "bench", "root_keys": [{"key_id": "root/k1", "public_key": b64(root.1.verifying_key().as_bytes())}],
        "log_key": {"key_id": "log/k1", "public_key": b64(log.verifying_key().as_bytes())}, "currency": "CNY"});
    lines.push(signed(event("genesis".into(), "genesis", "root", genesis), std::slice::from_ref(&root)));
    for (i, (id, level, parent, region)) in [
        ("420000", "province", None, "420000"),
        ("422800", "prefecture", Some("420000"), "422800"),
        ("422822", "county", Some("422800"), "422822"),
    ]
    .iter()
    .enumerate()
    {
        let keys: Vec<serde_json::Value> = offices[i].keys.iter().map(|(kid, k)| json!({"key_id": kid, "public_key": b64(k.verifying_key().as_bytes()), "roles": ["admin", "finance"]})).collect();
        let body =
            json!({"office_id": id, "name": id, "level": level, "parent": parent, "region_code": region, "keys": keys});
        lines.push(signed(event(format!("o{i}"), "office_register", "root", body), std::slice::from_ref(&root)));
    }
    let program = json!({"program_id": "p", "name": "bench", "earmarked": false, "payee": "any", "period": "once"});
    lines.push(signed(event("prog".into(), "program_define", "root", program), std::slice::from_ref(&root)));
    let payloads: Vec<(serde_json::Value, usize)> = (0..events.saturating_sub(lines.len()))
        .map(|n| match n % 4 {
            0 => (event(format!("a{n}"), "appropriate", "420000", json!({"program": "p", "amount_fen": 10_000, "budget_ref": format!("预算〔2019〕{n}号"), "fiscal_year": 2019})), 0),
            1 => (event(format!("t{n}"), "transfer", "420000", json!({"to_office": "422800", "program": "p", "amount_fen": 10_000, "doc_ref": format!("拨〔2019〕{n}号")})), 0),
            2 => (event(format!("u{n}"), "transfer", "422800", json!({"to_office": "422822", "program": "p", "amount_fen": 10_000, "doc_ref": format!("拨〔2019〕{n}号")})), 1),
            _ => (event(format!("x{n}"), "expenditure", "422822", json!({"program": "p", "project_id": null, "payee_id": "91422822MA00000001",
                "payee_name": "某合作社", "category": "goods", "amount_fen": 10_000, "doc_ref": format!("建财〔2019〕{n}号")})), 2),
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = payloads.len().div_ceil(threads).max(1);
    let signed_lines: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = payloads
            .chunks(chunk)
            .map(|part| {
                let offices = &offices;
                scope.spawn(move || {
                    part.iter().map(|(p, o)| signed(p.clone(), &offices[*o].keys[..1])).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    lines.extend(signed_lines);
    lines
}

/// Signatures per `verify_batch` call for the ceiling.
const CEILING_BATCH_SIGNATURES: usize = 64;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// The ceiling: raw `verify_batch` over the chain's signatures, all cores.
fn ceiling(lines: &[String]) -> f64 {
    let items: Vec<(Vec<u8>, Signature, VerifyingKey)> = lines
        .iter()
        .map(|line| {
            let envelope = Envelope::parse(line.as_bytes()).unwrap();
            let keyid = &envelope.signatures[0].key_id;
            let seed = if keyid == "root/k1" { "root".to_string() } else { keyid.clone() };
            (envelope.pae(), Signature::from_bytes(&envelope.signatures[0].signature), key(&seed).verifying_key())
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for part in items.chunks(items.len().div_ceil(threads)) {
            scope.spawn(move || {
                for batch in part.chunks(CEILING_BATCH_SIGNATURES) {
                    let messages: Vec<&[u8]> = batch.iter().map(|i| i.0.as_slice()).collect();
                    let signatures: Vec<Signature> = batch.iter().map(|i| i.1).collect();
                    let keys: Vec<VerifyingKey> = batch.iter().map(|i| i.2).collect();
                    ed25519_dalek::verify_batch(&messages, &signatures, &keys).expect("valid signatures");
                }
            });
        }
    });
    items.len() as f64 / started.elapsed().as_secs_f64()
}

/// sunledger's verifier (`crypto::verify_many`: strict, all cores) over the
/// same signatures.
fn strict_rate(lines: &[String]) -> f64 {
    let envelopes: Vec<Envelope> = lines.iter().map(|l| Envelope::parse(l.as_bytes()).unwrap()).collect();
    let messages: Vec<Vec<u8>> = envelopes.iter().map(Envelope::pae).collect();
    let keys: Vec<VerifyingKey> = envelopes
        .iter()
        .map(|e| {
            let keyid = &e.signatures[0].key_id;
            key(if keyid == "root/k1" { "root" } else { keyid }).verifying_key()
        })
        .collect();
    let items: Vec<sunledger::crypto::VerifyItem<'_>> = (0..envelopes.len())
        .map(|i| sunledger::crypto::VerifyItem {
            public_key: &keys[i],
            message: &messages[i],
            signature: &envelopes[i].signatures[0].signature,
        })
        .collect();
    let started = Instant::now();
    assert!(sunledger::crypto::verify_many(&items).iter().all(|ok| *ok));
    items.len() as f64 / started.elapsed().as_secs_f64()
}

/// The `sunledger` binary built beside this one.
fn sunledger_binary() -> std::path::PathBuf {
    let here = std::env::current_exe().expect("the bench knows where it is");
    let binary = here.with_file_name("sunledger");
    assert!(binary.exists(), "build the CLI too: cargo build --release (missing {})", binary.display());
    binary
}

fn run_timed(args: &[&str]) -> Duration {
    let started = Instant::now();
    let output = std::process::Command::new(sunledger_binary()).args(args).output().expect("sunledger runs");
    assert!(output.status.success(), "sunledger {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    started.elapsed()
}

/// `sunledger import` into a new ledger: events/s and bytes on disk.
fn import(input: &std::path::Path, events: usize, dir: &std::path::Path) -> (f64, u64) {
    let data = dir.join("data");
    let elapsed = run_timed(&["import", "--data", data.to_str().unwrap(), input.to_str().unwrap()]);
    let disk = directory_bytes(&data);
    (events as f64 / elapsed.as_secs_f64(), disk)
}

fn directory_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let meta = e.metadata().unwrap();
                    if meta.is_dir() {
                        directory_bytes(&e.path())
                    } else {
                        meta.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// `sunledger verify EXPORT` of the whole chain: events/s.
fn verify(dir: &std::path::Path, events: usize) -> f64 {
    let export = dir.join("export.jsonl");
    run_timed(&["export", "--data", dir.join("data").to_str().unwrap(), "--out", export.to_str().unwrap()]);
    let elapsed = run_timed(&["verify", export.to_str().unwrap()]);
    events as f64 / elapsed.as_secs_f64()
}

/// Independent appropriations (no funds dependency between them), for
/// concurrent HTTP submission in any order.
fn appropriations(count: usize, tag: &str) -> Vec<String> {
    let signer = [("420000/k1".to_string(), key("420000/k1"))];
    let payloads: Vec<serde_json::Value> = (0..count)
        .map(|n| {
            let body =
                json!({"program": "p", "amount_fen": 100, "budget_ref": format!("{tag}{n}"), "fiscal_year": 2019});
            event(format!("{tag}{n}"), "appropriate", "420000", body)
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        let handles: Vec<_> = payloads
            .chunks(count.div_ceil(threads).max(1))
            .map(|part| {
                let signer = &signer;
                scope.spawn(move || part.iter().map(|p| signed(p.clone(), signer)).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// HTTP submission by `CLIENTS` concurrent clients against a server on
/// loopback over the ledger in `data`: batches (events/s), then single
/// events (events/s, p50 and p99 latency in ms).
fn http(data: &std::path::Path, batch_events: usize, single_events: usize) -> (f64, f64, f64, f64) {
    const CLIENTS: usize = 8;
    const BATCH: usize = 256;
    let batches = appropriations(batch_events, "hb");
    let singles = appropriations(single_events, "hs");
    let ledger = Ledger::open(data).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
            let serving = tokio::spawn(sunledger::server::serve_async(
                ledger,
                None,
                "127.0.0.1:0",
                Some(bound_tx),
                Some(stop_rx),
            ));
            ready_tx.send(bound_rx.await.unwrap()).unwrap();
            serving.await.unwrap().unwrap();
        });
    });
    let addr = ready_rx.recv().unwrap().to_string();
    let post = |body: &[u8]| {
        let response =
            sunledger::http_client::request(&addr, "POST", "/v1/events", &[("Content-Type", "application/json")], body)
                .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
    };
    let started = Instant::now();
    std::thread::scope(|scope| {
        for part in batches.chunks(batches.len().div_ceil(CLIENTS)) {
            scope.spawn(|| {
                for batch in part.chunks(BATCH) {
                    let envelopes: Vec<serde_json::Value> =
                        batch.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
                    post(json!({"envelopes": envelopes, "atomic": false}).to_string().as_bytes());
                }
            });
        }
    });
    let batch_rate = batches.len() as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut latencies: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = singles
            .chunks(singles.len().div_ceil(CLIENTS))
            .map(|part| {
                scope.spawn(|| {
                    part.iter()
                        .map(|line| {
                            let sent = Instant::now();
                            post(line.as_bytes());
                            sent.elapsed().as_secs_f64() * 1000.0
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let single_rate = singles.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    let _ = stop_tx.send(());
    server.join().unwrap();
    (batch_rate, single_rate, p50, p99)
}

fn reopen(dir: &std::path::Path) -> Duration {
    let started = Instant::now();
    let ledger = Ledger::open(dir).unwrap();
    let elapsed = started.elapsed();
    drop(ledger);
    elapsed
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let events = value("--events", 100_000);
    let repeats = value("--repeats", 3);
    eprintln!("signing {events} synthetic events…");
    let lines = synthetic_chain(events);
    let envelope_bytes: usize = lines.iter().map(String::len).sum::<usize>() / lines.len();
    let input_dir = tempfile::tempdir().unwrap();
    let input = input_dir.path().join("events.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let (mut ceilings, mut imports, mut verifies, mut reopens, mut disks) = (vec![], vec![], vec![], vec![], vec![]);
    let mut strict = vec![];
    let (mut http_batches, mut http_singles, mut p50s, mut p99s) = (vec![], vec![], vec![], vec![]);
    let skip_http = args.iter().any(|a| a == "--skip-http");
    for run in 0..repeats {
        eprintln!("run {}/{repeats}", run + 1);
        ceilings.push(ceiling(&lines));
        strict.push(strict_rate(&lines));
        let dir = tempfile::tempdir().unwrap();
        let (rate, disk) = import(&input, lines.len(), dir.path());
        imports.push(rate);
        disks.push(disk as f64 / lines.len() as f64);
        verifies.push(verify(dir.path(), lines.len()));
        reopens.push(reopen(&dir.path().join("data")).as_secs_f64() * 1000.0);
        if !skip_http {
            let (batch, single, p50, p99) = http(&dir.path().join("data"), events / 2, 4000.min(events / 4));
            http_batches.push(batch);
            http_singles.push(single);
            p50s.push(p50);
            p99s.push(p99);
        }
    }
    let ceiling = median(ceilings);
    let import = median(imports);
    let verify = median(verifies);
    println!("| figure | value | ceiling (same run) | ratio |");
    println!("|---|---|---|---|");
    println!("| raw batch verification, all cores | {ceiling:.0} sig/s | — | 1.00 |");
    let strict = median(strict);
    println!(
        "| strict verification (`crypto::verify_many`, what sunledger uses), all cores | {strict:.0} sig/s | {ceiling:.0} | {:.2} |",
        strict / ceiling
    );
    println!(
        "| durable import (`sunledger import`, new ledger) | {import:.0} events/s | {ceiling:.0} | {:.2} |",
        import / ceiling
    );
    println!(
        "| full verify (`sunledger verify EXPORT`) | {verify:.0} events/s | {ceiling:.0} | {:.2} |",
        verify / ceiling
    );
    if !skip_http {
        let batch = median(http_batches);
        println!("| HTTP batches of 256, 8 concurrent clients (acknowledged = durable) | {batch:.0} events/s | {ceiling:.0} | {:.2} |", batch / ceiling);
        println!(
            "| HTTP single events, 8 concurrent clients | {:.0} events/s, p50 {:.1} ms, p99 {:.1} ms | — | — |",
            median(http_singles),
            median(p50s),
            median(p99s)
        );
    }
    println!("| reopen ({} events) | {:.1} ms | — | — |", lines.len(), median(reopens));
    println!(
        "| bytes on disk per event (sled, after import) | {:.0} B (envelope {envelope_bytes} B, {:.2}×) | — | — |",
        median(disks.clone()),
        median(disks) / envelope_bytes as f64
    );
    println!();
    println!(
        "events: {}, repeats: {repeats}, cores: {}",
        lines.len(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
}
