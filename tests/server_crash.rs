//! The crash campaign (tools/crash_campaign.rs), short: a few SIGKILL cycles
//! of `sunledger serve` under concurrent clients and of `sunledger import`,
//! through the campaign binary itself. The full campaign (100 cycles each)
//! and its figures are in RELIABILITY.md.

use std::process::Command;
use std::time::{Duration, Instant};

/// Cycles of each campaign in the short run.
const CYCLES: &str = "5";
/// The short run must end well within this (it takes seconds).
const TIME_MAX: Duration = Duration::from_secs(240);

#[test]
fn killed_server_and_import_lose_nothing_acknowledged() {
    // Goal: 5 kills of the server under 3 clients and 5 kills of an import: every acknowledged event is
    // present at its seq with its hash, nothing rejected or unsent is stored, verify and rebuild pass.
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_sunledger-crash-campaign"))
        .args(["--cycles", CYCLES, "--clients", "3", "--kill-ms-max", "600", "--seed", "11"])
        .args(["--import-villages", "16", "--import-households", "40", "--time-limit-secs", "200"])
        .args(["--bin", env!("CARGO_BIN_EXE_sunledger")])
        .output()
        .expect("the campaign runs");
    let text = String::from_utf8_lossy(&output.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the campaign found problems:\n{text}");
    assert!(text.contains("RESULT: pass"));
    assert_eq!(text.matches("events lost: 0").count(), 2, "{text}");
    assert_eq!(text.matches("cycles: 5").count(), 2, "{text}");
    let acknowledged: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("events acknowledged: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("a count of acknowledged events");
    assert!(acknowledged > 0, "the clients got nothing acknowledged: the campaign tested nothing");
    assert!(started.elapsed() < TIME_MAX);
}
