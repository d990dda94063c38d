//! Replay verification of a whole chain (an export or a data directory):
//! links, hashes, time order, every signature against the key registry as it
//! stood, every SPEC §4 rule, and the conservation of money.
//!
//! Owns: the verdict "valid, or first bad seq N and why". Streams records in
//! chunks; memory grows with the registry and the event-id index, never with
//! envelope bytes. Signatures of a chunk are checked in parallel batches.

use crate::chain::{record_hash, ExportRecord, GENESIS_PREV};
use crate::encoding::{hex, Hash};
use crate::merkle::Frontier;
use crate::state::{IndexedEvent, State};
use crate::validate::{self, AppendError, EventIndex, StorageError, Verdict};
use std::collections::HashMap;

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

#[derive(Default)]
struct MemoryIndex {
    events: HashMap<String, IndexedEvent>,
}

impl EventIndex for MemoryIndex {
    fn event(&self, id: &str) -> Result<Option<IndexedEvent>, StorageError> {
        Ok(self.events.get(id).cloned())
    }
}

/// A streaming verifier: feed records in order, then `finish`.
pub struct Verifier {
    state: State,
    index: MemoryIndex,
    last_hash: Hash,
    last_recorded_at_ms: i64,
    chunk: Vec<ExportRecord>,
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
        Verifier {
            state: State::default(),
            index: MemoryIndex::default(),
            last_hash: GENESIS_PREV,
            last_recorded_at_ms: i64::MIN,
            chunk: Vec::new(),
            failure: None,
            frontier: Frontier::new(),
            capture_at: None,
            captured_root: None,
        }
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
        self.state.size + self.chunk.len() as u64
    }

    /// A record that could not even be parsed, at the next position.
    pub fn push_unreadable(&mut self, reason: String) {
        self.flush_chunk();
        if self.failure.is_none() {
            self.failure = Some(Failure { seq: self.expected_seq(), reason });
        }
    }

    /// Structural checks now; rule checks when the chunk is full.
    pub fn push(&mut self, record: ExportRecord) {
        if self.failure.is_some() {
            return;
        }
        let seq = self.expected_seq();
        let (prev, last_time) = match self.chunk.last() {
            Some(last) => (last.hash, last.recorded_at_ms),
            None => (self.last_hash, self.last_recorded_at_ms),
        };
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
                self.failure = Some(Failure { seq, reason });
            }
            return;
        }
        self.chunk.push(record);
        if self.chunk.len() >= VERIFY_CHUNK_RECORDS {
            self.flush_chunk();
        }
    }

    /// Validates the buffered records against the state, in order.
    fn flush_chunk(&mut self) {
        let records = std::mem::take(&mut self.chunk);
        if records.is_empty() || self.failure.is_some() {
            return;
        }
        let envelopes = records.iter().map(|r| r.envelope.clone()).collect();
        let prepared = validate::prepare_batch(&self.state, &self.index, envelopes);
        for (record, prepared) in records.iter().zip(prepared) {
            let seq = record.seq;
            match validate::validate(&self.state, &self.index, prepared) {
                Ok(Verdict::Accept(accepted)) => {
                    let indexed = self.state.apply(
                        seq,
                        &accepted.payload,
                        accepted.payload_digest,
                        accepted.refunded_account.as_deref(),
                    );
                    self.index.events.insert(accepted.payload.id.0.clone(), indexed);
                }
                Ok(Verdict::Repeat(original)) => {
                    self.failure = Some(Failure { seq, reason: format!("repeats the event at seq {original}") });
                }
                Err(AppendError::Rejected(rejection)) => {
                    self.failure = Some(Failure { seq, reason: format!("{}: {}", rejection.code, rejection.message) });
                }
                Err(AppendError::Storage(error)) => {
                    self.failure = Some(Failure { seq, reason: error.to_string() });
                }
            }
            if self.failure.is_some() {
                return;
            }
            self.last_hash = record.hash;
            self.last_recorded_at_ms = record.recorded_at_ms;
            self.frontier.push(record.hash).expect("a tree of 2^64 leaves is out of reach");
            if self.capture_at == Some(self.frontier.size()) {
                self.captured_root = Some((self.frontier.size(), self.frontier.root()));
            }
        }
        if !self.state.conserves_money() {
            self.failure =
                Some(Failure { seq: self.state.size.saturating_sub(1), reason: "money is not conserved".into() });
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
    let at_end = |reason: String| Failure { seq: report.records, reason };
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
            return Err(Failure {
                seq: checkpoint.size.saturating_sub(1),
                reason: format!(
                    "the Merkle root at size {} differs from the checkpoint's (history rewritten)",
                    checkpoint.size
                ),
            })
        }
    }
    for cosigner in required_cosigners {
        if !verified.signed_by.iter().any(|s| s == cosigner) {
            return Err(at_end(format!("checkpoint lacks a valid signature by the required cosigner {cosigner}")));
        }
    }
    Ok(verified.signed_by)
}
