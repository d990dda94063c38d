//! The ledger: one writer that validates, chains and durably commits events
//! in groups (group commit), over a [`Store`].
//!
//! Owns: seq and recorded_at assignment, the in-memory folded state, and when
//! it is snapshotted. Invariant: the in-memory state always equals the fold of
//! the durable records; an event is acknowledged only after its group is
//! flushed. Never: accepts an event `validate` refused.

use crate::chain::{record_hash, GENESIS_PREV};
use crate::date::TimestampMs;
use crate::encoding::Hash;
use crate::envelope::Envelope;
use crate::error::Rejection;
use crate::merkle::{Frontier, NodeSource};
use crate::payload::parse_payload;
use crate::projection::Projections;
use crate::state::{IndexedEvent, State};
use crate::store::{CommitGroup, Head, SledStore, SnapshotBytes, Store, StoredRecord};
use crate::validate::{self, AppendError, EventIndex, StorageError, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Events per durable group during bulk import: one flush per group.
pub const GROUP_EVENTS_MAX: usize = 4096;
/// The folded state is snapshotted at most this often (in events), and at
/// every clean close (so a reopen after one replays nothing).
pub const SNAPSHOT_EVERY_EVENTS: u64 = 65_536;
/// A snapshot rewrites the whole fold, so it grows with the ledger (~1.7 GB
/// at 7 M events of province shape). To keep bulk import linear, one is
/// taken only when at least this many times its previous cost has passed
/// since it: snapshots take at most ~1/(1 + this) of the writer's time.
/// What a crash costs is the replay of the records since the last one
/// (no signature checks): at most `SNAPSHOT_EVERY_EVENTS`, or what was
/// written in this many snapshot-times, whichever is more.
pub const SNAPSHOT_SPACING_FACTOR: u32 = 9;

/// The outcome of one submitted envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Appended now at this seq with this entry hash.
    Appended {
        seq: u64,
        hash: [u8; 32],
    },
    /// The same payload bytes were appended before at this seq.
    Repeated {
        seq: u64,
        hash: [u8; 32],
    },
    Rejected(Rejection),
    /// Not applied: another envelope of the same atomic submission was rejected.
    Skipped,
}

/// What happens after a rejection inside a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnRejection {
    /// Stop: later envelopes of the submission are not looked at.
    Stop,
    /// Go on with the next envelope.
    KeepGoing,
    /// All or none: if any envelope is rejected, none is appended.
    Atomic,
}

/// Envelopes parsed and with signatures checked, ready for the writer.
pub struct PreparedEnvelopes {
    count: usize,
    raw: Vec<Vec<u8>>,
    unreadable: Vec<(usize, Rejection)>,
    prepared: Vec<(usize, validate::Prepared)>,
}

impl PreparedEnvelopes {
    /// Parses envelopes and payloads and verifies every signature (in
    /// parallel) against `keys` plus the keys the batch itself registers,
    /// which are returned too. Needs no ledger: a pipelined importer runs it
    /// on the next group while the writer commits the current one.
    pub fn build(
        envelopes: &[&[u8]],
        keys: &dyn validate::KeyLookup,
        index: &dyn EventIndex,
    ) -> (PreparedEnvelopes, HashMap<String, [u8; 32]>) {
        let mut unreadable = Vec::new();
        let mut parsed = Vec::with_capacity(envelopes.len());
        let mut positions = Vec::with_capacity(envelopes.len());
        for (i, bytes) in envelopes.iter().enumerate() {
            match Envelope::parse(bytes) {
                Ok(envelope) => {
                    parsed.push(envelope);
                    positions.push(i);
                }
                Err(rejection) => unreadable.push((i, rejection)),
            }
        }
        let (prepared, new_keys) = validate::prepare_batch_with_keys(keys, index, parsed);
        let prepared = PreparedEnvelopes {
            count: envelopes.len(),
            raw: envelopes.iter().map(|bytes| bytes.to_vec()).collect(),
            unreadable,
            prepared: positions.into_iter().zip(prepared).collect(),
        };
        (prepared, new_keys)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// One commit group in progress: submissions are validated and applied in
/// order; `commit` makes them durable in one write. Dropping it without
/// `commit` is not allowed to happen silently: the state would be ahead of
/// the disk, so `Drop` reloads it.
pub struct GroupWriter<'a> {
    ledger: &'a mut Ledger,
    group: CommitGroup,
    pending: HashMap<String, IndexedEvent>,
}

impl GroupWriter<'_> {
    /// Validates and applies one submission. Outcomes are in input order.
    pub fn submit(&mut self, prepared: PreparedEnvelopes, mode: OnRejection) -> Result<Vec<Outcome>, StorageError> {
        if let Some(error) = &self.ledger.failed {
            return Err(StorageError(format!("an earlier commit failed ({}); reopen the ledger", error.0)));
        }
        if mode == OnRejection::Atomic {
            if let Some(outcomes) = self.atomic_failure(&prepared)? {
                return Ok(outcomes);
            }
        }
        let PreparedEnvelopes { count, raw, unreadable, prepared } = prepared;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; count];
        for (position, rejection) in unreadable {
            outcomes[position] = Some(Outcome::Rejected(rejection));
        }
        let stop_at = outcomes.iter().position(Option::is_some).filter(|_| mode == OnRejection::Stop);
        for (position, item) in prepared {
            if stop_at.is_some_and(|stop| position > stop) {
                break;
            }
            let outcome = self.validate_and_apply(item, &raw[position])?;
            let rejected = matches!(outcome, Outcome::Rejected(_));
            outcomes[position] = Some(outcome);
            if rejected && mode == OnRejection::Stop {
                break;
            }
        }
        let mut outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
        if mode == OnRejection::Stop {
            // Only the first rejection, in input order, is reported.
            if let Some(first) = outcomes.iter().position(|o| matches!(o, Outcome::Rejected(_))) {
                outcomes.truncate(first + 1);
            }
        }
        Ok(outcomes)
    }

    fn validate_and_apply(&mut self, item: validate::Prepared, bytes: &[u8]) -> Result<Outcome, StorageError> {
        let ledger = &mut *self.ledger;
        let index = GroupIndex { store: ledger.store.as_ref(), pending: &self.pending };
        Ok(match validate::validate(&ledger.state, &index, item) {
            Ok(Verdict::Accept(accepted)) => ledger.accept(*accepted, bytes, &mut self.group, &mut self.pending)?,
            Ok(Verdict::Repeat(seq)) => Outcome::Repeated { seq, hash: ledger.hash_of(seq, &self.group)? },
            Err(AppendError::Rejected(rejection)) => Outcome::Rejected(rejection),
            Err(AppendError::Storage(error)) => return Err(error),
        })
    }

    /// Dry run of an atomic submission: validates every envelope against the
    /// state as it would evolve, then undoes it all. Returns the outcomes to
    /// report if any envelope is rejected (the first rejection, the others
    /// `Skipped`), or None if the submission can be applied whole.
    fn atomic_failure(&mut self, prepared: &PreparedEnvelopes) -> Result<Option<Vec<Outcome>>, StorageError> {
        let mut failure: Option<(usize, Rejection)> = prepared.unreadable.first().cloned();
        let mut undo = Vec::new();
        let mut pending = self.pending.clone();
        let state = &mut self.ledger.state;
        for (position, item) in &prepared.prepared {
            if failure.as_ref().is_some_and(|(first, _)| first < position) {
                break;
            }
            let index = GroupIndex { store: self.ledger.store.as_ref(), pending: &pending };
            match validate::validate(state, &index, item.clone()) {
                Ok(Verdict::Accept(accepted)) => {
                    undo.push(state.capture(&accepted.payload, accepted.refunded_account.as_deref()));
                    let seq = state.size;
                    let indexed = state.apply(
                        seq,
                        &accepted.payload,
                        accepted.payload_digest,
                        accepted.refunded_account.as_deref(),
                    );
                    pending.insert(accepted.payload.id.0.clone(), indexed);
                }
                Ok(Verdict::Repeat(_)) => {}
                Err(AppendError::Rejected(rejection)) => {
                    failure = Some((*position, rejection));
                    break;
                }
                Err(AppendError::Storage(error)) => {
                    undo.into_iter().rev().for_each(|u| state.restore(u));
                    return Err(error);
                }
            }
        }
        undo.into_iter().rev().for_each(|u| state.restore(u));
        Ok(failure.map(|(failed, rejection)| {
            let mut rejection = Some(rejection);
            (0..prepared.count)
                .map(|i| {
                    if i == failed {
                        Outcome::Rejected(rejection.take().expect("one failure"))
                    } else {
                        Outcome::Skipped
                    }
                })
                .collect()
        }))
    }

    /// Makes the group durable. Only after this returns may its events be
    /// acknowledged.
    pub fn commit(mut self) -> Result<(), StorageError> {
        let group = std::mem::take(&mut self.group);
        self.pending.clear();
        if group.records.is_empty() {
            return Ok(());
        }
        let result = self.ledger.commit(group);
        if let Err(error) = result {
            self.ledger.failed = Some(error.clone());
            return self.ledger.abandon(error);
        }
        Ok(())
    }
}

impl Drop for GroupWriter<'_> {
    fn drop(&mut self) {
        if !self.group.records.is_empty() {
            // Not committed (an error path): bring the state back to the disk's.
            let _ = self.ledger.abandon::<()>(StorageError("group abandoned".into()));
        }
    }
}

/// The folded state as snapshotted: what a reopen loads instead of
/// replaying the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The hash of the record at `state.size - 1`: ties the snapshot to
    /// this chain (a snapshot file copied from elsewhere, or one newer than
    /// what sled kept after a crash, is not used).
    pub last_hash: Hash,
    pub state: State,
    pub projections: Projections,
}

/// The first bytes of a snapshot file: its format and version (6: a symbol
/// table before the body, each household a length-prefixed byte string so a
/// reopen can leave it undecoded, `crate::households`; 6 added the notice
/// index's projects by place to version 5). Files of other versions (the
/// JSON snapshots of version 2, the postcard ones of versions 3 to 5) are
/// not read; the ledger replays instead and writes this format at its next
/// snapshot.
pub const SNAPSHOT_MAGIC: &[u8] = b"sunledger-snapshot/6\n";

impl Snapshot {
    /// `SNAPSHOT_MAGIC`, the symbol table (the texts of every `Sym` in the
    /// body, once each), then the body: postcard (serde, compact binary:
    /// varints, dates as day numbers, each `Sym` an index into the table).
    /// At 1 M events of province shape the JSON snapshot was 455 MB and
    /// loaded in 1.86 s; version 3 (postcard, no table) was 237 MB and loaded
    /// in 0.66–0.78 s (BENCHMARKS.md has version 4's figures).
    pub fn encode(last_hash: &Hash, state: &State, projections: &Projections) -> Result<Vec<u8>, String> {
        #[derive(Serialize)]
        struct SnapshotRef<'a> {
            last_hash: &'a Hash,
            state: &'a State,
            projections: &'a Projections,
        }
        // The stored households' bytes are copied into this snapshot when its
        // symbol table starts with theirs (crate::households).
        let seed = projections.households.source_table();
        let (body, texts) = crate::sym::with_writing_table_seeded(seed, || {
            postcard::to_stdvec(&SnapshotRef { last_hash, state, projections })
        });
        let body = body.map_err(|e| e.to_string())?;
        let mut bytes = SNAPSHOT_MAGIC.to_vec();
        postcard::to_io(&texts, &mut bytes).map_err(|e| e.to_string())?;
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// Decodes everything now (tests and tools; a ledger uses `decode_lazily`).
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
        let (texts, body) = Snapshot::split(bytes)?;
        let table = crate::sym::table_of(&texts);
        Snapshot::decode_body(body, &table)
    }

    /// Decodes all but the households, which stay in `bytes` (mapped from
    /// the file) until first used (`crate::households`). `discard` is what to
    /// do if one of them turns out damaged then: make the next open replay.
    pub fn decode_lazily(bytes: SnapshotBytes, discard: Box<dyn Fn() + Send + Sync>) -> Result<Snapshot, String> {
        let (table, body_at) = {
            let (texts, body) = Snapshot::split(&bytes)?;
            (crate::sym::table_of(&texts), bytes.len() - body.len())
        };
        let source = std::sync::Arc::new(crate::households::Source::new(bytes, table, discard));
        let body = &source.bytes()[body_at..];
        crate::households::loading(&source, || Snapshot::decode_body(body, source.table()))
    }

    /// The symbol table's texts (borrowed) and the body after them.
    fn split(bytes: &[u8]) -> Result<(Vec<&str>, &[u8]), String> {
        let tabled = bytes.strip_prefix(SNAPSHOT_MAGIC).ok_or("not a sunledger snapshot of this version")?;
        postcard::take_from_bytes::<Vec<&str>>(tabled).map_err(|e| e.to_string())
    }

    fn decode_body(body: &[u8], table: &std::sync::Arc<[crate::sym::Sym]>) -> Result<Snapshot, String> {
        let (snapshot, rest) =
            crate::sym::with_table(table, || postcard::take_from_bytes::<Snapshot>(body)).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!("{} bytes after the snapshot", rest.len()));
        }
        Ok(snapshot)
    }
}

/// Whether a commit should carry a snapshot: `tail` events since the last
/// one, and (time since it, what it cost) if there was one this session.
fn snapshot_due(tail: u64, since_last: Option<(std::time::Duration, std::time::Duration)>) -> bool {
    tail >= SNAPSHOT_EVERY_EVENTS && since_last.is_none_or(|(elapsed, cost)| elapsed >= cost * SNAPSHOT_SPACING_FACTOR)
}

/// The source of `recorded_at`: wall-clock milliseconds by default.
pub type Clock = Box<dyn FnMut() -> TimestampMs + Send + Sync>;

fn system_clock() -> TimestampMs {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as TimestampMs)
}

pub struct Ledger {
    store: std::sync::Arc<dyn Store>,
    state: State,
    projections: Projections,
    head: Head,
    /// The Merkle tree's right edge; its nodes are stored with the records.
    frontier: Frontier,
    snapshot_size: u64,
    /// When the last snapshot was taken and what it cost (encode + write).
    last_snapshot: Option<(std::time::Instant, std::time::Duration)>,
    clock: Clock,
    /// Set when a commit failed. The store may then hold the failed group in
    /// memory without having made it durable (sled keeps an applied batch
    /// whose flush failed, and its I/O errors are sticky), so nothing more is
    /// appended or acknowledged — not even an idempotent repeat — until the
    /// ledger is reopened.
    failed: Option<StorageError>,
}

/// Interior Merkle nodes are stored from this level up (a node of level L
/// covers 2^L records); the ones below are recomputed from the records'
/// hashes when a proof or a root needs them — at most 8 record reads and 7
/// hashes for a level-3 node. Storing every interior node cost one more sled
/// key per event; this stores one per 16 events.
pub const MERKLE_STORED_LEVEL_MIN: u32 = 4;

/// Merkle nodes as the store holds them (committed state only).
pub struct StoreNodes<'a>(pub &'a dyn Store);

impl NodeSource for StoreNodes<'_> {
    type Error = StorageError;

    /// Leaves (level 0) are the records' own entry hashes, so they are not
    /// stored twice; interior nodes from `MERKLE_STORED_LEVEL_MIN` up are
    /// stored when their subtree completes, lower ones are recomputed.
    fn node(&self, level: u32, index: u64) -> Result<crate::merkle::Hash, StorageError> {
        let missing = || StorageError(format!("Merkle node {level}/{index} is missing"));
        match level {
            0 => self.0.record(index)?.map(|record| record.hash).ok_or_else(missing),
            level if level < MERKLE_STORED_LEVEL_MIN => {
                let width = 1usize << level;
                let mut hashes = Vec::with_capacity(width);
                for (expected, record) in ((index << level)..).zip(self.0.records_from(index << level).take(width)) {
                    let record = record?;
                    if record.seq != expected {
                        return Err(missing());
                    }
                    hashes.push(record.hash);
                }
                if hashes.len() != width {
                    return Err(missing());
                }
                while hashes.len() > 1 {
                    hashes = hashes.chunks(2).map(|pair| crate::merkle::node_hash(&pair[0], &pair[1])).collect();
                }
                Ok(hashes[0])
            }
            _ => self.0.merkle_node(level, index)?.ok_or_else(missing),
        }
    }
}

/// Why a proof or root could not be given.
#[derive(Debug)]
pub enum ProofRequestError {
    /// The sizes or index do not describe a tree this ledger has had.
    OutOfRange(String),
    Storage(StorageError),
}

impl std::fmt::Display for ProofRequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProofRequestError::OutOfRange(message) => f.write_str(message),
            ProofRequestError::Storage(error) => error.fmt(f),
        }
    }
}

/// The event index seen by validation inside a group: this group's events
/// first, then the store. With no pending events: the store's index alone.
pub struct GroupIndex<'a> {
    pub store: &'a dyn Store,
    pub pending: &'a HashMap<String, IndexedEvent>,
}

impl EventIndex for GroupIndex<'_> {
    fn event(&self, id: &str) -> Result<Option<IndexedEvent>, StorageError> {
        match self.pending.get(id) {
            Some(event) => Ok(Some(event.clone())),
            None => self.store.event(id),
        }
    }
}

/// The stored snapshot, or an empty fold when there is none, it cannot be
/// read (an older format, damage) or it does not match the stored chain (its
/// size beyond the head, or another hash at its size): the records are the
/// truth, so the ledger then replays them all instead of refusing to open.
fn load_snapshot(store: &std::sync::Arc<dyn Store>, head: &Head) -> Result<Snapshot, StorageError> {
    let empty = || Snapshot { last_hash: GENESIS_PREV, state: State::default(), projections: Projections::default() };
    let Some(bytes) = store.snapshot()? else { return Ok(empty()) };
    let discard = {
        // Weak: loaded projections must not keep the store (and its lock) open.
        let store = std::sync::Arc::downgrade(store);
        Box::new(move || {
            if let Some(store) = store.upgrade() {
                store.discard_snapshot()
            }
        })
    };
    let snapshot = match Snapshot::decode_lazily(bytes, discard) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::warn!(%error, "the state snapshot is unreadable; replaying the whole chain");
            return Ok(empty());
        }
    };
    let size = snapshot.state.size;
    if size == 0 {
        return Ok(snapshot);
    }
    let stored = if size <= head.size { store.record(size - 1)?.map(|r| r.hash) } else { None };
    if stored != Some(snapshot.last_hash) {
        tracing::warn!(
            size,
            head = head.size,
            "the state snapshot does not match the chain; replaying the whole chain"
        );
        return Ok(empty());
    }
    Ok(snapshot)
}

impl Ledger {
    /// Opens (or creates, empty) the sled ledger in `directory`.
    pub fn open(directory: &Path) -> Result<Ledger, StorageError> {
        std::fs::create_dir_all(directory)
            .map_err(|e| StorageError(format!("cannot create {}: {e}", directory.display())))?;
        Ledger::with_store(std::sync::Arc::new(SledStore::open(directory)?))
    }

    /// Loads the latest snapshot and replays the records after it.
    pub fn with_store(store: std::sync::Arc<dyn Store>) -> Result<Ledger, StorageError> {
        let head = store.head()?.unwrap_or_default();
        let snapshot = load_snapshot(&store, &head)?;
        let snapshot_size = snapshot.state.size;
        let mut ledger = Ledger {
            store,
            state: snapshot.state,
            projections: snapshot.projections,
            frontier: Frontier::new(),
            head,
            snapshot_size,
            last_snapshot: None,
            clock: Box::new(system_clock),
            failed: None,
        };
        ledger.frontier = Frontier::from_source(ledger.head.size, &StoreNodes(ledger.store.as_ref()))?;
        ledger.replay_tail()?;
        Ok(ledger)
    }

    /// Re-applies stored records after the snapshot. They were validated when
    /// appended, so only their payloads are parsed: no signature checks.
    fn replay_tail(&mut self) -> Result<(), StorageError> {
        loop {
            let records: Vec<StoredRecord> =
                self.store.records_from(self.state.size).take(GROUP_EVENTS_MAX).collect::<Result<_, _>>()?;
            if records.is_empty() {
                break;
            }
            self.apply_stored(records)?;
        }
        if self.state.size != self.head.size {
            return Err(StorageError(format!(
                "store holds {} records but its head says {}",
                self.state.size, self.head.size
            )));
        }
        Ok(())
    }

    fn apply_stored(&mut self, records: Vec<StoredRecord>) -> Result<(), StorageError> {
        for record in records {
            let damaged = |what: String| StorageError(format!("stored record {} is damaged: {what}", record.seq));
            if record.seq != self.state.size {
                return Err(damaged(format!("expected seq {}", self.state.size)));
            }
            let envelope = Envelope::parse(&record.envelope_bytes).map_err(|e| damaged(e.message))?;
            let payload = parse_payload(&envelope.payload).map_err(|e| damaged(e.message))?;
            let no_pending = HashMap::new();
            let index = GroupIndex { store: self.store.as_ref(), pending: &no_pending };
            let refunded = self.refund_target(&payload, &index, None)?;
            let digest = crate::encoding::sha256(&envelope.payload);
            self.state.apply(record.seq, &payload, digest, refunded.as_ref().map(|s| s.account.as_str()));
            self.projections.apply(record.seq, &payload, &self.state, refunded.as_ref());
        }
        Ok(())
    }

    /// Replaces the wall clock (tests, restores).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn projections(&self) -> &Projections {
        &self.projections
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Validates and appends envelopes (raw bytes as received), then commits
    /// them in one durable write. Returns one outcome per envelope looked at
    /// (with `Stop`, none after the first rejection). On a storage error
    /// nothing of the group is acknowledged.
    pub fn append_group(&mut self, envelopes: &[&[u8]], mode: OnRejection) -> Result<Vec<Outcome>, StorageError> {
        let prepared = self.prepare(envelopes);
        let mut group = self.begin_group();
        let outcomes = group.submit(prepared, mode)?;
        group.commit()?;
        Ok(outcomes)
    }

    /// The expensive, read-only half of appending: parse envelopes and
    /// payloads, and verify every signature in parallel batches. Needs only
    /// `&self`, so a server runs it while readers keep going.
    pub fn prepare(&self, envelopes: &[&[u8]]) -> PreparedEnvelopes {
        let no_pending = HashMap::new();
        let index = GroupIndex { store: self.store.as_ref(), pending: &no_pending };
        PreparedEnvelopes::build(envelopes, &self.state, &index).0
    }

    /// A shared handle on the store, for work beside the writer (a
    /// pipelined preparer's repeat checks, readers).
    pub fn store_handle(&self) -> std::sync::Arc<dyn Store> {
        self.store.clone()
    }

    /// The registered public keys now (a pipelined preparer starts from these).
    pub fn public_keys(&self) -> HashMap<String, [u8; 32]> {
        self.state.keys.iter().map(|(id, key)| (id.clone(), key.public_key)).collect()
    }

    /// Starts a commit group: several submissions, one durable write.
    pub fn begin_group(&mut self) -> GroupWriter<'_> {
        GroupWriter { ledger: self, group: CommitGroup::default(), pending: HashMap::new() }
    }

    fn hash_of(&self, seq: u64, group: &CommitGroup) -> Result<[u8; 32], StorageError> {
        Ok(self.record_in(seq, Some(group))?.hash)
    }

    /// Record `seq`, from the group being written if it is there, else from
    /// the store.
    fn record_in<'g>(
        &self,
        seq: u64,
        group: Option<&'g CommitGroup>,
    ) -> Result<std::borrow::Cow<'g, StoredRecord>, StorageError> {
        if let Some(record) = group.and_then(|g| g.records.iter().find(|r| r.seq == seq)) {
            return Ok(std::borrow::Cow::Borrowed(record));
        }
        let record = self.store.record(seq)?.ok_or_else(|| StorageError(format!("indexed record {seq} is missing")))?;
        Ok(std::borrow::Cow::Owned(record))
    }

    /// For a refund, where it lands (`Projections::spend_of` of the refunded
    /// event, found through `index` and read from `group` or the store);
    /// None for other events.
    fn refund_target(
        &self,
        payload: &crate::payload::Payload,
        index: &GroupIndex<'_>,
        group: Option<&CommitGroup>,
    ) -> Result<Option<crate::projection::Spend>, StorageError> {
        let crate::payload::Body::Refund(refund) = &payload.body else { return Ok(None) };
        let id = refund.ref_event.as_str();
        let event =
            index.event(id)?.ok_or_else(|| StorageError(format!("refunded event {id} is not in the ledger")))?;
        let seq = event.seq;
        let record = self.record_in(seq, group)?;
        let damaged = |what: String| StorageError(format!("refunded record {seq} is damaged: {what}"));
        let envelope = Envelope::parse(&record.envelope_bytes).map_err(|e| damaged(e.message))?;
        let refunded = parse_payload(&envelope.payload).map_err(|e| damaged(e.message))?;
        let spend = self.projections.spend_of(seq, &refunded);
        spend.map(Some).ok_or_else(|| damaged(format!("{id} is not a payout or an expenditure")))
    }

    fn accept(
        &mut self,
        accepted: validate::Accepted,
        bytes: &[u8],
        group: &mut CommitGroup,
        pending: &mut HashMap<String, IndexedEvent>,
    ) -> Result<Outcome, StorageError> {
        // Read before anything changes, so a storage error leaves the state as it was.
        let index = GroupIndex { store: self.store.as_ref(), pending };
        let refunded = self.refund_target(&accepted.payload, &index, Some(group))?;
        let seq = self.state.size;
        let recorded_at_ms = (self.clock)().max(self.head.last_recorded_at_ms);
        let prev = if seq == 0 { GENESIS_PREV } else { self.head.last_hash };
        let hash = record_hash(seq, &prev, recorded_at_ms, &accepted.envelope);
        let indexed =
            self.state.apply(seq, &accepted.payload, accepted.payload_digest, accepted.refunded_account.as_deref());
        self.projections.apply(seq, &accepted.payload, &self.state, refunded.as_ref());
        pending.insert(accepted.payload.id.0.clone(), indexed.clone());
        group.events.push((accepted.payload.id.0, indexed));
        let nodes = self.frontier.push(hash).expect("a tree of 2^64 leaves is out of reach");
        group.merkle_nodes.extend(
            nodes.into_iter().filter(|n| n.level >= MERKLE_STORED_LEVEL_MIN).map(|n| (n.level, n.index, n.hash)),
        );
        group.records.push(StoredRecord { seq, recorded_at_ms, hash, envelope_bytes: bytes.to_vec() });
        self.head = Head { size: seq + 1, last_hash: hash, last_recorded_at_ms: recorded_at_ms };
        Ok(Outcome::Appended { seq, hash })
    }

    fn commit(&mut self, mut group: CommitGroup) -> Result<(), StorageError> {
        group.head = Some(self.head.clone());
        let since_last = self.last_snapshot.map(|(at, cost)| (at.elapsed(), cost));
        let started = std::time::Instant::now();
        if snapshot_due(self.state.size - self.snapshot_size, since_last) {
            group.snapshot = Some(self.snapshot_bytes()?);
        }
        let snapshot_taken = group.snapshot.is_some();
        self.store.commit(group)?;
        if snapshot_taken {
            self.snapshot_size = self.state.size;
            // The group's own flush is in this figure too: a small overestimate.
            self.last_snapshot = Some((std::time::Instant::now(), started.elapsed()));
        }
        Ok(())
    }

    fn snapshot_bytes(&self) -> Result<Vec<u8>, StorageError> {
        Snapshot::encode(&self.head.last_hash, &self.state, &self.projections)
            .map_err(|e| StorageError(format!("snapshot: {e}")))
    }

    /// After a failed write the in-memory state may be ahead of the disk:
    /// reload it from the store so it again equals the durable fold.
    fn abandon<T>(&mut self, error: StorageError) -> Result<T, StorageError> {
        self.head = self.store.head()?.unwrap_or_default();
        let snapshot = load_snapshot(&self.store, &self.head)?;
        self.state = snapshot.state;
        self.projections = snapshot.projections;
        self.frontier = Frontier::from_source(self.head.size, &StoreNodes(self.store.as_ref()))?;
        self.snapshot_size = self.state.size;
        self.replay_tail()?;
        Err(error)
    }

    /// The Merkle root of the first `size` records (RFC 6962 MTH).
    pub fn root_at(&self, size: u64) -> Result<crate::merkle::Hash, ProofRequestError> {
        if size > self.head.size {
            return Err(ProofRequestError::OutOfRange(format!(
                "the ledger holds {} records, not {size}",
                self.head.size
            )));
        }
        if size == self.head.size {
            return Ok(self.frontier.root());
        }
        crate::merkle::root(size, &StoreNodes(self.store.as_ref())).map_err(ProofRequestError::Storage)
    }

    /// RFC 9162 §2.1.3 inclusion proof of record `index` in the tree of `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<crate::merkle::Hash>, ProofRequestError> {
        if size > self.head.size {
            return Err(ProofRequestError::OutOfRange(format!(
                "the ledger holds {} records, not {size}",
                self.head.size
            )));
        }
        crate::merkle::inclusion_proof(index, size, &StoreNodes(self.store.as_ref())).map_err(|e| match e {
            crate::merkle::InclusionProofError::Source(error) => ProofRequestError::Storage(error),
            other => ProofRequestError::OutOfRange(other.to_string()),
        })
    }

    /// RFC 9162 §2.1.4 consistency proof between the trees of `from` and `to`.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<crate::merkle::Hash>, ProofRequestError> {
        if to > self.head.size {
            return Err(ProofRequestError::OutOfRange(format!(
                "the ledger holds {} records, not {to}",
                self.head.size
            )));
        }
        crate::merkle::consistency_proof(from, to, &StoreNodes(self.store.as_ref())).map_err(|e| match e {
            crate::merkle::ConsistencyProofError::Source(error) => ProofRequestError::Storage(error),
            other => ProofRequestError::OutOfRange(other.to_string()),
        })
    }

    /// Why writes are refused until the ledger is reopened: the error of a
    /// commit that failed (`None` while the ledger is writable).
    pub fn write_failure(&self) -> Option<String> {
        self.failed.as_ref().map(|error| error.0.clone())
    }

    /// Signs and stores a checkpoint of the current tree with the ledger's
    /// log key (the one named in genesis); returns the note text.
    pub fn issue_checkpoint(
        &mut self,
        key_id: &str,
        signing_key: &ed25519_dalek::SigningKey,
    ) -> Result<String, String> {
        if let Some(error) = &self.failed {
            // The tree may hold records that were never made durable: never sign it.
            return Err(format!("an earlier commit failed ({}); reopen the ledger", error.0));
        }
        let (log_key_id, log_public_key) = self.state.log_key.clone().ok_or("the ledger has no genesis yet")?;
        if key_id != log_key_id || signing_key.verifying_key().to_bytes() != log_public_key {
            return Err(format!("the key {key_id} is not this ledger's log key {log_key_id}"));
        }
        let ledger_id = self.state.ledger_id.clone().unwrap_or_default();
        let checkpoint = crate::checkpoint::Checkpoint::new(&ledger_id, self.head.size, self.frontier.root());
        let note = crate::checkpoint::sign_checkpoint(&checkpoint, key_id, signing_key).map_err(|e| e.to_string())?;
        let text = note.to_text();
        let group =
            CommitGroup { checkpoint: Some((self.head.size, text.clone().into_bytes())), ..CommitGroup::default() };
        self.store.commit(group).map_err(|e| e.to_string())?;
        Ok(text)
    }

    /// The latest checkpoint note issued, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<String>, StorageError> {
        Ok(self.store.latest_checkpoint()?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Writes a snapshot of the state now (a clean close), so the next open
    /// replays nothing.
    pub fn save_snapshot(&mut self) -> Result<(), StorageError> {
        if let Some(error) = &self.failed {
            return Err(StorageError(format!("an earlier commit failed ({}); no snapshot taken", error.0)));
        }
        if self.snapshot_size == self.state.size {
            return Ok(());
        }
        let group = CommitGroup {
            snapshot: Some(self.snapshot_bytes()?),
            head: Some(self.head.clone()),
            ..CommitGroup::default()
        };
        self.store.commit(group)?;
        self.snapshot_size = self.state.size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn snapshots_are_spaced_by_their_cost() {
        // Goal: a snapshot is due every SNAPSHOT_EVERY_EVENTS events while
        // snapshots are cheap, and no sooner than SNAPSHOT_SPACING_FACTOR
        // times the last one's cost once they are not (the 10 M import spent
        // most of its time rewriting a 2 GB snapshot every 65,536 events).
        let ms = Duration::from_millis;
        assert!(!snapshot_due(SNAPSHOT_EVERY_EVENTS - 1, None));
        assert!(snapshot_due(SNAPSHOT_EVERY_EVENTS, None));
        // Cheap: 5 ms each, 1 s since the last one.
        assert!(snapshot_due(SNAPSHOT_EVERY_EVENTS, Some((ms(1000), ms(5)))));
        assert!(!snapshot_due(SNAPSHOT_EVERY_EVENTS - 1, Some((ms(1000), ms(5)))));
        // Costly: 5 s each; due only after 45 s, however many events came.
        let factor = SNAPSHOT_SPACING_FACTOR;
        assert!(!snapshot_due(10 * SNAPSHOT_EVERY_EVENTS, Some((ms(5000) * factor - ms(1), ms(5000)))));
        assert!(snapshot_due(10 * SNAPSHOT_EVERY_EVENTS, Some((ms(5000) * factor, ms(5000)))));
    }
}
