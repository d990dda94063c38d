//! Crash campaign (RELIABILITY.md): kills the real `sunledger` binary with
//! SIGKILL at random moments and checks, after every restart, that nothing
//! acknowledged was lost and nothing unacknowledged is half-present.
//!
//! Two campaigns, each `--cycles` long:
//!
//! * **server**: `sunledger serve` on a ledger holding the 27 vector events;
//!   `--clients` threads submit new events signed with the vector keys
//!   (single `POST /v1/events` and batches, per-event and atomic) and record
//!   every answer: acknowledged (200 with seq and hash), rejected (4xx with a
//!   code) or unknown (the connection died). The server is killed while they
//!   run (or while it starts, or during a graceful shutdown). With the server
//!   down: `sunledger verify --data` and `sunledger rebuild --data` must exit
//!   0, and the export must hold every acknowledged event at its seq with its
//!   hash, no rejected event and nothing never submitted. Clients resubmit
//!   the unknown ones after the restart (same bytes: the idempotency key).
//! * **import**: `sunledger import` of a generated county-year is killed at
//!   random points; the store must be a byte-identical prefix of the input
//!   that never shrinks, verify and rebuild must pass, and the next import
//!   resumes; a finished import starts a fresh ledger.
//!
//! Every loop is bounded in count and time; the network is 127.0.0.1 only.
//! Exit status 0 when every check of every cycle passed, 1 otherwise.

use clap::Parser;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sunledger::envelope::Envelope;

/// How long a restarted server may take to answer /healthz.
const RECOVERY_MS_MAX: u64 = 60_000;
/// Allowance for an import's start (process, store open) when timing a kill.
const IMPORT_START_MICROS: u64 = 150_000;
/// Requests one client sends in one cycle at most.
const REQUESTS_PER_CYCLE_MAX: usize = 5_000;
/// Envelopes in one batch request at most (the campaign's own bound).
const BATCH_EVENTS_MAX: usize = 8;
/// The ledger clock of the vector ledger: new events carry this date.
const BUSINESS_DATE: &str = "2018-12-22";
/// Vector household paid when a client has not registered one yet.
const VECTOR_HOUSEHOLD: (&str, &str) =
    ("422822101201-0001", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");

#[derive(Parser, Clone)]
#[command(
    name = "sunledger-crash-campaign",
    about = "Kill sunledger serve and import at random moments; check recovery."
)]
struct Options {
    /// Kill/restart cycles of the server campaign.
    #[arg(long, default_value_t = 100)]
    cycles: usize,
    /// Kill/restart cycles of the import campaign (default: --cycles).
    #[arg(long)]
    import_cycles: Option<usize>,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seed of the kill schedule and of the batch shapes.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Longest client run before a kill, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    kill_ms_max: u64,
    /// The sunledger binary (default: the one beside this executable).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// The known-answer vectors (default: ../shared/vectors of the checkout).
    #[arg(long)]
    vectors: Option<PathBuf>,
    /// Villages of the generated county-year the import campaign imports.
    #[arg(long, default_value_t = 40)]
    import_villages: usize,
    /// Households per village of that county-year.
    #[arg(long, default_value_t = 80)]
    import_households: usize,
    /// Stop starting new cycles after this many seconds (the run fails if cycles are missing).
    #[arg(long, default_value_t = 3600)]
    time_limit_secs: u64,
    /// Run only one campaign: server or import.
    #[arg(long)]
    only: Option<String>,
}

/// A small deterministic generator (SplitMix64): the schedule is reproducible from --seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

// The same allocator as the `sunledger` binary (see src/main.rs), so the
// in-process server measures what `sunledger serve` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let options = Options::parse();
    let bin = options
        .bin
        .clone()
        .unwrap_or_else(|| std::env::current_exe().expect("own path").parent().expect("a directory").join("sunledger"));
    let vectors =
        options.vectors.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"));
    if !bin.exists() {
        eprintln!("error: no sunledger binary at {} (cargo build --release, or --bin)", bin.display());
        std::process::exit(2);
    }
    let deadline = Instant::now() + Duration::from_secs(options.time_limit_secs);
    let mut failures = Vec::new();
    let run_server = options.only.as_deref() != Some("import");
    let run_import = options.only.as_deref() != Some("server");
    println!("sunledger crash campaign: bin {}, seed {}", bin.display(), options.seed);
    if run_server {
        let report = server_campaign(&options, &bin, &vectors, deadline);
        report.print();
        failures.extend(report.failures.iter().cloned());
    }
    if run_import {
        let report = import_campaign(&options, &bin, deadline);
        report.print();
        failures.extend(report.failures.iter().cloned());
    }
    if failures.is_empty() {
        println!("RESULT: pass");
    } else {
        println!("RESULT: FAIL ({} problems)", failures.len());
        for failure in failures.iter().take(50) {
            println!("  {failure}");
        }
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

fn run_bin(bin: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin).args(args).output().expect("the sunledger binary runs")
}

/// `verify --data` and `rebuild --data` on a stopped ledger; returns problems.
fn verify_and_rebuild(bin: &Path, data: &Path) -> Result<u64, String> {
    let data_arg = data.to_str().expect("UTF-8 path");
    let verified = run_bin(bin, &["verify", "--data", data_arg, "--json"]);
    let text = String::from_utf8_lossy(&verified.stdout).into_owned();
    if !verified.status.success() {
        return Err(format!("verify --data failed: {} {}", text.trim(), String::from_utf8_lossy(&verified.stderr)));
    }
    let records = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["records"].as_u64()).unwrap_or(0);
    let rebuilt = run_bin(bin, &["rebuild", "--data", data_arg]);
    if !rebuilt.status.success() {
        return Err(format!(
            "rebuild --data failed: {} {}",
            String::from_utf8_lossy(&rebuilt.stdout).trim(),
            String::from_utf8_lossy(&rebuilt.stderr)
        ));
    }
    Ok(records)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median_and_max(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    (sorted[sorted.len() / 2], sorted[sorted.len() - 1])
}

/// Bytes of every file under `directory` (the store's footprint on disk).
fn directory_bytes(directory: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(directory) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One progress line on stderr every tenth cycle.
fn progress(name: &str, cycle: usize, report: &Report, data: &Path) {
    if cycle % 10 == 9 {
        eprintln!(
            "[{name}] cycle {}: {} problems, store {:.1} MB on disk",
            cycle + 1,
            report.failures.len(),
            directory_bytes(data) as f64 / 1e6
        );
    }
}

fn wait_until_exit(child: &mut Child) {
    let _ = child.wait();
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("bound").port()
}

// ---------------------------------------------------------------------------
// Server campaign
// ---------------------------------------------------------------------------

/// What a client knows about one event it submitted.
#[derive(Clone, Debug, PartialEq)]
enum Known {
    /// 200 with this seq and entry hash.
    Acknowledged { seq: u64, hash: String },
    /// 4xx with this code: it must not be in the ledger.
    Rejected(String),
    /// No answer (the server died) or 503: may or may not be there.
    Unknown,
}

/// One event a client made: its id, envelope line and latest knowledge.
#[derive(Clone)]
struct Submitted {
    line: String,
    known: Known,
}

/// Everything the clients submitted, by event id (shared by the client threads).
#[derive(Default)]
struct Book {
    events: HashMap<String, Submitted>,
    /// Idempotent repeats of acknowledged events that came back with another seq or hash.
    repeat_mismatches: Vec<String>,
    requests: u64,
    batches: u64,
    repeats_checked: u64,
}

impl Book {
    fn learn(&mut self, id: &str, known: Known) {
        let Some(entry) = self.events.get_mut(id) else { return };
        match (&entry.known, &known) {
            // An acknowledgement is final; a later idempotent answer must agree.
            (Known::Acknowledged { seq, hash }, Known::Acknowledged { seq: s, hash: h }) if (seq, hash) != (s, h) => {
                self.repeat_mismatches.push(format!("{id}: acknowledged at {seq} {hash}, then {s} {h}"))
            }
            (Known::Acknowledged { .. }, _) => {}
            _ => entry.known = known,
        }
    }
}

struct Signer {
    keys: BTreeMap<String, SigningKey>,
}

impl Signer {
    fn envelope(&self, id: &str, kind: &str, office: &str, body: Value, key_id: &str) -> String {
        let payload = json!({"v": 1, "ledger": "hb-demo-2018", "id": id, "kind": kind, "office": office,
                             "at": BUSINESS_DATE, "body": body})
        .to_string();
        let key = self.keys.get(key_id).unwrap_or_else(|| panic!("no vector key {key_id}")).clone();
        Envelope::sign(payload.into_bytes(), &[(key_id.to_string(), key)]).to_json()
    }
}

fn digest(text: &str) -> String {
    sunledger::encoding::hex(&sunledger::encoding::sha256(text.as_bytes()))
}

/// A client's own event stream: every kind it makes is valid on the vector
/// ledger in any interleaving with the other clients (ids are the client's
/// own); only funds can run short, and that is a clean rejection.
struct ClientStream {
    client: usize,
    next: u64,
    /// The latest household this client registered and saw acknowledged.
    household: Option<(String, String)>,
}

impl ClientStream {
    fn make(&mut self, signer: &Signer) -> (String, String) {
        let n = self.next;
        self.next += 1;
        let id = format!("crash-c{}-{n}", self.client);
        let line = match n % 5 {
            0 => signer.envelope(
                &id,
                "appropriate",
                "420000",
                json!({"program": "ranger", "amount_fen": 1000 + n, "budget_ref": format!("b-{id}"), "fiscal_year": 2018}),
                if n % 2 == 0 { "420000/k1" } else { "420000/k3" },
            ),
            1 => signer.envelope(
                &id,
                "transfer",
                "420000",
                json!({"to_office": "422800", "program": "ranger", "amount_fen": 300, "doc_ref": format!("d-{id}")}),
                "420000/k1",
            ),
            2 => signer.envelope(
                &id,
                "transfer",
                "422800",
                json!({"to_office": "422822", "program": "ranger", "amount_fen": 200, "doc_ref": format!("d-{id}")}),
                "422800/k1",
            ),
            3 => {
                let household = format!("422822101201-{}-{n}", self.client);
                let card = digest(&format!("card {household}"));
                signer.envelope(
                    &id,
                    "household_register",
                    "422822-fpb",
                    json!({"household_id": household, "village": "422822101201", "head_name_masked": "李*",
                           "members": [{"person_digest": digest(&format!("person {household}")), "name_masked": "李*"}],
                           "card": {"card_digest": card, "card_masked": "6228********0001", "bank": "b"}}),
                    "422822-fpb/k1",
                )
            }
            _ => {
                let (household, card) = self
                    .household
                    .clone()
                    .unwrap_or_else(|| (VECTOR_HOUSEHOLD.0.to_string(), VECTOR_HOUSEHOLD.1.to_string()));
                signer.envelope(
                    &id,
                    "payout",
                    "422822",
                    json!({"household_id": household, "program": "ranger", "amount_fen": 100, "period": "2019",
                           "card_digest": card}),
                    "422822/k1",
                )
            }
        };
        (id, line)
    }
}

/// Reads the outcome object of one event (a single answer or a batch result).
fn known_of(value: &Value) -> Known {
    match (value["seq"].as_u64(), value["hash"].as_str(), value["error"].as_str()) {
        (Some(seq), Some(hash), _) => Known::Acknowledged { seq, hash: hash.to_string() },
        (_, _, Some(code)) => Known::Rejected(code.to_string()),
        _ => Known::Unknown,
    }
}

/// Posts envelopes (one, or a batch) and records what came back.
fn submit(addr: &str, book: &Mutex<Book>, items: &[(String, String)], atomic: bool) -> bool {
    let body = if items.len() == 1 {
        items[0].1.clone()
    } else {
        let envelopes: Vec<Value> = items.iter().map(|(_, l)| serde_json::from_str(l).expect("own JSON")).collect();
        json!({"envelopes": envelopes, "atomic": atomic}).to_string()
    };
    let response = sunledger::http_client::request(
        addr,
        "POST",
        "/v1/events",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    let mut book = book.lock().expect("book lock");
    book.requests += 1;
    if items.len() > 1 {
        book.batches += 1;
    }
    let Ok(response) = response else {
        return false; // the connection died: every outcome stays unknown
    };
    let value: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    match response.status {
        200 if items.len() == 1 => book.learn(&items[0].0, known_of(&value)),
        200 => {
            let results = value["results"].as_array().cloned().unwrap_or_default();
            for ((id, _), result) in items.iter().zip(results.iter()) {
                book.learn(id, known_of(result));
            }
        }
        400..=499 if items.len() == 1 || atomic => {
            let code = value["error"].as_str().unwrap_or("?").to_string();
            for (id, _) in items {
                book.learn(id, Known::Rejected(code.clone()));
            }
        }
        _ => {} // 503 storage_error/busy, or anything else: unknown
    }
    true
}

struct ClientState {
    stream: ClientStream,
    /// Events of this client whose outcome is unknown, to resubmit.
    unknown: Vec<String>,
    random: Random,
}

/// One client's run in one cycle: resubmit unknowns, then new events until
/// the server stops answering or `stop` is set.
fn client_cycle(addr: &str, book: &Mutex<Book>, signer: &Signer, state: &mut ClientState, stop: &AtomicBool) {
    let mut alive = true;
    let unknown = std::mem::take(&mut state.unknown);
    for id in unknown {
        let line = book.lock().expect("book lock").events[&id].line.clone();
        if alive && !stop.load(Ordering::Relaxed) {
            alive = submit(addr, book, &[(id.clone(), line)], false);
        }
        if book.lock().expect("book lock").events[&id].known == Known::Unknown {
            state.unknown.push(id);
        }
    }
    let mut requests = 0;
    while alive && !stop.load(Ordering::Relaxed) && requests < REQUESTS_PER_CYCLE_MAX {
        requests += 1;
        let shape = state.random.below(100);
        if shape < 5 {
            // An idempotent repeat of an acknowledged event of this client.
            let mut book_guard = book.lock().expect("book lock");
            let prefix = format!("crash-c{}-", state.stream.client);
            let candidate = (0..state.stream.next).rev().take(50).find_map(|n| {
                let id = format!("{prefix}{n}");
                book_guard
                    .events
                    .get(&id)
                    .filter(|e| matches!(e.known, Known::Acknowledged { .. }))
                    .map(|e| (id, e.line.clone()))
            });
            book_guard.repeats_checked += u64::from(candidate.is_some());
            drop(book_guard);
            if let Some(item) = candidate {
                alive = submit(addr, book, &[item], false);
            }
            continue;
        }
        let count = if shape < 65 { 1 } else { 2 + state.random.below(BATCH_EVENTS_MAX as u64 - 1) as usize };
        let atomic = shape >= 90;
        let items: Vec<(String, String)> = (0..count).map(|_| state.stream.make(signer)).collect();
        {
            let mut book = book.lock().expect("book lock");
            for (id, line) in &items {
                book.events.insert(id.clone(), Submitted { line: line.clone(), known: Known::Unknown });
            }
        }
        alive = submit(addr, book, &items, atomic);
        let book = book.lock().expect("book lock");
        for (id, line) in &items {
            match &book.events[id].known {
                Known::Unknown => state.unknown.push(id.clone()),
                Known::Acknowledged { .. } => {
                    if let Some(household) = household_of(line) {
                        state.stream.household = Some(household);
                    }
                }
                Known::Rejected(_) => {}
            }
        }
    }
}

/// (household id, card digest) of a household_register envelope line.
fn household_of(line: &str) -> Option<(String, String)> {
    let envelope = Envelope::parse(line.as_bytes()).ok()?;
    let payload: Value = serde_json::from_slice(&envelope.payload).ok()?;
    if payload["kind"] != "household_register" {
        return None;
    }
    let body = &payload["body"];
    Some((body["household_id"].as_str()?.to_string(), body["card"]["card_digest"].as_str()?.to_string()))
}

/// A running `sunledger serve`.
struct Server {
    child: Child,
    addr: String,
}

fn start_server(bin: &Path, data: &Path, log_key: &Path) -> Server {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(bin)
        .args(["serve", "--data", data.to_str().expect("UTF-8"), "--log-key"])
        .arg(log_key)
        .args(["--addr", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sunledger serve starts");
    Server { child, addr }
}

/// Waits for /healthz; returns the time from spawn, or None if the server died or took too long.
fn wait_healthy(server: &mut Server, spawned: Instant) -> Option<Duration> {
    while spawned.elapsed() < Duration::from_millis(RECOVERY_MS_MAX) {
        if let Ok(Some(_)) = server.child.try_wait() {
            return None;
        }
        if let Ok(response) = sunledger::http_client::request(&server.addr, "GET", "/healthz", &[], b"") {
            if response.status == 200 {
                return Some(spawned.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

#[derive(Default)]
struct Report {
    name: &'static str,
    cycles: usize,
    acknowledged: u64,
    lost: u64,
    recovery_ms: Vec<f64>,
    /// Ledger checks run (one per cycle, plus the final one of the server campaign).
    checks: usize,
    verify_ok: usize,
    rebuild_ok: usize,
    lines: Vec<String>,
    failures: Vec<String>,
}

impl Report {
    fn print(&self) {
        let (median, max) = median_and_max(&self.recovery_ms);
        println!("== {} campaign", self.name);
        println!("cycles: {}", self.cycles);
        println!("events acknowledged: {}", self.acknowledged);
        println!("events lost: {}", self.lost);
        println!("recovery time: median {median:.1} ms, max {max:.1} ms ({} restarts)", self.recovery_ms.len());
        println!(
            "verify --data: {}/{} ok; rebuild --data: {}/{} ok",
            self.verify_ok, self.checks, self.rebuild_ok, self.checks
        );
        for line in &self.lines {
            println!("{line}");
        }
        println!("problems: {}", self.failures.len());
    }
}

/// The ledger's records by event id: (seq, hash, envelope as JSON).
fn exported(bin: &Path, data: &Path) -> Result<HashMap<String, (u64, String, Value)>, String> {
    let output = run_bin(bin, &["export", "--data", data.to_str().expect("UTF-8")]);
    if !output.status.success() {
        return Err(format!("export failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let mut records = HashMap::new();
    for (n, line) in output.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let record: Value = serde_json::from_slice(line).map_err(|e| format!("export line {n}: {e}"))?;
        let envelope = Envelope::parse(record["envelope"].to_string().as_bytes()).map_err(|e| e.message)?;
        let payload: Value = serde_json::from_slice(&envelope.payload).map_err(|e| e.to_string())?;
        let id = payload["id"].as_str().ok_or("record without id")?.to_string();
        let seq = record["seq"].as_u64().ok_or("record without seq")?;
        let hash = record["hash"].as_str().ok_or("record without hash")?.to_string();
        records.insert(id, (seq, hash, record["envelope"].clone()));
    }
    Ok(records)
}

/// Checks the stopped ledger against what the clients were told.
fn check_server_ledger(
    bin: &Path,
    data: &Path,
    book: &Book,
    base_ids: &[String],
    report: &mut Report,
    cycle: usize,
) -> (usize, usize) {
    report.checks += 1;
    match verify_and_rebuild(bin, data) {
        Ok(_) => {
            report.verify_ok += 1;
            report.rebuild_ok += 1;
        }
        Err(problem) => {
            if !problem.starts_with("rebuild") {
                report.rebuild_ok +=
                    usize::from(run_bin(bin, &["rebuild", "--data", data.to_str().unwrap()]).status.success());
            } else {
                report.verify_ok += 1;
            }
            report.failures.push(format!("cycle {cycle}: {problem}"));
        }
    }
    let records = match exported(bin, data) {
        Ok(records) => records,
        Err(problem) => {
            report.failures.push(format!("cycle {cycle}: {problem}"));
            return (0, 0);
        }
    };
    let mut lost = 0;
    let (mut unknown_stored, mut unknown_absent) = (0, 0);
    for (id, submitted) in &book.events {
        let present = records.get(id);
        match (&submitted.known, present) {
            (Known::Acknowledged { seq, hash }, Some((s, h, envelope))) => {
                let sent: Value = serde_json::from_str(&submitted.line).expect("own JSON");
                if (seq, hash) != (s, h) || *envelope != sent {
                    report
                        .failures
                        .push(format!("cycle {cycle}: {id} acknowledged at {seq} {hash}, stored at {s} {h}"));
                }
            }
            (Known::Acknowledged { seq, .. }, None) => {
                lost += 1;
                report.failures.push(format!("cycle {cycle}: LOST {id} (acknowledged at seq {seq})"));
            }
            (Known::Rejected(code), Some((s, _, _))) => {
                report.failures.push(format!("cycle {cycle}: {id} was rejected ({code}) but is stored at {s}"));
            }
            (Known::Unknown, Some((_, _, envelope))) => {
                unknown_stored += 1;
                let sent: Value = serde_json::from_str(&submitted.line).expect("own JSON");
                if *envelope != sent {
                    report.failures.push(format!("cycle {cycle}: {id} is stored with other bytes than sent"));
                }
            }
            (Known::Unknown, None) => unknown_absent += 1,
            _ => {}
        }
    }
    for id in records.keys() {
        if !book.events.contains_key(id) && !base_ids.contains(id) {
            report.failures.push(format!("cycle {cycle}: {id} is stored but was never submitted"));
        }
    }
    report.lost += lost;
    (unknown_stored, unknown_absent)
}

fn server_campaign(options: &Options, bin: &Path, vectors: &Path, deadline: Instant) -> Report {
    let mut report = Report { name: "server", ..Report::default() };
    let work = tempfile::tempdir().expect("a temporary directory");
    let data = work.path().join("data");
    let envelopes = vectors.join("envelopes.jsonl");
    let imported = run_bin(bin, &["import", "--data", data.to_str().unwrap(), envelopes.to_str().unwrap()]);
    assert!(imported.status.success(), "vector import: {}", String::from_utf8_lossy(&imported.stderr));
    let keys_text = std::fs::read_to_string(vectors.join("keys.json")).expect("keys.json");
    let key_list: Vec<Value> = serde_json::from_str(&keys_text).expect("keys.json parses");
    let log_key = work.path().join("log.key");
    let log_entry = key_list.iter().find(|k| k["key_id"] == "log/k1").expect("log/k1 in keys.json");
    write_private(&log_key, &log_entry.to_string());
    let keys = key_list
        .iter()
        .map(|k| {
            let seed = sunledger::encoding::base64_decode(k["secret_key"].as_str().unwrap()).unwrap();
            (k["key_id"].as_str().unwrap().to_string(), SigningKey::from_bytes(&seed.try_into().unwrap()))
        })
        .collect();
    let signer = Arc::new(Signer { keys });
    let base_ids: Vec<String> = std::fs::read_to_string(&envelopes)
        .unwrap()
        .lines()
        .map(|l| {
            let e = Envelope::parse(l.as_bytes()).unwrap();
            serde_json::from_slice::<Value>(&e.payload).unwrap()["id"].as_str().unwrap().to_string()
        })
        .collect();
    let book = Arc::new(Mutex::new(Book::default()));
    let mut random = Random(options.seed);
    let mut clients: Vec<ClientState> = (0..options.clients)
        .map(|c| ClientState {
            stream: ClientStream { client: c, next: 0, household: None },
            unknown: Vec::new(),
            random: Random(options.seed ^ (c as u64 + 1).wrapping_mul(0x1234_5678_9ABC)),
        })
        .collect();
    let (mut during_start, mut during_shutdown, mut during_load) = (0, 0, 0);
    let (mut unknown_stored, mut unknown_absent) = (0, 0);
    for cycle in 0..options.cycles {
        if Instant::now() > deadline {
            report.failures.push(format!("time limit reached after {cycle} server cycles"));
            break;
        }
        let spawned = Instant::now();
        let mut server = start_server(bin, &data, &log_key);
        let moment = random.below(100);
        if moment < 10 {
            // Kill while it opens the store and replays (before it is ready).
            std::thread::sleep(Duration::from_millis(random.below(40)));
            let _ = server.child.kill();
            wait_until_exit(&mut server.child);
            during_start += 1;
        } else {
            match wait_healthy(&mut server, spawned) {
                Some(time) => report.recovery_ms.push(millis(time)),
                None => report.failures.push(format!("cycle {cycle}: the server did not come up")),
            }
            let stop = Arc::new(AtomicBool::new(false));
            let threads: Vec<_> = std::mem::take(&mut clients)
                .into_iter()
                .map(|mut state| {
                    let (addr, book, signer, stop) = (server.addr.clone(), book.clone(), signer.clone(), stop.clone());
                    std::thread::spawn(move || {
                        client_cycle(&addr, &book, &signer, &mut state, &stop);
                        state
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(10 + random.below(options.kill_ms_max)));
            if moment < 25 {
                // A graceful stop (drain, snapshot) cut short by SIGKILL.
                sigterm(&server.child);
                std::thread::sleep(Duration::from_millis(random.below(30)));
                during_shutdown += 1;
            } else {
                during_load += 1;
            }
            let _ = server.child.kill();
            wait_until_exit(&mut server.child);
            stop.store(true, Ordering::Relaxed);
            clients = threads.into_iter().map(|t| t.join().expect("client thread")).collect();
        }
        let book_guard = book.lock().expect("book lock");
        let (stored, absent) = check_server_ledger(bin, &data, &book_guard, &base_ids, &mut report, cycle);
        unknown_stored += stored;
        unknown_absent += absent;
        report.cycles += 1;
        progress("server", cycle, &report, &data);
    }
    // Resolve the last unknowns on a final run, and check once more.
    let spawned = Instant::now();
    let mut server = start_server(bin, &data, &log_key);
    if let Some(time) = wait_healthy(&mut server, spawned) {
        report.recovery_ms.push(millis(time));
    }
    for state in &mut clients {
        let unknown = std::mem::take(&mut state.unknown);
        for id in unknown {
            let line = book.lock().unwrap().events[&id].line.clone();
            submit(&server.addr, &book, &[(id, line)], false);
        }
    }
    sigterm(&server.child);
    let exited = Instant::now();
    while exited.elapsed() < Duration::from_secs(30) && matches!(server.child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = server.child.kill();
    wait_until_exit(&mut server.child);
    let book = book.lock().expect("book lock");
    check_server_ledger(bin, &data, &book, &base_ids, &mut report, options.cycles);
    let count = |f: &dyn Fn(&Known) -> bool| book.events.values().filter(|e| f(&e.known)).count();
    report.acknowledged = count(&|k| matches!(k, Known::Acknowledged { .. })) as u64;
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for event in book.events.values() {
        if let Known::Rejected(code) = &event.known {
            *codes.entry(code.clone()).or_default() += 1;
        }
    }
    report.failures.extend(book.repeat_mismatches.iter().cloned());
    report.lines.push(format!(
        "events submitted: {} in {} requests ({} batches); rejected: {codes:?}; still unknown: {}",
        book.events.len(),
        book.requests,
        book.batches,
        count(&|k| *k == Known::Unknown)
    ));
    report.lines.push(format!("idempotent repeats checked: {}", book.repeats_checked));
    report.lines.push(format!(
        "in flight at a kill (no answer): {} — found stored and complete after the restart: {unknown_stored}, absent: {unknown_absent}",
        unknown_stored + unknown_absent
    ));
    report.lines.push(format!(
        "kills: {during_load} under load, {during_shutdown} during a graceful shutdown, {during_start} during start-up"
    ));
    let export_bytes = run_bin(bin, &["export", "--data", data.to_str().unwrap()]).stdout.len();
    report.lines.push(format!(
        "ledger at the end: {} records, export {:.1} MB, store on disk {:.1} MB",
        27 + report.acknowledged,
        export_bytes as f64 / 1e6,
        directory_bytes(&data) as f64 / 1e6
    ));
    report
}

fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).expect("key file");
    file.write_all(text.as_bytes()).expect("key file written");
}

// ---------------------------------------------------------------------------
// Import campaign
// ---------------------------------------------------------------------------

/// Checks a stopped import's store: a byte-identical prefix of `lines`.
fn stored_prefix(data: &Path, lines: &[String]) -> Result<(u64, Duration), String> {
    if !data.exists() {
        return Ok((0, Duration::ZERO));
    }
    let opened = Instant::now();
    let ledger = sunledger::ledger::Ledger::open(data).map_err(|e| format!("reopen failed: {e}"))?;
    let open_time = opened.elapsed();
    let size = ledger.head().size;
    for record in ledger.store().records_from(0) {
        let record = record.map_err(|e| e.to_string())?;
        let expected = lines.get(record.seq as usize).ok_or(format!("record {} beyond the input", record.seq))?;
        if record.envelope_bytes != expected.as_bytes() {
            return Err(format!("record {} is not input line {}", record.seq, record.seq + 1));
        }
    }
    if !ledger.state().conserves_money() {
        return Err("money is not conserved".into());
    }
    Ok((size, open_time))
}

fn import_campaign(options: &Options, bin: &Path, deadline: Instant) -> Report {
    let mut report = Report { name: "import", ..Report::default() };
    let cycles = options.import_cycles.unwrap_or(options.cycles);
    let generated = sunledger::generate::county_year(
        options.seed,
        sunledger::generate::CountyOptions {
            villages: options.import_villages,
            households_per_village: options.import_households,
            ..Default::default()
        },
    );
    let lines = generated.lines;
    let work = tempfile::tempdir().expect("a temporary directory");
    let input = work.path().join("county.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").expect("input written");
    let input_arg = input.to_str().expect("UTF-8").to_string();
    // Calibrate: how long does an uninterrupted import take? The faster of
    // two (the first pays for cold caches).
    let mut kill_window = Duration::MAX;
    for _ in 0..2 {
        let calibration = work.path().join("calibration");
        let started = Instant::now();
        let full = run_bin(bin, &["import", "--data", calibration.to_str().unwrap(), &input_arg]);
        kill_window = kill_window.min(started.elapsed());
        if !full.status.success() {
            report.failures.push(format!("calibration import failed: {}", String::from_utf8_lossy(&full.stderr)));
            return report;
        }
        let _ = std::fs::remove_dir_all(&calibration);
    }
    let mut random = Random(options.seed.wrapping_mul(31));
    let mut generation = 0;
    let mut data = work.path().join(format!("data-{generation}"));
    let mut previous = 0u64;
    let (mut completed, mut killed) = (0, 0);
    let mut sizes = Vec::new();
    // A cycle is one kill; an import that finishes first is counted apart and
    // starts a fresh ledger, as does a kill after everything was stored.
    let mut attempt = 0;
    while killed < cycles && attempt < cycles * 3 {
        let cycle = attempt;
        attempt += 1;
        if Instant::now() > deadline {
            report.failures.push(format!("time limit reached after {killed} import kills"));
            break;
        }
        // A resumed import re-reads the stored lines as repeats, so it takes about as long as a full one.
        let delay = Duration::from_micros(random.below(kill_window.as_micros() as u64 + IMPORT_START_MICROS));
        let mut child = Command::new(bin)
            .args(["import", "--data", data.to_str().unwrap(), &input_arg])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sunledger import starts");
        let started = Instant::now();
        while started.elapsed() < delay && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = child.kill(); // no-op if it already exited
        let done = child.wait().is_ok_and(|status| status.success());
        if done {
            // It finished before its kill: later kills are drawn within how
            // long imports take now, so that most cycles are kills.
            kill_window = kill_window.min(started.elapsed());
        }
        match stored_prefix(&data, &lines) {
            Ok((size, open_time)) => {
                report.recovery_ms.push(millis(open_time));
                if size < previous {
                    report.lost += previous - size;
                    report.failures.push(format!("cycle {cycle}: the store shrank from {previous} to {size}"));
                }
                let group = sunledger::ledger::GROUP_EVENTS_MAX as u64;
                if size % group != 0 && size != lines.len() as u64 {
                    report.failures.push(format!("cycle {cycle}: {size} records stored: a torn group of {group}"));
                }
                if done && size != lines.len() as u64 {
                    report
                        .failures
                        .push(format!("cycle {cycle}: import exited 0 with {size} of {} stored", lines.len()));
                }
                previous = size;
                if !done {
                    sizes.push(size);
                }
            }
            Err(problem) => report.failures.push(format!("cycle {cycle}: {problem}")),
        }
        report.checks += 1;
        if data.exists() {
            match verify_and_rebuild(bin, &data) {
                Ok(_) => {
                    report.verify_ok += 1;
                    report.rebuild_ok += 1;
                }
                Err(problem) => report.failures.push(format!("cycle {cycle}: {problem}")),
            }
        } else {
            // Killed before it created anything: nothing to verify, nothing lost.
            report.verify_ok += 1;
            report.rebuild_ok += 1;
        }
        report.cycles += usize::from(!done);
        progress("import", cycle, &report, &data);
        if done {
            completed += 1;
            report.acknowledged += lines.len() as u64;
        }
        if done || previous == lines.len() as u64 {
            // Everything is stored: another run would only meet repeats. Start afresh.
            generation += 1;
            data = work.path().join(format!("data-{generation}"));
            previous = 0;
        }
        if !done {
            killed += 1;
        }
    }
    // Whatever was left half-done must finish on a last uninterrupted run.
    let last = run_bin(bin, &["import", "--data", data.to_str().unwrap(), &input_arg]);
    match stored_prefix(&data, &lines) {
        Ok((size, _)) if last.status.success() && size == lines.len() as u64 => {}
        other => report.failures.push(format!("the final import did not complete: {:?}", other.map(|(s, _)| s))),
    }
    if killed < cycles {
        report.failures.push(format!("only {killed} of {cycles} imports were killed before finishing"));
    }
    let (size_median, _) = median_and_max(&sizes.iter().map(|s| *s as f64).collect::<Vec<_>>());
    let zero = sizes.iter().filter(|s| **s == 0).count();
    let whole = sizes.iter().filter(|s| **s == lines.len() as u64).count();
    report.lines.push(format!(
        "input: county-year of {} events; kills drawn within {:.0} ms (the fastest whole import seen) + start-up; \
         {killed} kills, {completed} imports finished before the kill",
        lines.len(),
        millis(kill_window)
    ));
    report.lines.push(format!(
        "stored prefix after a kill: median {size_median:.0} records, always whole groups of {} \
         ({zero} kills before the first group was durable, {whole} after the last); {} records found stored after kills",
        sunledger::ledger::GROUP_EVENTS_MAX,
        sizes.iter().sum::<u64>()
    ));
    report.lines.push("recovery time here is Ledger::open after the kill (store recovery and replay)".into());
    report
}
