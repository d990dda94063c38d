//! Fault injection: failing commits, a full disk and a read-only data
//! directory. Each gives a clear error (HTTP 503 `storage_error`, CLI exit 2),
//! the server keeps answering reads, and nothing acknowledged is lost
//! (checked by reopening the store and verifying it).
//!
//! Two ways in. `FlakyStore` wraps the sled store behind the `Store` trait and
//! fails commits on demand the way sled does on ENOSPC: the failed group stays
//! visible in memory but is not durable, and is gone after a reopen. The disk
//! tests mount a small tmpfs (tests run as root, where `chmod` stops nothing,
//! so a read-only directory is a read-only remount); where mounting is not
//! permitted they say so on stderr and stop early.

mod support;

use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use sunledger::ledger::Ledger;
use sunledger::state::IndexedEvent;
use sunledger::store::{CommitGroup, Head, SledStore, Store, StoredRecord};
use sunledger::validate::StorageError;
use support::http::{get, post};
use support::*;

/// What a failed commit left in memory (as sled keeps an applied batch whose flush failed).
#[derive(Default)]
struct Overlay {
    records: BTreeMap<u64, StoredRecord>,
    events: HashMap<String, IndexedEvent>,
    nodes: HashMap<(u32, u64), [u8; 32]>,
    head: Option<Head>,
}

/// The sled store, with commits that fail on demand and leave their group
/// readable but not durable.
struct FlakyStore {
    inner: SledStore,
    fail: Arc<AtomicBool>,
    overlay: Mutex<Overlay>,
}

impl FlakyStore {
    fn open(data: &Path, fail: Arc<AtomicBool>) -> FlakyStore {
        FlakyStore { inner: SledStore::open(data).unwrap(), fail, overlay: Mutex::default() }
    }
}

impl Store for FlakyStore {
    fn head(&self) -> Result<Option<Head>, StorageError> {
        match self.overlay.lock().unwrap().head.clone() {
            Some(head) => Ok(Some(head)),
            None => self.inner.head(),
        }
    }

    fn record(&self, seq: u64) -> Result<Option<StoredRecord>, StorageError> {
        match self.overlay.lock().unwrap().records.get(&seq) {
            Some(record) => Ok(Some(record.clone())),
            None => self.inner.record(seq),
        }
    }

    fn records_from(&self, from: u64) -> Box<dyn Iterator<Item = Result<StoredRecord, StorageError>> + '_> {
        let durable: Vec<_> = self.inner.records_from(from).collect();
        let extra: Vec<_> = self.overlay.lock().unwrap().records.range(from..).map(|(_, r)| Ok(r.clone())).collect();
        Box::new(durable.into_iter().chain(extra))
    }

    fn event(&self, id: &str) -> Result<Option<IndexedEvent>, StorageError> {
        match self.overlay.lock().unwrap().events.get(id) {
            Some(event) => Ok(Some(event.clone())),
            None => self.inner.event(id),
        }
    }

    fn snapshot(&self) -> Result<Option<sunledger::store::SnapshotBytes>, StorageError> {
        self.inner.snapshot()
    }

    fn merkle_node(&self, level: u32, index: u64) -> Result<Option<[u8; 32]>, StorageError> {
        match self.overlay.lock().unwrap().nodes.get(&(level, index)) {
            Some(hash) => Ok(Some(*hash)),
            None => self.inner.merkle_node(level, index),
        }
    }

    fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.latest_checkpoint()
    }

    fn commit(&self, group: CommitGroup) -> Result<(), StorageError> {
        if !self.fail.load(Ordering::SeqCst) {
            return self.inner.commit(group);
        }
        let mut overlay = self.overlay.lock().unwrap();
        for record in group.records {
            overlay.records.insert(record.seq, record);
        }
        overlay.events.extend(group.events);
        for (level, index, hash) in group.merkle_nodes {
            overlay.nodes.insert((level, index), hash);
        }
        if group.head.is_some() {
            overlay.head = group.head;
        }
        Err(StorageError("IO error: No space left on device (os error 28) [injected]".into()))
    }

    fn size_on_disk(&self) -> Option<u64> {
        self.inner.size_on_disk()
    }
}

/// `sunledger serve` in-process over an already-open ledger (any store), on 127.0.0.1:0.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(ledger: Ledger) -> Server {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
                let server = tokio::spawn(sunledger::server::serve_async(
                    ledger,
                    None,
                    "127.0.0.1:0",
                    Some(bound_tx),
                    Some(stop_rx),
                ));
                ready_tx.send(bound_rx.await.unwrap()).unwrap();
                let _ = server.await;
            });
        });
        Server { addr: ready_rx.recv().unwrap(), stop: Some(stop_tx), thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        let _ = self.thread.take().map(|thread| thread.join());
    }
}

/// An appropriation by the province (always acceptable on the vector ledger), with a memo to take space.
fn event(id: &str, memo_chars: usize) -> String {
    let body = json!({"program": "ranger", "amount_fen": 100, "budget_ref": format!("b-{id}"), "fiscal_year": 2018});
    let mut payload: serde_json::Value =
        serde_json::from_str(&payload(id, "appropriate", "420000", "2018-12-22", body)).unwrap();
    payload["memo"] = "备".repeat(memo_chars).into();
    sign(&payload.to_string(), &["420000/k1"])
}

/// (seq, hash) of an acknowledged answer.
fn acknowledged(response: &support::http::Response) -> (u64, String) {
    assert_eq!(response.status, 200, "{}", response.text());
    let value = response.json();
    (value["seq"].as_u64().unwrap(), value["hash"].as_str().unwrap().to_string())
}

fn assert_storage_error(response: &support::http::Response) {
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(response.json()["error"], "storage_error", "{}", response.text());
    assert!(!response.json()["message"].as_str().unwrap_or("").is_empty());
}

/// After a failed commit `/healthz` says so: 503, JSON, writes refused, with the cause.
fn assert_degraded(addr: SocketAddr) {
    let health = get(addr, "/healthz");
    assert_eq!(health.status, 503, "{}", health.text());
    assert_eq!(health.json()["status"], "degraded", "{}", health.text());
    assert_eq!(health.json()["writes"], "refused", "{}", health.text());
    assert!(health.json()["reason"].as_str().is_some_and(|r| r.contains("commit failed")), "{}", health.text());
}

/// A healthy server's `/healthz`: 200 JSON, writes accepted.
fn assert_healthy(addr: SocketAddr) {
    let health = get(addr, "/healthz");
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["status"], "ok", "{}", health.text());
    assert_eq!(health.json()["writes"], "accepted", "{}", health.text());
}

/// Reads still answer while writes fail. (They may show the failed group,
/// which the store holds in memory until a restart: see RELIABILITY.md.)
fn assert_reads_answer(addr: SocketAddr) {
    assert_degraded(addr);
    for path in ["/v1/records/0", "/v1/offices", "/v1/export", "/v1/balances", "/v1/events/e000016"] {
        assert_eq!(get(addr, path).status, 200, "{path} while writes fail");
    }
}

/// On a full disk the views held in memory answer; those read from sled may
/// fail with 503 storage_error (sled's I/O errors are sticky and can reach
/// reads) or, for the streamed export, end early — but never hang or crash.
fn assert_reads_answer_on_a_full_disk(addr: SocketAddr) {
    assert_degraded(addr);
    for path in ["/v1/offices", "/v1/balances"] {
        assert_eq!(get(addr, path).status, 200, "{path} on a full disk");
    }
    for path in ["/v1/records/0", "/v1/events/e000016", "/v1/export"] {
        match sunledger::http_client::request(&addr.to_string(), "GET", path, &[], b"") {
            Ok(response) if response.status == 200 => {}
            Ok(response) => {
                assert_eq!(response.status, 503, "{path}: {}", response.text());
                assert!(response.text().contains("storage_error"), "{path}: {}", response.text());
            }
            Err(error) => assert!(path == "/v1/export" && error.contains("truncated"), "{path}: {error}"),
        }
    }
}

/// Every acknowledged event is stored at its seq with its hash; the store verifies and rebuilds.
fn assert_nothing_acknowledged_lost(data: &Path, acknowledged: &BTreeMap<String, (u64, String)>) {
    let ledger = Ledger::open(data).expect("the ledger reopens");
    for (id, (seq, hash)) in acknowledged {
        let event = ledger.store().event(id).unwrap().unwrap_or_else(|| panic!("acknowledged {id} is lost"));
        assert_eq!(event.seq, *seq, "{id}");
        let record = ledger.store().record(*seq).unwrap().unwrap();
        assert_eq!(sunledger::encoding::hex(&record.hash), *hash, "{id}");
    }
    drop(ledger);
    let verified = run(&["verify", "--data", data.to_str().unwrap()]);
    assert!(verified.status.success(), "{}", stdout(&verified));
    let rebuilt = run(&["rebuild", "--data", data.to_str().unwrap()]);
    assert!(rebuilt.status.success(), "{}", stdout(&rebuilt));
}

#[test]
fn failed_commit_gives_503_keeps_reads_and_loses_nothing() {
    // Goal: while commits fail, writes get 503 storage_error and reads answer with unchanged figures;
    // after a reopen every acknowledged event is there, the failed one is not, and writes work again.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let fail = Arc::new(AtomicBool::new(false));
    let ledger = Ledger::with_store(std::sync::Arc::new(FlakyStore::open(&data, fail.clone()))).unwrap();
    let server = Server::start(ledger);
    let mut acked = BTreeMap::new();
    acked.insert("f1".to_string(), acknowledged(&post(server.addr, "/v1/events", event("f1", 1).as_bytes())));
    assert_healthy(server.addr);
    let balances = get(server.addr, "/v1/balances").json();
    fail.store(true, Ordering::SeqCst);
    assert_storage_error(&post(server.addr, "/v1/events", event("f2", 1).as_bytes()));
    let batch = json!({"envelopes": [serde_json::from_str::<serde_json::Value>(&event("f3", 1)).unwrap()]});
    assert_storage_error(&post(server.addr, "/v1/events", batch.to_string().as_bytes()));
    assert_reads_answer(server.addr);
    drop(server);
    assert_nothing_acknowledged_lost(&data, &acked);
    let ledger = Ledger::open(&data).unwrap();
    assert!(ledger.store().event("f2").unwrap().is_none(), "the failed event is not durable");
    let reopened = sunledger::cli::balances_json(ledger.state());
    assert_eq!(reopened, balances, "after the reopen the balances are those of the acknowledged events");
    let server = Server::start(ledger);
    assert_healthy(server.addr);
    let (seq, _) = acknowledged(&post(server.addr, "/v1/events", event("f2", 1).as_bytes()));
    assert_eq!(seq, acked["f1"].0 + 1, "the failed event took no seq");
}

#[test]
fn repeat_of_a_failed_commit_is_not_acknowledged_before_reopen() {
    // Goal (regression: after a failed flush, resubmitting the same event answered 200 with a seq from
    // the store's memory, and the event was gone after a kill — an acknowledged event lost): once a
    // commit failed, nothing is acknowledged, not even idempotent repeats, until the ledger is reopened.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let fail = Arc::new(AtomicBool::new(false));
    let ledger = Ledger::with_store(std::sync::Arc::new(FlakyStore::open(&data, fail.clone()))).unwrap();
    let server = Server::start(ledger);
    let f1 = event("r1", 1);
    let first = acknowledged(&post(server.addr, "/v1/events", f1.as_bytes()));
    fail.store(true, Ordering::SeqCst);
    let lost = event("r2", 1);
    assert_storage_error(&post(server.addr, "/v1/events", lost.as_bytes()));
    // The fault clears (space freed), but the store may hold r2 in memory only.
    fail.store(false, Ordering::SeqCst);
    assert_storage_error(&post(server.addr, "/v1/events", lost.as_bytes()));
    assert_storage_error(&post(server.addr, "/v1/events", event("r3", 1).as_bytes()));
    assert_storage_error(&post(server.addr, "/v1/events", f1.as_bytes()));
    drop(server);
    let mut acked = BTreeMap::new();
    acked.insert("r1".to_string(), first);
    assert_nothing_acknowledged_lost(&data, &acked);
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
struct Mount {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mount {
    fn tmpfs(size: &str) -> Option<Mount> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(Mount { path, _dir: dir }),
            other => {
                eprintln!("SKIPPED: cannot mount a tmpfs here ({other:?}); the FlakyStore tests cover the logic");
                None
            }
        }
    }

    fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the filesystem holding `dir` with a file until ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    for _ in 0..1_000_000 {
        if file.write_all(&block).and_then(|_| file.sync_data()).is_err() {
            break;
        }
    }
    path
}

#[test]
fn full_disk_gives_storage_error_and_loses_nothing() {
    // Goal: on a 2 MB tmpfs filled up under a running server, writes end in 503 storage_error naming the
    // cause, reads answer, repeats are not acknowledged, and after a restart every acknowledged event is
    // stored and verifies; a CLI import on the full disk exits 2 with a clear message.
    let Some(mount) = Mount::tmpfs("2m") else { return };
    let data = vector_ledger(&mount.path);
    let server = Server::start(Ledger::open(&data).unwrap());
    let mut acked = BTreeMap::new();
    for n in 0..5 {
        let response = post(server.addr, "/v1/events", event(&format!("early{n}"), 1).as_bytes());
        acked.insert(format!("early{n}"), acknowledged(&response));
    }
    let filler = fill(&mount.path);
    let mut failed = None;
    for n in 0..3000 {
        let line = event(&format!("d{n}"), 400);
        let response = post(server.addr, "/v1/events", line.as_bytes());
        if response.status == 200 {
            acked.insert(format!("d{n}"), acknowledged(&response));
            continue;
        }
        assert_storage_error(&response);
        let message = response.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains("No space left on device"), "the cause is named: {message}");
        failed = Some(line);
        break;
    }
    let failed = failed.expect("the disk filled up within 3,000 events");
    assert_reads_answer_on_a_full_disk(server.addr);
    assert_storage_error(&post(server.addr, "/v1/events", failed.as_bytes()));
    std::fs::remove_file(&filler).unwrap();
    assert_storage_error(&post(server.addr, "/v1/events", failed.as_bytes()));
    drop(server);
    assert_nothing_acknowledged_lost(&data, &acked);
    eprintln!("full disk: {} events acknowledged before ENOSPC", acked.len());
    // The CLI on a full disk: a clear error, exit 2, nothing acknowledged lost.
    // (2,000 events of ~2 KB: more than sled's preallocated segment can take.)
    let before = export_bytes(&data);
    let filler = fill(&mount.path);
    let lines: Vec<String> = (0..2000).map(|n| event(&format!("cli{n}"), 400)).collect();
    let input = write_lines(&std::env::temp_dir(), &format!("faults-{}.jsonl", std::process::id()), &lines);
    let output = run(&["import", "--data", data.to_str().unwrap(), &input]);
    std::fs::remove_file(&input).unwrap();
    // sled may fail the write (ENOSPC), or fail to recover a consistent view while opening on a full
    // disk (the ledger then reports a damaged record and stops): either way exit 2 and a clear error.
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).starts_with("error: "), "{}", stderr(&output));
    eprintln!("import on a full disk: {}", stderr(&output).trim());
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(export_bytes(&data), before, "the failed import group left nothing behind");
    assert_nothing_acknowledged_lost(&data, &acked);
    let server = Server::start(Ledger::open(&data).unwrap());
    assert_eq!(post(server.addr, "/v1/events", failed.as_bytes()).status, 200, "writes work after a restart");
}

#[test]
fn read_only_data_directory_gives_clear_errors_and_changes_nothing() {
    // Goal: on a read-only data directory (a read-only remount: root ignores chmod, and a busy tmpfs
    // cannot be remounted read-only under a running server) serve, import, export and verify exit 2
    // with an error naming the cause; after remounting read-write the ledger is byte-for-byte as before.
    // (A directory that turns unwritable under a running server is the FlakyStore case above.)
    let Some(mount) = Mount::tmpfs("16m") else { return };
    let data = vector_ledger(&mount.path);
    let before = export_bytes(&data);
    let input =
        write_lines(&std::env::temp_dir(), &format!("faults-ro-{}.jsonl", std::process::id()), &[event("ro", 1)]);
    let log_key = std::env::temp_dir().join(format!("faults-ro-{}.key", std::process::id()));
    let keys: Vec<serde_json::Value> = serde_json::from_str(&read_vector("keys.json")).unwrap();
    std::fs::write(&log_key, keys.iter().find(|k| k["key_id"] == "log/k1").unwrap().to_string()).unwrap();
    mount.remount("ro");
    let data_arg = data.to_str().unwrap();
    let commands: [&[&str]; 4] = [
        &["import", "--data", data_arg, &input],
        &["serve", "--data", data_arg, "--log-key", log_key.to_str().unwrap(), "--addr", "127.0.0.1:0"],
        &["export", "--data", data_arg],
        &["verify", "--data", data_arg],
    ];
    for args in commands {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("Read-only file system"), "{args:?}: {}", stderr(&output));
    }
    mount.remount("rw");
    std::fs::remove_file(&input).unwrap();
    std::fs::remove_file(&log_key).unwrap();
    assert_eq!(export_bytes(&data), before, "a refused write changed the ledger");
}

#[test]
fn verify_on_a_full_scratch_disk_stops_with_an_error_not_a_verdict() {
    // Goal: when verify's id table cannot be written (its scratch tmpfs is
    // full), verify exits 2 naming the scratch directory and the lack of
    // space, prints no verdict, and the same chain then verifies with room.
    let Some(mount) = Mount::tmpfs("1m") else { return };
    let filler = fill(&mount.path);
    let chain = vectors().join("chain.jsonl");
    let stopped = run(&["verify", "--scratch", mount.path.to_str().unwrap(), chain.to_str().unwrap()]);
    assert_eq!(stopped.status.code(), Some(2), "{}{}", stdout(&stopped), stderr(&stopped));
    assert!(stdout(&stopped).is_empty(), "no verdict: {}", stdout(&stopped));
    assert!(stderr(&stopped).contains("id table"), "{}", stderr(&stopped));
    assert!(stderr(&stopped).contains("No space left"), "{}", stderr(&stopped));
    std::fs::remove_file(filler).unwrap();
    let verified = run(&["verify", "--scratch", mount.path.to_str().unwrap(), chain.to_str().unwrap()]);
    assert!(verified.status.success(), "{}{}", stdout(&verified), stderr(&verified));
    assert!(stdout(&verified).starts_with("ok: 27 records"), "{}", stdout(&verified));
}

#[test]
fn the_id_table_refuses_all_use_after_a_failed_write() {
    // Goal: verify's on-disk id table, filling a 1 MB tmpfs, answers every
    // key it took until a write fails, and after that failure every lookup
    // and insert is an error (a split that failed half way could otherwise
    // answer from a damaged table).
    use sha2::{Digest as _, Sha256};
    use sunledger::idtable::DiskTable;
    let Some(mount) = Mount::tmpfs("1m") else { return };
    let key = |n: u64| -> [u8; 32] { Sha256::digest(n.to_le_bytes()).into() };
    let mut table = DiskTable::create_in(&mount.path).unwrap();
    let mut stored = 0u64;
    let error = loop {
        match table.insert(&key(stored), &[stored as u8; 64]) {
            Ok(()) => stored += 1,
            Err(error) => break error,
        }
        assert!(stored < 1_000_000, "a 1 MB tmpfs cannot hold a million entries");
        if stored % 1000 == 0 {
            assert_eq!(table.get(&key(stored / 2)).unwrap(), Some([(stored / 2) as u8; 64]));
        }
    };
    assert!(stored > 1000, "the table took entries before the disk filled: {stored}");
    assert!(error.to_string().contains("No space left"), "{error}");
    assert!(table.get(&key(0)).is_err(), "no answers after a failure");
    assert!(table.insert(&key(u64::MAX), &[0; 64]).is_err(), "no inserts after a failure");
}
