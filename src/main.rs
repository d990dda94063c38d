//! The `sunledger` command: a thin layer over the library (see `cli`).

// mimalloc instead of glibc's malloc: with a large, long-lived heap (a
// 1 M-event import peaks at ~2 GB resident), glibc's allocator spent a
// quarter of a village page's time in `_int_malloc`; mimalloc halved the
// page (p50 6.4 → 3.9 ms) and cut a 1 M-event import from 128 s to 104 s
// (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    sunledger::process::disable_transparent_huge_pages();
    std::process::exit(sunledger::cli::run());
}
