//! Settings the binaries make for their whole process at start.

/// Turns transparent huge pages off for this process and its children
/// (Linux: `prctl(PR_SET_THP_DISABLE)`, what mimalloc does when run with
/// `MIMALLOC_ALLOW_THP=0`); elsewhere, nothing.
///
/// Why (BENCHMARKS.md, "Session 9"): with the kernel's THP on `always`, as
/// here, mimalloc's fresh pages came as 2 MiB pages that the kernel zeroes
/// whole on the first touch: 12% of an import's samples were
/// `clear_page_erms`. Off, in alternated runs on
/// this machine: the 43,379-event province import 2.27 → 2.00 s and
/// 183 → 129 MB; on the runner's synthetic chain (medians of three
/// alternated pairs) import +22%, verify +6%, HTTP batches +8%; and no household read over 50 ms on the 10 M
/// ledger under writes (with THP on, 2 of 268,857 in the run beside it,
/// the largest 300 ms).
///
/// Call it first thing in `main`: pages already faulted in stay as they are.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments only
    // and touches no memory of ours; a failure (an old kernel) leaves THP as
    // it was, which is harmless.
    unsafe {
        libc::prctl(
            libc::PR_SET_THP_DISABLE,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
    }
}
