//! Store behaviour the ledger relies on.

use sunledger::store::{SledStore, Store};

#[test]
fn reopen_waits_for_a_lock_released_shortly() {
    // Goal (regression: a flaky reopen right after drop): opening waits for a lock another handle releases soon.
    let dir = tempfile::tempdir().unwrap();
    let first = SledStore::open(dir.path()).unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
    });
    let second = SledStore::open(dir.path()).expect("the second open waits for the first handle to go");
    assert!(second.head().unwrap().is_none());
    holder.join().unwrap();
}

#[test]
fn unreadable_snapshot_falls_back_to_a_full_replay() {
    // Goal: a snapshot of another format does not stop the ledger opening; it replays the chain to the same state.
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/envelopes.jsonl"),
    )
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect();
    let state = {
        let mut ledger = sunledger::ledger::Ledger::open(dir.path()).unwrap();
        let slices: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        ledger.append_group(&slices, sunledger::ledger::OnRejection::Stop).unwrap();
        ledger.save_snapshot().unwrap();
        ledger.state().clone()
    };
    {
        let store = SledStore::open(dir.path()).unwrap();
        let group = sunledger::store::CommitGroup {
            snapshot: Some(br#"{"state":{},"projections":{}}"#.to_vec()),
            ..Default::default()
        };
        store.commit(group).unwrap();
    }
    let reopened = sunledger::ledger::Ledger::open(dir.path()).unwrap();
    assert_eq!(reopened.state(), &state);
}
