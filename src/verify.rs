//! Replay verification of a whole chain (an export or a data directory):
//! links, hashes, time order, every signature against the key registry as it
//! stood, every SPEC §4 rule, and the conservation of money.
//!
//! Owns: the verdict "valid, or first bad seq N and why". Streams records in
//! chunks; memory grows with the registry and the event-id index, never with
//! envelope bytes. Signatures of a chunk are checked in parallel batches.
//!
//! Pipelined: a preparer thread parses the payloads and checks the
//! signatures of chunk N+1 while this thread validates chunk N in order, so
//! the cores verification leaves idle during validation are used. The
//! preparer knows the keys that earlier chunks register (it saw them), so
//! its verdicts are speculative only where a key id is registered twice
//! with different bytes; `validate` re-checks such a signature against the
//! key as it stands, so the verdicts stay those of strict one-by-one
//! checking. At most two chunks are held besides the one being filled.

use crate::chain::{record_hash, ExportRecord, GENESIS_PREV};
use crate::encoding::{hex, Hash};
use crate::idtable::{self, DiskTable};
use crate::merkle::Frontier;
use crate::state::{IndexedEvent, State};
use crate::validate::{self, AppendError, EventIndex, StorageError, Verdict};
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Records checked per chunk (one parallel signature batch).
pub const VERIFY_CHUNK_RECORDS: usize = 4096;

/// What a verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub records: u64,
    pub ledger_id: Option<String>,
    pub last_hash: Hash,
    /// Merkle root of all records verified.
    pub root: Hash,
    /// Merkle root at the size asked for with `capture_root_at`, if reached.
    pub captured_root: Option<(u64, Hash)>,
    pub failure: Option<Failure>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub seq: u64,
    pub reason: String,
    /// The verifier's own scratch storage failed at this record (disk full,
    /// scratch directory gone): no verdict on the chain, which may be valid.
    pub storage: bool,
}

impl Failure {
    /// The chain is invalid at `seq`.
    pub fn chain(seq: u64, reason: String) -> Failure {
        Failure { seq, reason, storage: false }
    }

    fn storage(seq: u64, reason: String) -> Failure {
        Failure { seq, reason, storage: true }
    }
}

impl Report {
    pub fn valid(&self) -> bool {
        self.failure.is_none()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::json!({
            "valid": self.valid(),
            "records": self.records,
            "ledger": self.ledger_id,
            "last_hash": hex(&self.last_hash),
            "root": hex(&self.root),
        });
        if let Some(failure) = &self.failure {
            value["first_bad_seq"] = failure.seq.into();
            value["reason"] = failure.reason.clone().into();
        }
        value
    }
}

/// Every event id the chain has shown so far, with what validation may ask
/// of it later (a repeat's seq and payload digest; a refund's office,
/// account and amount). It grows with the chain's length, so it lives on
/// disk (`idtable::DiskTable`, unnamed scratch files in `scratch`): one
/// 96-byte slot per event, the id as its SHA-256 digest, the row as 64
/// bytes. Only the few distinct kinds, offices and accounts are interned in
/// memory, so a verifier's memory is the registry and state, not the
/// history. The table is created at the first insert: a scratch directory
/// that cannot take it is a storage failure at that record.
struct IdIndex {
    scratch: PathBuf,
    salt: [u8; 32],
    /// `RefCell`: a lookup through `EventIndex::event(&self)` keeps the page
    /// it read for the insert that follows.
    table: RefCell<Option<DiskTable>>,
    /// The last id keyed and its key: validation looks an event's id up and
    /// the insert that follows names it again, one hash instead of two.
    last_key: RefCell<(String, idtable::Key)>,
    texts: Vec<Box<str>>,
    text_ids: HashMap<Box<str>, u32>,
}

/// An event's row in the id table (`VALUE_BYTES`): seq ‖ payload digest ‖
/// amount_fen (u64 LE each but the digest) ‖ kind ‖ office ‖ account (u32 LE
/// text numbers) ‖ 4 spare bytes.
struct IndexRow {
    seq: u64,
    payload_digest: Hash,
    amount_fen: u64,
    kind: u32,
    office: u32,
    /// `NO_TEXT` for none.
    account: u32,
}

const NO_TEXT: u32 = u32::MAX;

impl IndexRow {
    fn encode(&self) -> idtable::Value {
        let mut bytes = [0u8; idtable::VALUE_BYTES];
        bytes[0..8].copy_from_slice(&self.seq.to_le_bytes());
        bytes[8..40].copy_from_slice(&self.payload_digest);
        bytes[40..48].copy_from_slice(&self.amount_fen.to_le_bytes());
        bytes[48..52].copy_from_slice(&self.kind.to_le_bytes());
        bytes[52..56].copy_from_slice(&self.office.to_le_bytes());
        bytes[56..60].copy_from_slice(&self.account.to_le_bytes());
        bytes
    }

    fn decode(bytes: &idtable::Value) -> IndexRow {
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        IndexRow {
            seq: u64_at(0),
            payload_digest: bytes[8..40].try_into().expect("32 bytes"),
            amount_fen: u64_at(40),
            kind: u32_at(48),
            office: u32_at(52),
            account: u32_at(56),
        }
    }
}

/// The table's key for an event id: SHA-256 over a salt drawn for this
/// verifier, then the id. The table buckets by the key's first bytes, so
/// without the salt whoever wrote the chain could grind ids whose digests
/// share those bytes and pile them into one bucket's overflow chain (found
/// in review: 20,000 such ids took 140× the time of random ones).
fn id_key(salt: &[u8; 32], id: &str) -> idtable::Key {
    let mut hash = Sha256::new();
    hash.update(salt);
    hash.update(id.as_bytes());
    hash.finalize().into()
}

fn scratch_error(scratch: &Path, error: std::io::Error) -> StorageError {
    StorageError(format!("verify's id table in {}: {error}", scratch.display()))
}

impl IdIndex {
    fn new(scratch: PathBuf) -> IdIndex {
        let mut salt = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
        let last_key = RefCell::new((String::new(), id_key(&salt, "")));
        IdIndex { scratch, salt, table: RefCell::new(None), last_key, texts: Vec::new(), text_ids: HashMap::new() }
    }

    fn key_of(&self, id: &str) -> idtable::Key {
        let mut last = self.last_key.borrow_mut();
        if last.0 != id {
            last.0.clear();
            last.0.push_str(id);
            last.1 = id_key(&self.salt, id);
        }
        last.1
    }

    fn text(&mut self, text: &str) -> u32 {
        if let Some(id) = self.text_ids.get(text) {
            return *id;
        }
        let id = u32::try_from(self.texts.len())
            .ok()
            .filter(|id| *id != NO_TEXT)
            .expect("fewer than 2^32 − 1 distinct kinds, offices and accounts");
        self.texts.push(text.into());
        self.text_ids.insert(text.into(), id);
        id
    }

    fn insert(&mut self, id: &str, event: &IndexedEvent) -> Result<(), StorageError> {
        let row = IndexRow {
            seq: event.seq,
            payload_digest: event.payload_digest,
            amount_fen: event.amount_fen,
            kind: self.text(&event.kind),
            office: self.text(&event.office),
            account: event.account.as_deref().map_or(NO_TEXT, |account| self.text(account)),
        };
        let mut table = self.table.borrow_mut();
        if table.is_none() {
            *table = Some(DiskTable::create_in(&self.scratch).map_err(|e| scratch_error(&self.scratch, e))?);
        }
        let table = table.as_mut().expect("created above");
        table.insert(&self.key_of(id), &row.encode()).map_err(|e| scratch_error(&self.scratch, e))
    }
}

impl EventIndex for IdIndex {
    fn event(&self, id: &str) -> Result<Option<IndexedEvent>, StorageError> {
        let mut table = self.table.borrow_mut();
        let Some(table) = table.as_mut() else {
            return Ok(None);
        };
        let Some(bytes) = table.get(&self.key_of(id)).map_err(|e| scratch_error(&self.scratch, e))? else {
            return Ok(None);
        };
        let row = IndexRow::decode(&bytes);
        let text = |at: u32| {
            self.texts
                .get(at as usize)
                .map(|text| text.to_string())
                .ok_or_else(|| StorageError(format!("verify's id table names text {at}, which it never stored")))
        };
        Ok(Some(IndexedEvent {
            seq: row.seq,
            payload_digest: row.payload_digest,
            kind: text(row.kind)?,
            office: text(row.office)?,
            account: if row.account == NO_TEXT { None } else { Some(text(row.account)?) },
            amount_fen: row.amount_fen,
        }))
    }
}

/// The preparer finds no repeats: a repeated payload is a failure of the
/// chain, found by `validate` with the verifier's own index.
struct NoRepeats;

impl EventIndex for NoRepeats {
    fn event(&self, _id: &str) -> Result<Option<IndexedEvent>, StorageError> {
        Ok(None)
    }
}

/// A prepared chunk: each record's seq and entry hash (all validation still
/// needs of it), and its envelope made ready.
type PreparedChunk = (Vec<(u64, Hash)>, Vec<validate::Prepared>);

/// The thread that prepares chunks (payload parse + signature checks) ahead
/// of validation, in order.
struct Preparer {
    to: Option<mpsc::SyncSender<Vec<ExportRecord>>>,
    from: mpsc::Receiver<PreparedChunk>,
    thread: Option<std::thread::JoinHandle<()>>,
    in_flight: usize,
}

impl Preparer {
    fn start() -> Preparer {
        let (to, requests) = mpsc::sync_channel::<Vec<ExportRecord>>(1);
        let (done, from) = mpsc::sync_channel::<PreparedChunk>(1);
        let thread = std::thread::spawn(move || {
            // Every key registered by the chunks prepared so far.
            let mut keys: HashMap<String, [u8; 32]> = HashMap::new();
            for records in requests {
                // The envelopes move into the prepared chunk: no copy.
                let (linked, envelopes): (Vec<(u64, Hash)>, Vec<_>) =
                    records.into_iter().map(|r| ((r.seq, r.hash), r.envelope)).unzip();
                let (prepared, registered) = validate::prepare_batch_with_keys(&keys, &NoRepeats, envelopes);
                keys.extend(registered);
                if done.send((linked, prepared)).is_err() {
                    return;
                }
            }
        });
        Preparer { to: Some(to), from, thread: Some(thread), in_flight: 0 }
    }

    fn send(&mut self, records: Vec<ExportRecord>) {
        let to = self.to.as_ref().expect("the preparer runs until dropped");
        to.send(records).expect("the preparer thread stopped early");
        self.in_flight += 1;
    }

    fn receive(&mut self) -> Option<PreparedChunk> {
        if self.in_flight == 0 {
            return None;
        }
        self.in_flight -= 1;
        Some(self.from.recv().expect("the preparer thread stopped early"))
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        // No more requests: the thread ends after its current chunk. Taking
        // what it still hands over unblocks it; `recv` fails once it is gone.
        self.to = None;
        while self.from.recv().is_ok() {}
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A streaming verifier: feed records in order, then `finish`.
pub struct Verifier {
    state: State,
    index: IdIndex,
    last_hash: Hash,
    chunk: Vec<ExportRecord>,
    chunk_records: usize,
    /// Records passed to the preparer and not yet validated.
    pending: u64,
    /// Hash and time of the last record that passed the structural checks
    /// (validated or not yet): what the next record must link to.
    pushed_tail: (Hash, i64),
    preparer: Option<Preparer>,
    failure: Option<Failure>,
    /// The Merkle tree's right edge: O(log n) hashes, whatever the length.
    frontier: Frontier,
    capture_at: Option<u64>,
    captured_root: Option<(u64, Hash)>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new()
    }
}

impl Verifier {
    pub fn new() -> Verifier {
        Verifier::with_chunk_records(VERIFY_CHUNK_RECORDS)
    }

    /// A verifier that checks `records` records per chunk (at least 1);
    /// tests use small chunks to cross many chunk boundaries.
    pub fn with_chunk_records(records: usize) -> Verifier {
        Verifier {
            chunk_records: records.max(1),
            state: State::default(),
            index: IdIndex::new(std::env::temp_dir()),
            last_hash: GENESIS_PREV,
            chunk: Vec::new(),
            pending: 0,
            pushed_tail: (GENESIS_PREV, i64::MIN),
            preparer: None,
            failure: None,
            frontier: Frontier::new(),
            capture_at: None,
            captured_root: None,
        }
    }

    /// Keep the id table's scratch files in `dir` instead of the system's
    /// temporary directory (`std::env::temp_dir`, `$TMPDIR`). They take
    /// ~150 bytes per event and vanish with the verifier.
    pub fn scratch_in(mut self, dir: PathBuf) -> Verifier {
        self.index = IdIndex::new(dir);
        self
    }

    /// Remember the Merkle root when the chain reaches `size` records.
    pub fn capture_root_at(&mut self, size: u64) {
        self.capture_at = Some(size);
        if size == 0 {
            self.captured_root = Some((0, crate::merkle::empty_root()));
        }
    }

    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// The seq the next record must carry.
    fn expected_seq(&self) -> u64 {
        self.state.size + self.pending + self.chunk.len() as u64
    }

    /// A record that could not even be parsed, at the next position.
    pub fn push_unreadable(&mut self, reason: String) {
        self.flush_chunk();
        if self.failure.is_none() {
            self.failure = Some(Failure::chain(self.expected_seq(), reason));
        }
    }

    /// Structural checks now; rule checks when the chunk is full.
    pub fn push(&mut self, record: ExportRecord) {
        if self.failure.is_some() {
            return;
        }
        let seq = self.expected_seq();
        let (prev, last_time) = self.pushed_tail;
        let problem = if record.seq != seq {
            Some(format!("seq is {}, expected {seq}", record.seq))
        } else if record.prev != prev {
            Some("prev does not link to the previous record's hash".to_string())
        } else if record.recorded_at_ms < last_time {
            Some("recorded_at goes backwards".to_string())
        } else if record_hash(seq, &prev, record.recorded_at_ms, &record.envelope) != record.hash {
            Some("entry hash does not match the record".to_string())
        } else {
            None
        };
        if let Some(reason) = problem {
            self.flush_chunk();
            if self.failure.is_none() {
                self.failure = Some(Failure::chain(seq, reason));
            }
            return;
        }
        self.pushed_tail = (record.hash, record.recorded_at_ms);
        self.chunk.push(record);
        if self.chunk.len() >= self.chunk_records {
            self.advance();
        }
    }

    /// Hands the full chunk to the preparer and validates the one before
    /// it, so one chunk is always being prepared while another validates.
    fn advance(&mut self) {
        let older = self.preparer.as_mut().and_then(Preparer::receive);
        self.send_chunk();
        if let Some((records, prepared)) = older {
            self.validate_chunk(&records, prepared);
        }
    }

    fn send_chunk(&mut self) {
        let records = std::mem::take(&mut self.chunk);
        if records.is_empty() {
            return;
        }
        self.pending += records.len() as u64;
        self.preparer.get_or_insert_with(Preparer::start).send(records);
    }

    /// Validates every buffered and pending record, in order.
    fn flush_chunk(&mut self) {
        self.send_chunk();
        while let Some((records, prepared)) = self.preparer.as_mut().and_then(Preparer::receive) {
            self.validate_chunk(&records, prepared);
        }
    }

    /// Validates one prepared chunk against the state, in order.
    fn validate_chunk(&mut self, records: &[(u64, Hash)], prepared: Vec<validate::Prepared>) {
        self.pending -= records.len() as u64;
        if self.failure.is_some() {
            return;
        }
        for (&(seq, hash), prepared) in records.iter().zip(prepared) {
            match validate::validate(&self.state, &self.index, prepared) {
                Ok(Verdict::Accept(accepted)) => {
                    let indexed = self.state.apply(
                        seq,
                        &accepted.payload,
                        accepted.payload_digest,
                        accepted.refunded_account.as_deref(),
                    );
                    if let Err(error) = self.index.insert(&accepted.payload.id.0, &indexed) {
                        self.failure = Some(Failure::storage(seq, error.to_string()));
                    }
                }
                Ok(Verdict::Repeat(original)) => {
                    self.failure = Some(Failure::chain(seq, format!("repeats the event at seq {original}")));
                }
                Err(AppendError::Rejected(rejection)) => {
                    self.failure = Some(Failure::chain(seq, format!("{}: {}", rejection.code, rejection.message)));
                }
                Err(AppendError::Storage(error)) => {
                    self.failure = Some(Failure::storage(seq, error.to_string()));
                }
            }
            if self.failure.is_some() {
                return;
            }
            self.last_hash = hash;
            self.frontier.push(hash).expect("a tree of 2^64 leaves is out of reach");
            if self.capture_at == Some(self.frontier.size()) {
                self.captured_root = Some((self.frontier.size(), self.frontier.root()));
            }
        }
        if !self.state.conserves_money() {
            self.failure = Some(Failure::chain(self.state.size.saturating_sub(1), "money is not conserved".into()));
        }
    }

    pub fn finish(mut self) -> (Report, State) {
        self.flush_chunk();
        let report = Report {
            records: self.state.size,
            ledger_id: self.state.ledger_id.clone(),
            last_hash: self.last_hash,
            root: self.frontier.root(),
            captured_root: self.captured_root,
            failure: self.failure,
        };
        (report, self.state)
    }
}

/// Checks a verified chain against a signed checkpoint: the log key's
/// signature (key from genesis), the ledger id, the size (a shorter chain is
/// a truncation) and the root at that size (a different root is a rewritten
/// history). Cosignatures count only from keys registered with the auditor
/// role; `required_cosigners` must all have signed validly.
/// Run `capture_root_at(checkpoint.size)` before feeding records.
pub fn check_checkpoint(
    report: &Report,
    state: &State,
    note_text: &str,
    required_cosigners: &[String],
) -> Result<Vec<String>, Failure> {
    let at_end = |reason: String| Failure::chain(report.records, reason);
    let note = crate::checkpoint::Note::parse(note_text).map_err(|e| at_end(format!("checkpoint: {e}")))?;
    let (log_key_id, log_public_key) =
        state.log_key.clone().ok_or_else(|| at_end("checkpoint: the chain has no genesis".into()))?;
    let mut known: Vec<(String, ed25519_dalek::VerifyingKey)> = Vec::new();
    if let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&log_public_key) {
        known.push((log_key_id.clone(), key));
    }
    for (key_id, key) in &state.keys {
        if key.has_role(crate::payload::Role::Auditor) && key.revoked_at_seq.is_none() {
            if let Ok(verifying) = ed25519_dalek::VerifyingKey::from_bytes(&key.public_key) {
                known.push((key_id.clone(), verifying));
            }
        }
    }
    known.sort_by(|a, b| a.0.cmp(&b.0));
    let verified = crate::checkpoint::verify(&note, &log_key_id, &known)
        .map_err(|e| at_end(format!("checkpoint signature: {e}")))?;
    let checkpoint = verified.checkpoint;
    if checkpoint.ledger_id() != state.ledger_id.as_deref() {
        return Err(at_end(format!("checkpoint is for {:?}, the chain is {:?}", checkpoint.origin, state.ledger_id)));
    }
    if report.records < checkpoint.size {
        return Err(at_end(format!(
            "the chain has {} records but the checkpoint covers {} (truncated)",
            report.records, checkpoint.size
        )));
    }
    match report.captured_root {
        Some((size, root)) if size == checkpoint.size && root == checkpoint.root => {}
        _ => {
            return Err(Failure::chain(
                checkpoint.size.saturating_sub(1),
                format!(
                    "the Merkle root at size {} differs from the checkpoint's (history rewritten)",
                    checkpoint.size
                ),
            ))
        }
    }
    for cosigner in required_cosigners {
        if !verified.signed_by.iter().any(|s| s == cosigner) {
            return Err(at_end(format!("checkpoint lacks a valid signature by the required cosigner {cosigner}")));
        }
    }
    Ok(verified.signed_by)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_verifier_salts_its_keys() {
        // Goal: two verifiers place the same id under different keys, so
        // nobody who writes ids can know in advance where they land.
        let (one, two) = (IdIndex::new(std::env::temp_dir()), IdIndex::new(std::env::temp_dir()));
        assert_ne!(one.salt, two.salt);
        assert_ne!(id_key(&one.salt, "payout-000001"), id_key(&two.salt, "payout-000001"));
        assert_ne!(id_key(&one.salt, "payout-000001"), crate::encoding::sha256(b"payout-000001"));
    }

    #[test]
    fn the_index_gives_back_what_was_put_in() {
        // Goal: the compact index returns each event as it was indexed (with and without an account,
        // texts shared between events), and nothing for ids never put in.
        let scratch = tempfile::tempdir().unwrap();
        let mut index = IdIndex::new(scratch.path().to_path_buf());
        let events: Vec<(String, IndexedEvent)> = (0..50u64)
            .map(|n| {
                let event = IndexedEvent {
                    seq: n * 3,
                    payload_digest: [n as u8; 32],
                    kind: ["payout", "transfer", "expenditure"][n as usize % 3].into(),
                    office: format!("4228{:02}", n % 7),
                    account: (n % 3 != 1).then(|| format!("4228{:02}/dibao", n % 5)),
                    amount_fen: n * 1_000_003,
                };
                (format!("e{n:04}"), event)
            })
            .collect();
        for (id, event) in &events {
            index.insert(id, event).unwrap();
        }
        for (id, event) in &events {
            assert_eq!(index.event(id).unwrap().as_ref(), Some(event), "{id}");
        }
        assert!(index.event("e9999").unwrap().is_none());
        assert!(index.texts.len() < 20, "kinds, offices and accounts are shared: {}", index.texts.len());
    }
}
