//! The single writer: a dedicated thread that owns appends. Concurrent
//! submissions queue here; each turn takes everything queued (up to a group's
//! worth of events), verifies signatures under a read lock, then validates,
//! applies and commits them in ONE durable write under the write lock, and
//! only then answers every submitter (group commit).

use super::flags::FlagCache;
use super::metrics::Metrics;
use crate::ledger::{Ledger, OnRejection, Outcome, GROUP_EVENTS_MAX};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, RwLock, RwLockWriteGuard, TryLockError};
use tokio::sync::oneshot;

/// Submissions waiting for the writer before new ones get 503.
pub const WRITER_QUEUE_MAX: usize = 4096;

/// How often the writer tries the lock while the flags are evaluated.
const WRITE_LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// A submission: envelopes as received, and how to treat a rejection.
pub struct Submission {
    pub envelopes: Vec<Vec<u8>>,
    pub mode: OnRejection,
    pub reply: oneshot::Sender<Result<Vec<Outcome>, String>>,
}

/// The submitting side of the writer.
#[derive(Clone)]
pub struct WriterHandle {
    sender: SyncSender<Submission>,
}

/// Why a submission was not taken.
pub enum SubmitError {
    /// The queue is full: try again later (HTTP 503).
    Busy,
    /// The writer has stopped.
    Stopped,
}

impl WriterHandle {
    pub fn submit(
        &self,
        envelopes: Vec<Vec<u8>>,
        mode: OnRejection,
    ) -> Result<oneshot::Receiver<Result<Vec<Outcome>, String>>, SubmitError> {
        let (reply, receiver) = oneshot::channel();
        match self.sender.try_send(Submission { envelopes, mode, reply }) {
            Ok(()) => Ok(receiver),
            Err(TrySendError::Full(_)) => Err(SubmitError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Stopped),
        }
    }
}

/// Starts the writer thread; it ends when every handle is dropped.
pub fn start(
    ledger: Arc<RwLock<Ledger>>,
    metrics: Arc<Metrics>,
    flags: Arc<FlagCache>,
) -> (WriterHandle, std::thread::JoinHandle<()>) {
    let (sender, receiver) = std::sync::mpsc::sync_channel(WRITER_QUEUE_MAX);
    let thread = std::thread::Builder::new()
        .name("sunledger-writer".into())
        .spawn(move || run(&ledger, &metrics, &flags, &receiver))
        .expect("the writer thread starts");
    (WriterHandle { sender }, thread)
}

fn run(ledger: &RwLock<Ledger>, metrics: &Metrics, flags: &FlagCache, receiver: &Receiver<Submission>) {
    while let Ok(first) = receiver.recv() {
        let mut events = first.envelopes.len();
        let mut turn = vec![first];
        while events < GROUP_EVENTS_MAX {
            match receiver.try_recv() {
                Ok(next) => {
                    events += next.envelopes.len();
                    turn.push(next);
                }
                Err(_) => break,
            }
        }
        write_turn(ledger, metrics, flags, turn);
    }
    // A poisoned lock means a turn panicked part-way: its state is not saved
    // (the next open replays the records instead).
    if !ledger.is_poisoned() {
        if let Err(error) = write_lock(ledger, flags).save_snapshot() {
            tracing::error!(%error, "could not save the state snapshot at shutdown");
        }
    }
}

fn write_turn(ledger: &RwLock<Ledger>, metrics: &Metrics, flags: &FlagCache, turn: Vec<Submission>) {
    let prepared: Vec<_> = {
        let ledger = ledger.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        turn.iter().map(|s| ledger.prepare(&s.envelopes.iter().map(Vec::as_slice).collect::<Vec<_>>())).collect()
    };
    let started = std::time::Instant::now();
    let mut ledger = write_lock(ledger, flags);
    let mut group = ledger.begin_group();
    let mut results = Vec::with_capacity(turn.len());
    let mut failed: Option<String> = None;
    for (submission, prepared) in turn.iter().zip(prepared) {
        match group.submit(prepared, submission.mode) {
            Ok(outcomes) => results.push(outcomes),
            Err(error) => {
                failed = Some(error.to_string());
                break;
            }
        }
    }
    let committed = match failed {
        Some(error) => {
            drop(group);
            Err(error)
        }
        None => group.commit().map_err(|e| e.to_string()),
    };
    drop(ledger);
    match committed {
        Ok(()) => {
            let appended: u64 =
                results.iter().flatten().filter(|o| matches!(o, Outcome::Appended { .. })).count() as u64;
            metrics.commit(appended, started.elapsed().as_micros() as u64);
            for (submission, outcomes) in turn.into_iter().zip(results) {
                record(metrics, &outcomes);
                let _ = submission.reply.send(Ok(outcomes));
            }
        }
        Err(error) => {
            metrics.storage_error();
            tracing::error!(%error, "commit failed; nothing of this group was acknowledged");
            for submission in turn {
                let _ = submission.reply.send(Err(error.clone()));
            }
        }
    }
}

/// The write lock, for the writer and the checkpoints. While the flags are
/// evaluated in the background (a read of seconds on a large ledger,
/// `flags`), this polls for the lock instead of queueing on it: std's
/// `RwLock` makes new readers wait behind a queued writer, so a queued
/// writer would stall every read for as long.
pub fn write_lock<'a>(ledger: &'a RwLock<Ledger>, flags: &FlagCache) -> RwLockWriteGuard<'a, Ledger> {
    while flags.refreshing() {
        match ledger.try_write() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => std::thread::sleep(WRITE_LOCK_POLL),
        }
    }
    ledger.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn record(metrics: &Metrics, outcomes: &[Outcome]) {
    for outcome in outcomes {
        match outcome {
            Outcome::Appended { .. } => metrics.appended(1),
            Outcome::Repeated { .. } => metrics.repeated(1),
            Outcome::Rejected(rejection) => metrics.rejected(rejection.code),
            Outcome::Skipped => {}
        }
    }
}
