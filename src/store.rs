//! Durable storage behind a small trait, with sled 0.34 as the embedded
//! default.
//!
//! Owns: key layout, atomic commits and durability. Invariant: `commit`
//! makes a whole group (records, event index, Merkle nodes, head,
//! checkpoint) durable — the records in `records.log`, the rest in one
//! atomic sled batch whose head commits them — and returns only after both
//! are flushed to disk, so after a crash the store holds a prefix of
//! acknowledged groups, 100% or 0% of each. The state snapshot is not part of that batch: it is
//! an accelerator written after the flush (below), never the truth.
//! Never: judges events (that is `validate`).
//!
//! Records (the envelopes as received) live in an append-only file beside
//! sled, not in sled (`RecordLog`): sled 0.34 kept 2.6 bytes on disk for
//! every byte written to it, which put a province ledger at 3.2 times its
//! envelopes' size. The write path of one group:
//!   1. append the group's records to `records.log` and `fdatasync` it;
//!   2. write the records' places in the file, the group's event-index
//!      entries, Merkle nodes, head and checkpoint in one sled batch and
//!      flush it.
//!
//! The head in sled is the commit point: it names how many records the
//! chain holds, and the places say where they end. At open, anything in the
//! file past the last committed record is the tail of a group that never
//! committed (a crash between 1 and 2) and is cut off; a file shorter than
//! that is damage, and the open fails rather than serve a shorter chain.
//! Readers see only records whose group's batch sled has taken
//! (`RecordLog::visible`); a place read from sled that points past them is
//! damage, reported as such. An open also checks that the head's last record
//! is in the file with the head's hash before it cuts anything.
//!
//! `records.log`: for each record, i64be(recorded_at_ms) ‖ hash(32) ‖
//! envelope bytes as received, back to back, nothing between them.
//!
//! Key layout in sled (one tree, prefixes keep kinds apart):
//!   `r` u64be(seq)        → (stores written before 2026-12-01 only, which keep their records here: `RecordsIn::Sled`)
//!                           i64be(recorded_at_ms) ‖ hash(32) ‖ envelope bytes as received
//!   `x` u64be(seq / 64)   → where that chunk of 64 records starts in `records.log`, then where each of its records
//!                           ends: u64le each (`Ends`); the last chunk is rewritten as records join it
//!   `e` event id          → `IndexedEvent`, binary (`encode_event`; JSON in stores written before 2026-11-30)
//!   `h`                   → JSON `Head`
//!   `m` u8(level) u64be(i)→ Merkle interior node hash (32), level ≥ 4 (`ledger::MERKLE_STORED_LEVEL_MIN`; lower ones are recomputed from the records' hashes)
//!   `c` u64be(size)       → a signed checkpoint note issued at that size
//!   `s`                   → (stores written before 2026-11-30) the old snapshot: never read (it lacks
//!                           the chain hash the ledger checks, so it would be refused anyway), removed by the next snapshot
//!
//! The snapshot of the folded state lives in its own file,
//! `state-snapshot.bin` (binary since 2026-11-30; `ledger::Snapshot`) beside sled's files, replaced atomically (write a
//! temporary file, fsync, rename, fsync the directory) after the group that
//! carries it is durable. It used to be a sled value: sled 0.34 stores large
//! values as blob files, and after SIGKILLs it left the superseded snapshot
//! blobs behind (11.4 GB for a 61 MB ledger in the crash campaign,
//! RELIABILITY.md). A crash between the flush and the rename leaves the
//! previous snapshot, which the ledger accepts only if it matches the chain
//! (size and hash), then replays the records after it.

use crate::encoding::Hash;
use crate::state::IndexedEvent;
use crate::validate::StorageError;
use serde::{Deserialize, Serialize};
use std::path::Path;

const RECORD_PREFIX: u8 = b'r';
const EVENT_PREFIX: u8 = b'e';
const HEAD_KEY: &[u8] = b"h";
/// Where snapshots were kept before they moved to `SNAPSHOT_FILE`; only
/// deleted now, to free its space.
const LEGACY_SNAPSHOT_KEY: &[u8] = b"s";
/// The snapshot file in the store's directory, and its temporary name.
pub const SNAPSHOT_FILE: &str = "state-snapshot.bin";
const SNAPSHOT_TEMPORARY_FILE: &str = "state-snapshot.bin.tmp";
/// Where a snapshot found damaged is set aside (for a look; never read).
pub const DAMAGED_SNAPSHOT_FILE: &str = "state-snapshot.bin.damaged";
/// The JSON snapshot of earlier versions: never read (the ledger replays
/// instead), removed when the first binary snapshot is in place.
const LEGACY_SNAPSHOT_FILE: &str = "state-snapshot.json";
const MERKLE_PREFIX: u8 = b'm';
const CHECKPOINT_PREFIX: u8 = b'c';
/// sled page cache. Records are read sequentially and state lives in memory,
/// so a modest cache suffices.
pub const CACHE_BYTES: u64 = 256 * 1024 * 1024;
/// How long `open` waits for another holder of the store's lock.
pub const LOCK_WAIT_MS_MAX: u128 = 3000;

/// The tip of the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub size: u64,
    pub last_hash: Hash,
    pub last_recorded_at_ms: i64,
}

/// One stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: u64,
    pub recorded_at_ms: i64,
    pub hash: Hash,
    pub envelope_bytes: Vec<u8>,
}

/// Everything one commit writes, atomically.
#[derive(Default)]
pub struct CommitGroup {
    pub records: Vec<StoredRecord>,
    pub events: Vec<(String, IndexedEvent)>,
    pub merkle_nodes: Vec<(u32, u64, Hash)>,
    pub head: Option<Head>,
    pub snapshot: Option<Vec<u8>>,
    pub checkpoint: Option<(u64, Vec<u8>)>,
}

/// The bytes of a stored snapshot: read into memory, or mapped from its file.
pub enum SnapshotBytes {
    Owned(Vec<u8>),
    /// The snapshot file mapped read-only: a reopen decodes straight from the
    /// page cache instead of first copying the whole file (0.85 GB at 10 M
    /// events) into fresh memory, whose page faults dominate a reopen here.
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for SnapshotBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SnapshotBytes::Owned(bytes) => bytes,
            SnapshotBytes::Mapped(map) => map,
        }
    }
}

/// A ledger store. Implementations must make `commit` atomic and durable.
pub trait Store: Send + Sync {
    fn head(&self) -> Result<Option<Head>, StorageError>;
    fn record(&self, seq: u64) -> Result<Option<StoredRecord>, StorageError>;
    /// Records with seq ≥ `from`, in order.
    fn records_from(&self, from: u64) -> Box<dyn Iterator<Item = Result<StoredRecord, StorageError>> + '_>;
    fn event(&self, id: &str) -> Result<Option<IndexedEvent>, StorageError>;
    fn snapshot(&self) -> Result<Option<SnapshotBytes>, StorageError>;
    /// Sets the stored snapshot aside so the next open replays the chain
    /// instead (a household in it was found damaged: `crate::households`).
    /// Best effort: the snapshot is a cache, the records are the truth.
    fn discard_snapshot(&self) {}
    fn merkle_node(&self, level: u32, index: u64) -> Result<Option<Hash>, StorageError>;
    fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError>;
    /// Writes the group atomically and returns once it is durable.
    fn commit(&self, group: CommitGroup) -> Result<(), StorageError>;
    /// Bytes the store occupies on disk, if known.
    fn size_on_disk(&self) -> Option<u64>;
}

fn storage(error: impl std::fmt::Display) -> StorageError {
    StorageError(error.to_string())
}

fn record_key(seq: u64) -> [u8; 9] {
    let mut key = [RECORD_PREFIX; 9];
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn event_key(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 1);
    key.push(EVENT_PREFIX);
    key.extend_from_slice(id.as_bytes());
    key
}

fn merkle_key(level: u32, index: u64) -> [u8; 10] {
    let mut key = [MERKLE_PREFIX; 10];
    key[1] = level as u8;
    key[2..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Bytes of a record before its envelope: recorded_at_ms and hash.
const RECORD_HEADER_BYTES: usize = 40;

/// A record as stored, in a sled value (`r` keys) or in `records.log`:
/// i64be(recorded_at_ms) ‖ hash(32) ‖ envelope bytes as received.
fn encode_record_into(record: &StoredRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&record.recorded_at_ms.to_be_bytes());
    out.extend_from_slice(&record.hash);
    out.extend_from_slice(&record.envelope_bytes);
}

/// What `encode_record_into` wrote, as record `seq`.
fn decode_record(seq: u64, bytes: &[u8]) -> Result<StoredRecord, StorageError> {
    if bytes.len() < RECORD_HEADER_BYTES {
        return Err(damaged_record(seq));
    }
    let recorded_at_ms = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let hash: Hash = bytes[8..RECORD_HEADER_BYTES].try_into().expect("32 bytes");
    Ok(StoredRecord { seq, recorded_at_ms, hash, envelope_bytes: bytes[RECORD_HEADER_BYTES..].to_vec() })
}

/// A sled `r` entry (stores of the old layout).
fn decode_sled_record(key: &[u8], value: &[u8]) -> Result<StoredRecord, StorageError> {
    let seq: [u8; 8] = key.get(1..).and_then(|seq| seq.try_into().ok()).ok_or_else(|| storage("damaged record key"))?;
    decode_record(u64::from_be_bytes(seq), value)
}

fn damaged_record(seq: u64) -> StorageError {
    StorageError(format!("damaged record {seq}"))
}

/// Version tag of the binary event-index value (a JSON value starts with `{`).
const EVENT_VALUE_V1: u8 = 1;
/// Marks an absent account in the binary event-index value.
const NO_ACCOUNT: u8 = 0xFF;

/// The event index value: tag 1, seq (u64 BE), payload digest (32), kind,
/// office (each u8 length + UTF-8), account (u8 length + UTF-8, or 0xFF for
/// none), amount (u64 BE). About 70 bytes where the JSON took ~250 (the
/// digest as an array of 32 numbers), and no JSON parse on every lookup.
/// Ids are at most 64 characters (SPEC §3), an account 129.
pub fn encode_event(event: &IndexedEvent) -> Vec<u8> {
    let mut value = Vec::with_capacity(64 + event.kind.len() + event.office.len());
    value.push(EVENT_VALUE_V1);
    value.extend_from_slice(&event.seq.to_be_bytes());
    value.extend_from_slice(&event.payload_digest);
    let mut text = |text: &str| {
        // The parser bounds every id to 64 bytes (SPEC §3), so a length byte
        // below NO_ACCOUNT always holds it.
        let length = u8::try_from(text.len())
            .ok()
            .filter(|l| *l < NO_ACCOUNT)
            .expect("ids are at most 64 bytes, accounts 129 (SPEC §3)");
        value.push(length);
        value.extend_from_slice(text.as_bytes());
    };
    text(&event.kind);
    text(&event.office);
    match &event.account {
        Some(account) => text(account),
        None => value.push(NO_ACCOUNT),
    }
    value.extend_from_slice(&event.amount_fen.to_be_bytes());
    value
}

/// Reads what `encode_event` wrote, or the JSON of older stores.
pub fn decode_event(value: &[u8]) -> Result<IndexedEvent, StorageError> {
    if value.first() == Some(&b'{') {
        return serde_json::from_slice(value).map_err(|e| storage(format!("damaged event index: {e}")));
    }
    let damaged = || storage("damaged event index entry");
    let mut rest = value.strip_prefix(&[EVENT_VALUE_V1]).ok_or_else(damaged)?;
    let mut take = |n: usize| -> Result<&[u8], StorageError> {
        let (head, tail) = rest.split_at_checked(n).ok_or_else(damaged)?;
        rest = tail;
        Ok(head)
    };
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| damaged());
    let seq = u64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
    let payload_digest: Hash = take(32)?.try_into().expect("32 bytes");
    let kind_len = usize::from(take(1)?[0]);
    let kind = text(take(kind_len)?)?;
    let office_len = usize::from(take(1)?[0]);
    let office = text(take(office_len)?)?;
    let account = match take(1)?[0] {
        NO_ACCOUNT => None,
        len => Some(text(take(usize::from(len))?)?),
    };
    let amount_fen = u64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
    if !rest.is_empty() {
        return Err(damaged());
    }
    Ok(IndexedEvent { seq, payload_digest, kind, office, account, amount_fen })
}

/// The file of records, beside sled's files.
pub const RECORD_LOG_FILE: &str = "records.log";
/// Records whose places one sled value holds (`ENDS_PREFIX`).
const ENDS_PER_CHUNK: u64 = 64;
const ENDS_PREFIX: u8 = b'x';

fn ends_key(chunk: u64) -> [u8; 9] {
    let mut key = [ENDS_PREFIX; 9];
    key[1..].copy_from_slice(&chunk.to_be_bytes());
    key
}

/// Where a store keeps its records.
enum RecordsIn {
    /// Under sled's `r` keys: stores written before 2026-12-01. They keep
    /// doing so (no migration), so an old store opens as it was.
    Sled,
    Log(RecordLog),
}

/// The places of one chunk's records in the log: where its first record
/// starts, then where each record ends. Stored as u64le values, back to
/// back, under `x` u64be(seq / ENDS_PER_CHUNK).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Ends {
    start: u64,
    ends: Vec<u64>,
}

impl Ends {
    fn decode(chunk: u64, value: &[u8]) -> Result<Ends, StorageError> {
        let words: Vec<u64> =
            value.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes"))).collect();
        let sorted = words.windows(2).all(|pair| pair[0] <= pair[1]);
        if value.len() % 8 != 0 || words.len() < 2 || words.len() as u64 > ENDS_PER_CHUNK + 1 || !sorted {
            return Err(storage(format!("damaged record places (chunk {chunk})")));
        }
        Ok(Ends { start: words[0], ends: words[1..].to_vec() })
    }

    fn encode(&self) -> Vec<u8> {
        std::iter::once(self.start).chain(self.ends.iter().copied()).flat_map(u64::to_le_bytes).collect()
    }

    /// The span in the log of the chunk's `i`th record.
    fn span(&self, i: usize) -> Option<(u64, u64)> {
        let start = if i == 0 { self.start } else { *self.ends.get(i - 1)? };
        Some((start, *self.ends.get(i)?))
    }
}

/// The append-only record file (module docs: the write path).
struct RecordLog {
    db: sled::Db,
    log: std::fs::File,
    /// Records of committed groups: what readers may see.
    visible: std::sync::atomic::AtomicU64,
    /// Where the visible records end in the file (stored before `visible`
    /// grows): no place read from sled may point past it.
    visible_bytes: std::sync::atomic::AtomicU64,
    /// The writer's view of the file.
    tail: std::sync::Mutex<LogTail>,
}

#[derive(Default)]
struct LogTail {
    /// Records of committed groups, and where the last of them ends.
    records: u64,
    bytes: u64,
    /// The places of the records in the last, unfinished chunk.
    open_chunk: Ends,
    /// A commit failed after writing to the file: cut it back to the
    /// committed length before the next write.
    dirty: bool,
}

impl RecordLog {
    /// Opens (creating it if absent) the file in `directory` and cuts off
    /// whatever lies past the records the head names, once the last of them
    /// is found in the file with the head's hash.
    fn open(db: sled::Db, directory: &Path, head: &Head) -> Result<RecordLog, StorageError> {
        let committed = head.size;
        let path = directory.join(RECORD_LOG_FILE);
        let existed = path.exists();
        let log = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| storage(format!("cannot open {}: {e}", path.display())))?;
        if !existed {
            // The new file's name must survive a crash too.
            std::fs::File::open(directory).and_then(|d| d.sync_all()).map_err(storage)?;
        }
        let record_log = RecordLog {
            db,
            log,
            visible: 0.into(),
            visible_bytes: 0.into(),
            // Set below, once the head's last record is found in the file.
            tail: std::sync::Mutex::default(),
        };
        let (bytes, open_chunk) = match committed {
            0 => (0, Ends::default()),
            n => {
                let missing =
                    || storage(format!("the places of records before {n}, which the head names, are missing"));
                let chunk = record_log.chunk((n - 1) / ENDS_PER_CHUNK)?.ok_or_else(missing)?;
                let last = ((n - 1) % ENDS_PER_CHUNK) as usize;
                // The chunk and the head are written in one batch, so it holds
                // exactly the places up to the head's last record.
                if chunk.ends.len() != last + 1 {
                    return Err(storage(format!(
                        "damaged record places: the chunk of record {} holds {} places, the head names {}",
                        n - 1,
                        chunk.ends.len(),
                        last + 1
                    )));
                }
                let bytes = chunk.ends[last];
                let open = if n % ENDS_PER_CHUNK == 0 { Ends { start: bytes, ends: Vec::new() } } else { chunk };
                (bytes, open)
            }
        };
        let log_length = record_log.log.metadata().map(|m| m.len()).map_err(storage)?;
        if log_length < bytes {
            return Err(storage(format!(
                "{RECORD_LOG_FILE} holds {log_length} bytes but its {committed} committed records end at {bytes}: acknowledged records are missing"
            )));
        }
        let mut tail = LogTail { records: committed, bytes, open_chunk, dirty: true };
        record_log.visible_bytes.store(bytes, std::sync::atomic::Ordering::Release);
        record_log.visible.store(committed, std::sync::atomic::Ordering::Release);
        // Nothing is cut unless the head's last record is where its places say.
        if let Some(last) = committed.checked_sub(1) {
            let stored = record_log.record(last)?.ok_or_else(|| damaged_record(last))?;
            if stored.hash != head.last_hash {
                return Err(storage(format!(
                    "{RECORD_LOG_FILE} does not match the head: record {last} has another hash than the head names"
                )));
            }
        }
        record_log.cut_back(&mut tail)?;
        *record_log.tail.lock().unwrap_or_else(|e| e.into_inner()) = tail;
        Ok(record_log)
    }

    fn chunk(&self, chunk: u64) -> Result<Option<Ends>, StorageError> {
        match self.db.get(ends_key(chunk)).map_err(storage)? {
            None => Ok(None),
            Some(value) => Ends::decode(chunk, &value).map(Some),
        }
    }

    /// Cuts the file back to the committed records when a crash or a
    /// failed commit left more behind.
    fn cut_back(&self, tail: &mut LogTail) -> Result<(), StorageError> {
        if tail.dirty {
            self.log.set_len(tail.bytes).map_err(storage)?;
            tail.dirty = false;
        }
        Ok(())
    }

    fn visible(&self) -> u64 {
        self.visible.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The length of the span `[start, end)` read for record `seq`, once it
    /// is known to lie within the visible records (a damaged place must give
    /// an error, not a huge allocation or a read of another record).
    fn length(&self, seq: u64, start: u64, end: u64) -> Result<usize, StorageError> {
        let limit = self.visible_bytes.load(std::sync::atomic::Ordering::Acquire);
        match end.checked_sub(start) {
            Some(length) if end <= limit => usize::try_from(length).map_err(|_| damaged_record(seq)),
            _ => Err(damaged_record(seq)),
        }
    }

    fn record(&self, seq: u64) -> Result<Option<StoredRecord>, StorageError> {
        use std::os::unix::fs::FileExt as _;
        if seq >= self.visible() {
            return Ok(None);
        }
        let missing = || storage(format!("the place of record {seq} is missing"));
        let chunk = self.chunk(seq / ENDS_PER_CHUNK)?.ok_or_else(missing)?;
        let (start, end) = chunk.span((seq % ENDS_PER_CHUNK) as usize).ok_or_else(missing)?;
        let mut bytes = vec![0; self.length(seq, start, end)?];
        self.log.read_exact_at(&mut bytes, start).map_err(storage)?;
        decode_record(seq, &bytes).map(Some)
    }

    /// Appends the group's records to the file and syncs it (module docs,
    /// step 1), and adds their places to `batch` (step 2). They become
    /// visible with `publish`, once the batch is applied.
    fn append(
        &self,
        tail: &mut LogTail,
        records: &[StoredRecord],
        batch: &mut sled::Batch,
    ) -> Result<LogTail, StorageError> {
        use std::os::unix::fs::FileExt as _;
        self.cut_back(tail)?;
        let mut bytes = Vec::with_capacity(records.iter().map(|r| RECORD_HEADER_BYTES + r.envelope_bytes.len()).sum());
        let mut chunk = tail.open_chunk.clone();
        for (seq, record) in (tail.records..).zip(records) {
            if record.seq != seq {
                return Err(storage(format!("record {} appended where {seq} is due", record.seq)));
            }
            encode_record_into(record, &mut bytes);
            let end = tail.bytes + bytes.len() as u64;
            chunk.ends.push(end);
            if chunk.ends.len() as u64 == ENDS_PER_CHUNK || seq + 1 == tail.records + records.len() as u64 {
                batch.insert(&ends_key(seq / ENDS_PER_CHUNK)[..], chunk.encode());
            }
            if chunk.ends.len() as u64 == ENDS_PER_CHUNK {
                chunk = Ends { start: end, ends: Vec::new() };
            }
        }
        tail.dirty = true;
        self.log.write_all_at(&bytes, tail.bytes).map_err(storage)?;
        self.log.sync_data().map_err(storage)?;
        Ok(LogTail {
            records: tail.records + records.len() as u64,
            bytes: tail.bytes + bytes.len() as u64,
            open_chunk: chunk,
            dirty: false,
        })
    }

    fn publish(&self, tail: &mut LogTail, committed: LogTail) {
        *tail = committed;
        self.visible_bytes.store(tail.bytes, std::sync::atomic::Ordering::Release);
        self.visible.store(tail.records, std::sync::atomic::Ordering::Release);
    }

    fn size_on_disk(&self) -> u64 {
        self.log.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

/// Records with seq ≥ `next` that were visible when the read began, a
/// chunk at a time (one sled read of their places, one read of the log).
struct LogRecords<'a> {
    log: &'a RecordLog,
    next: u64,
    end: u64,
    batch: std::collections::VecDeque<StoredRecord>,
    failed: bool,
}

/// The records of a store that keeps them in sled (written before
/// `records.log`), from `next` up to the head's size without a gap: a
/// missing value is an error, never a shorter or gapped chain, as
/// `LogRecords` guarantees by reading the places the head commits.
struct SledRecords {
    values: sled::Iter,
    next: u64,
    end: u64,
    failed: bool,
}

impl Iterator for SledRecords {
    type Item = Result<StoredRecord, StorageError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.end {
            return None;
        }
        let missing = |what: String| storage(format!("stored record {} is missing ({what})", self.next));
        let record = match self.values.next() {
            None => Err(missing(format!("the head names {}", self.end))),
            Some(item) => {
                item.map_err(storage).and_then(|(key, value)| decode_sled_record(&key, &value)).and_then(|record| {
                    if record.seq == self.next {
                        Ok(record)
                    } else {
                        Err(missing(format!("found seq {}", record.seq)))
                    }
                })
            }
        };
        self.failed = record.is_err();
        self.next += 1;
        Some(record)
    }
}

impl LogRecords<'_> {
    fn fill(&mut self) -> Result<(), StorageError> {
        use std::os::unix::fs::FileExt as _;
        let number = self.next / ENDS_PER_CHUNK;
        let missing = || storage(format!("the places of records from {} are missing", self.next));
        let chunk = self.log.chunk(number)?.ok_or_else(missing)?;
        let first = (self.next % ENDS_PER_CHUNK) as usize;
        let last = (chunk.ends.len()).min((self.end - number * ENDS_PER_CHUNK) as usize);
        if last <= first {
            return Err(missing());
        }
        let (start, _) = chunk.span(first).ok_or_else(missing)?;
        let (_, stop) = chunk.span(last - 1).ok_or_else(missing)?;
        let mut bytes = vec![0; self.log.length(self.next, start, stop)?];
        self.log.log.read_exact_at(&mut bytes, start).map_err(storage)?;
        for i in first..last {
            let seq = number * ENDS_PER_CHUNK + i as u64;
            let (from, to) = chunk.span(i).ok_or_else(missing)?;
            // Places are in order (`Ends::decode`), so `start <= from <= to`.
            let part = bytes.get((from - start) as usize..(to - start) as usize).ok_or_else(|| damaged_record(seq))?;
            self.batch.push_back(decode_record(seq, part)?);
        }
        self.next = number * ENDS_PER_CHUNK + last as u64;
        Ok(())
    }
}

impl Iterator for LogRecords<'_> {
    type Item = Result<StoredRecord, StorageError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.batch.is_empty() && self.next < self.end && !self.failed {
            if let Err(error) = self.fill() {
                self.failed = true;
                return Some(Err(error));
            }
        }
        self.batch.pop_front().map(Ok)
    }
}

/// sled 0.34.7 in a local directory, the record file and the snapshot file
/// beside it.
pub struct SledStore {
    db: sled::Db,
    records: RecordsIn,
    directory: std::path::PathBuf,
}

impl SledStore {
    pub fn open(directory: &Path) -> Result<SledStore, StorageError> {
        // Another process (or a just-dropped handle whose flusher thread is
        // still finishing) may hold sled's file lock for a moment: wait a
        // bounded time for it rather than fail at once.
        let started = std::time::Instant::now();
        loop {
            let opened =
                sled::Config::new().path(directory).cache_capacity(CACHE_BYTES).mode(sled::Mode::HighThroughput).open();
            match opened {
                Ok(db) => return SledStore::with_db(db, directory),
                Err(sled::Error::Io(error))
                    if error.to_string().contains("lock") && started.elapsed().as_millis() < LOCK_WAIT_MS_MAX =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(error) => {
                    return Err(StorageError(format!("cannot open the store in {}: {error}", directory.display())))
                }
            }
        }
    }
}

impl SledStore {
    fn with_db(db: sled::Db, directory: &Path) -> Result<SledStore, StorageError> {
        let records_in_sled = db.scan_prefix([RECORD_PREFIX]).next().is_some();
        let records = if records_in_sled {
            RecordsIn::Sled
        } else {
            let head = match db.get(HEAD_KEY).map_err(storage)? {
                None => Head::default(),
                Some(bytes) => {
                    serde_json::from_slice::<Head>(&bytes).map_err(|e| storage(format!("damaged head: {e}")))?
                }
            };
            RecordsIn::Log(RecordLog::open(db.clone(), directory, &head)?)
        };
        Ok(SledStore { db, records, directory: directory.to_path_buf() })
    }

    /// Replaces the snapshot file atomically: temporary file, fsync, rename,
    /// fsync of the directory (so the rename itself survives a crash).
    fn write_snapshot(&self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        let temporary = self.directory.join(SNAPSHOT_TEMPORARY_FILE);
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, self.directory.join(SNAPSHOT_FILE))?;
        std::fs::File::open(&self.directory)?.sync_all()?;
        match std::fs::remove_file(self.directory.join(LEGACY_SNAPSHOT_FILE)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

impl Store for SledStore {
    fn head(&self) -> Result<Option<Head>, StorageError> {
        match self.db.get(HEAD_KEY).map_err(storage)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| storage(format!("damaged head: {e}"))),
        }
    }

    fn record(&self, seq: u64) -> Result<Option<StoredRecord>, StorageError> {
        if let RecordsIn::Log(log) = &self.records {
            return log.record(seq);
        }
        let key = record_key(seq);
        match self.db.get(key).map_err(storage)? {
            None => Ok(None),
            Some(value) => decode_record(seq, &value).map(Some),
        }
    }

    fn records_from(&self, from: u64) -> Box<dyn Iterator<Item = Result<StoredRecord, StorageError>> + '_> {
        if let RecordsIn::Log(log) = &self.records {
            let end = log.visible();
            let batch = std::collections::VecDeque::new();
            return Box::new(LogRecords { log, next: from.min(end), end, batch, failed: false });
        }
        let end = match self.head() {
            Ok(head) => head.map_or(0, |head| head.size),
            Err(error) => return Box::new(std::iter::once(Err(error))),
        };
        let values = self.db.range(record_key(from).to_vec()..[RECORD_PREFIX + 1].to_vec());
        Box::new(SledRecords { values, next: from, end, failed: false })
    }

    fn event(&self, id: &str) -> Result<Option<IndexedEvent>, StorageError> {
        match self.db.get(event_key(id)).map_err(storage)? {
            None => Ok(None),
            Some(bytes) => decode_event(&bytes).map(Some),
        }
    }

    fn snapshot(&self) -> Result<Option<SnapshotBytes>, StorageError> {
        let file = match std::fs::File::open(self.directory.join(SNAPSHOT_FILE)) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(storage(format!("cannot read {SNAPSHOT_FILE}: {error}"))),
        };
        // SAFETY: a mapping is undefined behaviour if the file changes under
        // it. This file is never written in place: a new snapshot is written
        // to a temporary file and renamed over it (`write_snapshot`), which
        // leaves the mapped inode as it was. Only something outside
        // sunledger truncating it in place could break that (SIGBUS), and
        // the store's directory is sunledger's alone. An empty file cannot
        // be mapped, so it is read instead.
        match unsafe { memmap2::Mmap::map(&file) } {
            Ok(map) => Ok(Some(SnapshotBytes::Mapped(map))),
            Err(_) => match std::fs::read(self.directory.join(SNAPSHOT_FILE)) {
                Ok(bytes) => Ok(Some(SnapshotBytes::Owned(bytes))),
                Err(error) => Err(storage(format!("cannot read {SNAPSHOT_FILE}: {error}"))),
            },
        }
    }

    fn discard_snapshot(&self) {
        let file = self.directory.join(SNAPSHOT_FILE);
        if let Err(error) = std::fs::rename(&file, self.directory.join(DAMAGED_SNAPSHOT_FILE)) {
            tracing::error!(%error, "the damaged state snapshot could not be set aside; remove {} by hand", file.display());
        }
    }

    fn merkle_node(&self, level: u32, index: u64) -> Result<Option<Hash>, StorageError> {
        match self.db.get(merkle_key(level, index)).map_err(storage)? {
            None => Ok(None),
            Some(v) => v.as_ref().try_into().map(Some).map_err(|_| storage("damaged merkle node")),
        }
    }

    fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError> {
        let start = [CHECKPOINT_PREFIX];
        let end = [CHECKPOINT_PREFIX + 1];
        match self.db.range(start.to_vec()..end.to_vec()).next_back() {
            None => Ok(None),
            Some(item) => Ok(Some(item.map_err(storage)?.1.to_vec())),
        }
    }

    fn commit(&self, group: CommitGroup) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        // The writer's hold on the record file, and where it will end once
        // this group commits.
        let mut appended = None;
        match &self.records {
            RecordsIn::Sled => {
                for record in &group.records {
                    let mut value = Vec::with_capacity(RECORD_HEADER_BYTES + record.envelope_bytes.len());
                    encode_record_into(record, &mut value);
                    batch.insert(&record_key(record.seq)[..], value);
                }
            }
            RecordsIn::Log(log) => {
                let mut tail = log.tail.lock().unwrap_or_else(|e| e.into_inner());
                let committed = if group.records.is_empty() {
                    None
                } else {
                    Some(log.append(&mut tail, &group.records, &mut batch)?)
                };
                appended = Some((log, tail, committed));
            }
        }
        for (id, event) in &group.events {
            batch.insert(event_key(id), encode_event(event));
        }
        for (level, index, hash) in &group.merkle_nodes {
            batch.insert(&merkle_key(*level, *index)[..], &hash[..]);
        }
        if let Some(head) = &group.head {
            batch.insert(HEAD_KEY, serde_json::to_vec(head).map_err(storage)?);
        }
        if group.snapshot.is_some() {
            batch.remove(LEGACY_SNAPSHOT_KEY);
        }
        if let Some((size, note)) = group.checkpoint {
            let mut key = vec![CHECKPOINT_PREFIX];
            key.extend_from_slice(&size.to_be_bytes());
            batch.insert(key, note);
        }
        self.db.apply_batch(batch).map_err(storage)?;
        // The batch is in sled's memory now, where reads of the head, the
        // index and the Merkle nodes see it even if the flush below fails;
        // the records it names (already durable in the file) are shown with
        // it, so the store reads as one chain either way. A group whose
        // flush failed is not acknowledged, and after a restart it is there
        // only if sled wrote its batch after all.
        if let Some((log, mut tail, Some(committed))) = appended {
            log.publish(&mut tail, committed);
        }
        self.db.flush().map_err(storage)?;
        if let Some(snapshot) = group.snapshot {
            // The group is durable: a snapshot that cannot be written costs a
            // longer replay at the next open, not the group.
            if let Err(error) = self.write_snapshot(&snapshot) {
                tracing::warn!(%error, "the state snapshot was not written; the next open replays more");
            }
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Option<u64> {
        let snapshot = std::fs::metadata(self.directory.join(SNAPSHOT_FILE)).map(|m| m.len()).unwrap_or(0);
        let records = match &self.records {
            RecordsIn::Sled => 0,
            RecordsIn::Log(log) => log.size_on_disk(),
        };
        self.db.size_on_disk().ok().map(|sled| sled + snapshot + records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(account: Option<&str>) -> IndexedEvent {
        IndexedEvent {
            seq: 1 << 40,
            payload_digest: [200; 32],
            kind: "payout".into(),
            office: "422822".into(),
            account: account.map(str::to_string),
            amount_fen: (1 << 53) - 1,
        }
    }

    #[test]
    fn event_index_values_round_trip_and_old_json_still_reads() {
        // Goal: the binary value decodes to what was encoded; JSON written by older stores still reads;
        // a truncated or padded value is an error, not a wrong event.
        for account in [Some("422822/dibao"), Some(""), None] {
            let value = encode_event(&event(account));
            assert_eq!(decode_event(&value).unwrap(), event(account));
            assert!(decode_event(&value[..value.len() - 1]).is_err());
            assert!(decode_event(&[value.as_slice(), &[0]].concat()).is_err());
        }
        let json = serde_json::to_vec(&event(Some("422822/dibao"))).unwrap();
        assert_eq!(decode_event(&json).unwrap(), event(Some("422822/dibao")));
        assert!(encode_event(&event(Some("422822/dibao"))).len() * 3 < json.len());
        assert!(decode_event(&[]).is_err());
        assert!(decode_event(&[2, 0, 0]).is_err());
    }
}
