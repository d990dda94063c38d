//! Commit groups: several submissions per durable write, atomic submissions
//! all-or-none.

mod support;

use serde_json::json;
use sunledger::ledger::{Ledger, OnRejection, Outcome};
use support::*;

fn payout(id: &str, amount: u64) -> String {
    let body = json!({"household_id": "422822101201-0001", "program": "ranger", "amount_fen": amount,
                      "period": "2019", "card_digest": "a".repeat(64)});
    sign(&payload(id, "payout", "422822", "2018-12-22", body), &["422822/k1"])
}

fn vector_library_ledger(dir: &std::path::Path) -> Ledger {
    let mut ledger = Ledger::open(&dir.join("data")).unwrap();
    let lines = vector_lines("envelopes.jsonl");
    let slices: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    ledger.append_group(&slices, OnRejection::Stop).unwrap();
    ledger
}

#[test]
fn atomic_submission_is_all_or_none() {
    // Goal: one bad event in an atomic batch leaves the ledger unchanged; a good batch lands whole.
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = vector_library_ledger(dir.path());
    let before = (ledger.head().clone(), ledger.state().clone());
    let lines = [payout("a1", 100_000), payout("a2", 100_000), payout("a3", 300_000)]; // 400,000 fen held
    let slices: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    let outcomes = ledger.append_group(&slices, OnRejection::Atomic).unwrap();
    assert!(
        matches!(outcomes[..], [Outcome::Skipped, Outcome::Skipped, Outcome::Rejected(ref r)] if r.code.as_str() == "insufficient_funds"),
        "{outcomes:?}"
    );
    assert_eq!((ledger.head().clone(), ledger.state().clone()), before);
    let outcomes = ledger.append_group(&slices[..2], OnRejection::Atomic).unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Appended { .. })), "{outcomes:?}");
    assert_eq!(ledger.head().size, 29);
    assert_eq!(ledger.state().balance("422822/ranger"), 200_000);
}

#[test]
fn submissions_share_one_commit() {
    // Goal: a group with an atomic failure and a good submission commits only the good one, durably.
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = vector_library_ledger(dir.path());
    let bad = [payout("b1", 1), "garbage".to_string()];
    let good = [payout("g1", 1000)];
    let bad_prepared = ledger.prepare(&bad.iter().map(|l| l.as_bytes()).collect::<Vec<_>>());
    let good_prepared = ledger.prepare(&good.iter().map(|l| l.as_bytes()).collect::<Vec<_>>());
    let mut group = ledger.begin_group();
    let first = group.submit(bad_prepared, OnRejection::Atomic).unwrap();
    let second = group.submit(good_prepared, OnRejection::Stop).unwrap();
    group.commit().unwrap();
    assert!(matches!(first[..], [Outcome::Skipped, Outcome::Rejected(_)]), "{first:?}");
    assert!(matches!(second[..], [Outcome::Appended { seq: 27, .. }]), "{second:?}");
    drop(ledger);
    let reopened = Ledger::open(&dir.path().join("data")).unwrap();
    assert_eq!(reopened.head().size, 28);
}
