//! Replays the committed fuzz corpus (fuzz/corpus/<target>/*) through the same
//! entry points the `cargo fuzz` targets use: none may panic.

use std::path::Path;

/// A fuzz entry point: arbitrary bytes in, no panic.
type Entry = fn(&[u8]);

#[test]
fn corpus_replays_without_panics() {
    // Goal: every corpus input of every target runs to completion (a panic fails the test).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let targets: [(&str, Entry); 5] = [
        ("envelope", sunledger::fuzz_entry::envelope),
        ("payload", sunledger::fuzz_entry::payload),
        ("import_line", sunledger::fuzz_entry::import_line),
        ("note", sunledger::fuzz_entry::note),
        ("proof", sunledger::fuzz_entry::proof),
    ];
    for (target, entry) in targets {
        let directory = root.join(target);
        let mut inputs = 0;
        for file in std::fs::read_dir(&directory).unwrap_or_else(|e| panic!("{}: {e}", directory.display())) {
            let path = file.unwrap().path();
            entry(&std::fs::read(&path).unwrap());
            inputs += 1;
        }
        assert!(inputs > 0, "no corpus for {target}");
    }
}
