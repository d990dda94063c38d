//! Prometheus text metrics: appends, rejects by code, batch sizes, flush
//! latency. Lock-free counters; rendering reads them without stopping writers.

use crate::error::Code;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the batch-size histogram (events per commit group).
const BATCH_BUCKETS: [u64; 8] = [1, 4, 16, 64, 256, 1024, 4096, 16384];
/// Upper bounds of the commit (flush) latency histogram, in microseconds.
const FLUSH_BUCKETS_MICROS: [u64; 9] = [250, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000, 1_000_000];

struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&self, bounds: &[u64; N], value: u64) {
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            if value <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str, bounds: &[u64; N], scale: f64) {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            let le = *bound as f64 / scale;
            out.push_str(&format!("{name}_bucket{{le=\"{le}\"}} {}\n", bucket.load(Ordering::Relaxed)));
        }
        let count = self.count.load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {count}\n"));
        out.push_str(&format!("{name}_sum {}\n", self.sum.load(Ordering::Relaxed) as f64 / scale));
        out.push_str(&format!("{name}_count {count}\n"));
    }
}

#[derive(Default)]
pub struct Metrics {
    appended: AtomicU64,
    repeated: AtomicU64,
    rejected: [AtomicU64; Code::ALL.len()],
    storage_errors: AtomicU64,
    batch_events: Histogram<8>,
    flush_micros: Histogram<9>,
    checkpoints: AtomicU64,
}

impl Metrics {
    pub fn appended(&self, n: u64) {
        self.appended.fetch_add(n, Ordering::Relaxed);
    }

    pub fn repeated(&self, n: u64) {
        self.repeated.fetch_add(n, Ordering::Relaxed);
    }

    pub fn rejected(&self, code: Code) {
        let index = Code::ALL.iter().position(|c| *c == code).expect("every code is listed");
        self.rejected[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn storage_error(&self) {
        self.storage_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn commit(&self, events: u64, flush_micros: u64) {
        self.batch_events.observe(&BATCH_BUCKETS, events);
        self.flush_micros.observe(&FLUSH_BUCKETS_MICROS, flush_micros);
    }

    pub fn checkpoint(&self) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    /// `households_undecoded`: households still encoded in the snapshot
    /// (the start-up warm-up brings it to 0).
    pub fn render(&self, ledger_size: u64, households_undecoded: u64) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"));
        };
        counter(&mut out, "sunledger_events_appended_total", "Events appended.", self.appended.load(Ordering::Relaxed));
        counter(
            &mut out,
            "sunledger_events_repeated_total",
            "Idempotent resubmissions.",
            self.repeated.load(Ordering::Relaxed),
        );
        out.push_str("# HELP sunledger_events_rejected_total Rejected events by SPEC code.\n");
        out.push_str("# TYPE sunledger_events_rejected_total counter\n");
        for (code, count) in Code::ALL.iter().zip(&self.rejected) {
            out.push_str(&format!(
                "sunledger_events_rejected_total{{code=\"{code}\"}} {}\n",
                count.load(Ordering::Relaxed)
            ));
        }
        counter(
            &mut out,
            "sunledger_storage_errors_total",
            "Failed commits.",
            self.storage_errors.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "sunledger_checkpoints_total",
            "Checkpoints issued.",
            self.checkpoints.load(Ordering::Relaxed),
        );
        out.push_str(&format!(
            "# HELP sunledger_ledger_size Records in the ledger.\n# TYPE sunledger_ledger_size gauge\nsunledger_ledger_size {ledger_size}\n"
        ));
        out.push_str(&format!(
            "# HELP sunledger_households_undecoded Households still encoded in the state snapshot (warm-up brings it to 0).\n# TYPE sunledger_households_undecoded gauge\nsunledger_households_undecoded {households_undecoded}\n"
        ));
        self.batch_events.render(
            &mut out,
            "sunledger_commit_batch_events",
            "Events per commit group.",
            &BATCH_BUCKETS,
            1.0,
        );
        self.flush_micros.render(
            &mut out,
            "sunledger_commit_seconds",
            "Commit (write + fsync) latency.",
            &FLUSH_BUCKETS_MICROS,
            1e6,
        );
        out
    }
}
