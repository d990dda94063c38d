//! The server's flags (SPEC §7), evaluated once per ledger size and, on a
//! large ledger, off the request path.
//!
//! The 17 rules are a pure function of the projections, which change only
//! when records are appended, so one evaluation serves every read until the
//! ledger grows. An evaluation reads the whole ledger under its read lock:
//! ~2 s at 10 M events (BENCHMARKS.md). Done inside a request, that stalled
//! the request, the writer (waiting for the write lock) and, behind the
//! waiting writer, every other reader: std's `RwLock` makes new readers wait
//! for a queued writer.
//!
//! So:
//! - An evaluation that took at most `sync_max` (`FLAGS_SYNC_EVALUATION_MAX`)
//!   is redone by the first read that finds the ledger grown: on such
//!   ledgers the flags are always those of the current size.
//! - A longer one is redone on a background thread, at most once per
//!   `FLAGS_REFRESH_SPACING` of its own durations, while reads get the last
//!   flags with the size they are as of (`Flags::size`; the API and the
//!   audit page say it). The writer waits for a background evaluation
//!   without queueing on the lock (`writer::write_lock`), so reads go on.
//!   The writer is held up at most 1/(spacing + 1) of the time.
//! - The first evaluation: after decoding a snapshot, the server's warm-up
//!   starts one in the background. A read that finds no flags waits for it
//!   once it holds the read lock, and otherwise evaluates itself (so on a
//!   ledger opened by replay the first flags read pays for one evaluation).

use crate::ledger::Ledger;
use crate::rules::Flag;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Evaluations that took at most this long are redone inside the read that
/// finds the ledger grown (the rules take ~0.2 s per million events of
/// province shape, so this is ~250,000 events).
pub const FLAGS_SYNC_EVALUATION_MAX: Duration = Duration::from_millis(50);
/// A background evaluation starts at most once per this many of the last
/// evaluation's durations (one of 2 s: at most one each 40 s).
pub const FLAGS_REFRESH_SPACING: u32 = 20;

/// Flags as of a ledger size.
#[derive(Clone)]
pub struct Flags {
    /// The ledger size (records) the flags were evaluated at.
    pub size: u64,
    pub flags: Arc<Vec<Flag>>,
}

struct Evaluation {
    flags: Flags,
    took: Duration,
    finished: Instant,
}

#[derive(Default)]
struct Slot {
    last: Option<Evaluation>,
    /// When the latest background evaluation started: spacing counts from
    /// it too, so one that fails (a panic) is not retried at once.
    attempted: Option<Instant>,
}

pub struct FlagCache {
    slot: Mutex<Slot>,
    /// A background evaluation is running (set before it takes the read
    /// lock): the writer polls for the write lock meanwhile.
    refreshing: AtomicBool,
    /// A background evaluation holds the read lock and needs nothing more
    /// than the slot's mutex to finish: a read may wait for it.
    evaluating: AtomicBool,
    sync_max: Duration,
}

impl Default for FlagCache {
    fn default() -> FlagCache {
        FlagCache::with_sync_max(FLAGS_SYNC_EVALUATION_MAX)
    }
}

/// Clears a flag when the background evaluation ends, even by a panic.
struct Clears<'a>(&'a AtomicBool);

impl Drop for Clears<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl FlagCache {
    /// A cache that evaluates in the request up to `sync_max` (tests use zero
    /// to take the background path on a small ledger).
    pub fn with_sync_max(sync_max: Duration) -> FlagCache {
        FlagCache {
            slot: Mutex::new(Slot::default()),
            refreshing: AtomicBool::new(false),
            evaluating: AtomicBool::new(false),
            sync_max,
        }
    }

    /// Whether a background evaluation is running.
    pub fn refreshing(&self) -> bool {
        self.refreshing.load(Ordering::Acquire)
    }

    /// The flags for a read of `ledger` (the caller holds `shared`'s read
    /// lock): those of its current size, or, when the last evaluation was
    /// long, the last ones, with a background evaluation started if due.
    pub fn flags(self: &Arc<Self>, shared: &Arc<RwLock<Ledger>>, ledger: &Ledger) -> Flags {
        let size = ledger.head().size;
        let mut slot = self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Nothing yet, and the start-up evaluation is under way with the
        // read lock in hand: wait for it rather than run a second one. Only
        // while it holds the lock: one still waiting for it may be queued
        // behind a writer, which waits for this reader (a deadlock).
        while slot.last.is_none() && self.evaluating.load(Ordering::Acquire) {
            drop(slot);
            std::thread::sleep(Duration::from_millis(5));
            slot = self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let sync_max = self.sync_max;
        match slot.last.as_ref() {
            Some(last) if last.flags.size == size => last.flags.clone(),
            Some(last) if last.took > sync_max => {
                debug_assert!(last.flags.size < size, "flags never come from a larger ledger than the reader's");
                let spacing = last.took * FLAGS_REFRESH_SPACING;
                let due = last.finished.elapsed() >= spacing
                    && slot.attempted.is_none_or(|attempted| attempted.elapsed() >= spacing);
                let flags = last.flags.clone();
                if due && !self.refreshing.swap(true, Ordering::AcqRel) {
                    slot.attempted = Some(Instant::now());
                    self.refresh_in_background(shared);
                }
                flags
            }
            // The mutex is held while evaluating, so concurrent readers of a
            // new size wait for one evaluation instead of each running theirs.
            _ => {
                let evaluation = evaluate(ledger);
                let flags = evaluation.flags.clone();
                slot.last = Some(evaluation);
                flags
            }
        }
    }

    /// Evaluates on a thread of its own unless one is running or the flags
    /// are current (the server's start-up calls this after its warm-up).
    pub fn start_refresh(self: &Arc<Self>, shared: &Arc<RwLock<Ledger>>) {
        if !self.refreshing.swap(true, Ordering::AcqRel) {
            self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).attempted = Some(Instant::now());
            self.refresh_in_background(shared);
        }
    }

    /// `refreshing` is set by the caller.
    fn refresh_in_background(self: &Arc<Self>, shared: &Arc<RwLock<Ledger>>) {
        let (cache, shared) = (Arc::clone(self), Arc::clone(shared));
        let spawned = std::thread::Builder::new().name("flags".into()).spawn(move || {
            let _refreshing = Clears(&cache.refreshing);
            let ledger = shared.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            cache.evaluating.store(true, Ordering::Release);
            // Dropped last (after the slot's guard below), even by a panic.
            let _evaluating = Clears(&cache.evaluating);
            let size = ledger.head().size;
            let lock = || cache.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if lock().last.as_ref().is_some_and(|last| last.flags.size == size) {
                return;
            }
            let evaluation = evaluate(&ledger);
            drop(ledger);
            let mut slot = lock();
            if slot.last.as_ref().is_none_or(|last| last.flags.size <= evaluation.flags.size) {
                slot.last = Some(evaluation);
            }
        });
        if spawned.is_err() {
            self.refreshing.store(false, Ordering::Release);
        }
    }
}

fn evaluate(ledger: &Ledger) -> Evaluation {
    let started = Instant::now();
    let flags = crate::rules::evaluate(ledger.projections(), ledger.state(), super::policy());
    tracing::debug!(size = ledger.head().size, ms = started.elapsed().as_millis() as u64, "flags evaluated");
    Evaluation {
        flags: Flags { size: ledger.head().size, flags: Arc::new(flags) },
        took: started.elapsed(),
        finished: Instant::now(),
    }
}
