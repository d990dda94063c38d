//! Replay verification of a whole chain (an export or a data directory):
//! links, hashes, time order, every signature against the key registry as it
//! stood, every SPEC §4 rule, and the conservation of money.
//!
//! Owns: the verdict "valid, or first bad seq N and why". Streams records in
//! chunks; memory grows with the registry and the event-id index, never with
//! envelope bytes. Signatures of a chunk are checked in parallel batches.

use crate::chain::{record_hash, ExportRecord, GENESIS_PREV};
use crate::encoding::{hex, Hash};
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
    pub leaves: Vec<Hash>,
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
    /// Entry hashes, kept for Merkle checks against checkpoints.
    leaves: Vec<Hash>,
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
            leaves: Vec::new(),
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
            self.leaves.push(record.hash);
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
            leaves: self.leaves,
            failure: self.failure,
        };
        (report, self.state)
    }
}
