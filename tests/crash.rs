//! Crash test: a child process importing a large file is killed (SIGKILL) at
//! random moments; after each kill the reopened ledger verifies and holds a
//! prefix of the input, and re-importing resumes where it stopped.

mod support;

use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use sunledger::ledger::Ledger;
use support::*;

/// Events in the file: enough that an import spans many group commits.
const EVENTS: usize = 30_000;
const KILLS: usize = 6;

fn big_input() -> Vec<String> {
    let mut lines: Vec<String> = vector_lines("envelopes.jsonl")[..9].to_vec();
    for n in 0..EVENTS {
        // Alternate credits and transfers so state (balances) changes with every event.
        let line = if n % 2 == 0 {
            let body = json!({"program": "ranger", "amount_fen": 1000 + n, "budget_ref": format!("b{n}"), "fiscal_year": 2019});
            sign(&payload(&format!("c{n}"), "appropriate", "420000", "2019-01-02", body), &["420000/k1"])
        } else {
            let body =
                json!({"to_office": "422800", "program": "ranger", "amount_fen": 500, "doc_ref": format!("d{n}")});
            sign(&payload(&format!("t{n}"), "transfer", "420000", "2019-01-03", body), &["420000/k1"])
        };
        lines.push(line);
    }
    lines
}

/// Checks the stored ledger is a verified prefix of `lines`; returns its length.
fn check_prefix(data: &std::path::Path, lines: &[String]) -> usize {
    let ledger = Ledger::open(data).expect("the ledger reopens after a kill");
    let size = ledger.head().size as usize;
    assert!(size <= lines.len());
    for record in ledger.store().records_from(0) {
        let record = record.expect("records read back");
        assert_eq!(
            record.envelope_bytes,
            lines[record.seq as usize].as_bytes(),
            "record {} is not input line {}",
            record.seq,
            record.seq + 1
        );
    }
    assert!(ledger.state().conserves_money());
    let expected_transfers = (size.saturating_sub(9) / 2) as u64;
    assert_eq!(ledger.state().balance("422800/ranger"), expected_transfers * 500, "state matches the records");
    drop(ledger);
    let verified = run(&["verify", "--data", data.to_str().unwrap()]);
    assert!(verified.status.success(), "verify after a kill: {}", stdout(&verified));
    size
}

#[test]
fn killed_imports_leave_a_verified_prefix() {
    // Goal: SIGKILL at random points never leaves a torn record or a record without its state.
    let dir = tempfile::tempdir().unwrap();
    let lines = big_input();
    let file = write_lines(dir.path(), "big.jsonl", &lines);
    let data = dir.path().join("data");
    let mut seed = 0x5EED_u64;
    let mut sizes = Vec::new();
    for cycle in 0..KILLS as u64 {
        let mut child = Command::new(bin())
            .args(["import", "--data", data.to_str().unwrap(), &file])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(150 + (seed >> 33) % 900 + cycle * 200);
        let started = Instant::now();
        while started.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        sizes.push(check_prefix(&data, &lines));
    }
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "a later run never loses what an earlier one stored: {sizes:?}");
    let finished = run(&["import", "--data", data.to_str().unwrap(), &file]);
    assert!(finished.status.success(), "{}", stderr(&finished));
    assert_eq!(check_prefix(&data, &lines), lines.len());
    eprintln!("ledger sizes after each kill: {sizes:?}");
}
