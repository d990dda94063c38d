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
