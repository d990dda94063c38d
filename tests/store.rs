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

fn vector_lines() -> Vec<String> {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/envelopes.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Appends `lines` to the ledger in `dir` (one group) and writes a snapshot; returns the state.
fn append_and_snapshot(dir: &std::path::Path, lines: &[String]) -> sunledger::state::State {
    let mut ledger = sunledger::ledger::Ledger::open(dir).unwrap();
    let slices: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    ledger.append_group(&slices, sunledger::ledger::OnRejection::Stop).unwrap();
    ledger.save_snapshot().unwrap();
    ledger.state().clone()
}

#[test]
fn snapshot_is_a_file_outside_sled() {
    // Goal: the snapshot is written to its own file (sled 0.34 left superseded snapshot blobs behind
    // after kills), and a reopen from it gives the same state as the chain.
    let dir = tempfile::tempdir().unwrap();
    let state = append_and_snapshot(dir.path(), &vector_lines());
    let file = dir.path().join(sunledger::store::SNAPSHOT_FILE);
    let snapshot = sunledger::ledger::Snapshot::decode(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(snapshot.state, state);
    assert!(!dir.path().join("state-snapshot.bin.tmp").exists(), "the temporary file was renamed");
    let reopened = sunledger::ledger::Ledger::open(dir.path()).unwrap();
    assert_eq!(reopened.state(), &state);
}

#[test]
fn snapshot_not_matching_the_chain_is_not_used() {
    // Goal: a snapshot of a longer chain (ahead of what sled kept after a crash), of another chain, or an
    // older one, never gives a wrong state: the ledger replays and ends equal to the fold of its records.
    let lines = vector_lines();
    let short = tempfile::tempdir().unwrap();
    let short_state = append_and_snapshot(short.path(), &lines[..10]);
    let long = tempfile::tempdir().unwrap();
    let long_state = append_and_snapshot(long.path(), &lines);
    let file = sunledger::store::SNAPSHOT_FILE;
    let long_snapshot = std::fs::read(long.path().join(file)).unwrap();
    let short_snapshot = std::fs::read(short.path().join(file)).unwrap();
    // Ahead of the head: the long ledger's snapshot in the short ledger's directory.
    std::fs::write(short.path().join(file), &long_snapshot).unwrap();
    assert_eq!(sunledger::ledger::Ledger::open(short.path()).unwrap().state(), &short_state);
    // Older: the short snapshot under the long ledger; the tail is replayed.
    std::fs::write(long.path().join(file), &short_snapshot).unwrap();
    assert_eq!(sunledger::ledger::Ledger::open(long.path()).unwrap().state(), &long_state);
    // Another chain: same size, other last hash.
    let mut other = sunledger::ledger::Snapshot::decode(&short_snapshot).unwrap();
    other.state.ledger_name = Some("forged".into());
    let forged = sunledger::ledger::Snapshot::encode(&[0; 32], &other.state, &other.projections).unwrap();
    std::fs::write(short.path().join(file), forged).unwrap();
    assert_eq!(sunledger::ledger::Ledger::open(short.path()).unwrap().state(), &short_state);
    // Damaged: cut short, or the JSON of earlier versions; the chain is replayed.
    std::fs::write(short.path().join(file), &short_snapshot[..short_snapshot.len() / 2]).unwrap();
    assert_eq!(sunledger::ledger::Ledger::open(short.path()).unwrap().state(), &short_state);
    std::fs::write(short.path().join(file), serde_json::to_vec(&serde_json::json!({"state": {}})).unwrap()).unwrap();
    assert_eq!(sunledger::ledger::Ledger::open(short.path()).unwrap().state(), &short_state);
}

#[test]
fn snapshot_round_trips_every_projection_of_a_planted_county() {
    // Goal: the binary snapshot (postcard, dates as day numbers) gives back
    // exactly the state and projections it was made from — every kind of
    // fact the 17 rules fold, planted cases included — and the JSON file of
    // earlier versions is removed once the binary one is in place.
    let generated =
        sunledger::generate::county_year(3, sunledger::generate::CountyOptions { misuse: true, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state-snapshot.json"), b"{}").unwrap();
    let mut ledger = sunledger::ledger::Ledger::open(dir.path()).unwrap();
    for group in generated.lines.chunks(1000) {
        let slices: Vec<&[u8]> = group.iter().map(|l| l.as_bytes()).collect();
        ledger.append_group(&slices, sunledger::ledger::OnRejection::Stop).unwrap();
    }
    ledger.save_snapshot().unwrap();
    assert!(!dir.path().join("state-snapshot.json").exists(), "the old JSON snapshot is removed");
    let bytes = std::fs::read(dir.path().join(sunledger::store::SNAPSHOT_FILE)).unwrap();
    let snapshot = sunledger::ledger::Snapshot::decode(&bytes).unwrap();
    assert_eq!(&snapshot.state, ledger.state());
    assert_eq!(&snapshot.projections, ledger.projections());
    assert!(!snapshot.projections.findings.is_empty(), "the planted cases left event-time findings");
    assert_eq!(snapshot.last_hash, ledger.head().last_hash);
}

/// A ledger in `dir` with the generated county's first `cut` events, snapshotted; and another, in memory
/// of a second directory, with all of them (the reference fold).
fn county_ledgers(dir: &std::path::Path, cut: usize) -> (Vec<String>, tempfile::TempDir, sunledger::ledger::Ledger) {
    let generated =
        sunledger::generate::county_year(5, sunledger::generate::CountyOptions { misuse: true, ..Default::default() });
    let append = |ledger: &mut sunledger::ledger::Ledger, lines: &[String]| {
        for group in lines.chunks(1000) {
            let slices: Vec<&[u8]> = group.iter().map(|l| l.as_bytes()).collect();
            ledger.append_group(&slices, sunledger::ledger::OnRejection::Stop).unwrap();
        }
    };
    let mut first = sunledger::ledger::Ledger::open(dir).unwrap();
    append(&mut first, &generated.lines[..cut.min(generated.lines.len())]);
    first.save_snapshot().unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    let mut reference = sunledger::ledger::Ledger::open(reference_dir.path()).unwrap();
    append(&mut reference, &generated.lines);
    (generated.lines, reference_dir, reference)
}

#[test]
fn reopen_leaves_households_encoded_until_used_and_they_fold_on_exactly() {
    // Goal (issue 6, reopen at 10 M events): a reopen decodes no household — they stay in the mapped
    // snapshot until first used — and what it then folds equals a ledger that folded everything in
    // memory: households decoded to read, households changed by new events (their stored bytes no
    // longer valid), and untouched ones whose stored bytes the next snapshot copies under an extended
    // symbol table, through a second reopen.
    let dir = tempfile::tempdir().unwrap();
    let lines_total =
        sunledger::generate::county_year(5, sunledger::generate::CountyOptions { misuse: true, ..Default::default() })
            .lines
            .len();
    // Cut before the last event that changes a card or person group (a member or card change, or a
    // registration), so the events after the reopen change those groups too.
    let changes_groups = |line: &String| {
        let envelope = sunledger::envelope::Envelope::parse(line.as_bytes()).unwrap();
        match sunledger::payload::parse_payload(&envelope.payload).unwrap().body {
            sunledger::payload::Body::HouseholdRegister(_) => true,
            sunledger::payload::Body::HouseholdUpdate(b) => {
                b.card.is_some() || b.add_members.is_some() || b.remove_members.is_some()
            }
            _ => false,
        }
    };
    let generated =
        sunledger::generate::county_year(5, sunledger::generate::CountyOptions { misuse: true, ..Default::default() });
    let last_change = generated.lines.iter().rposition(changes_groups).unwrap();
    let cut = last_change.min(lines_total - 40);
    assert!(cut > lines_total / 2, "the cut leaves most events before the reopen: {cut} of {lines_total}");
    let (lines, _reference_dir, reference) = county_ledgers(dir.path(), cut);
    {
        let mut ledger = sunledger::ledger::Ledger::open(dir.path()).unwrap();
        let households = &ledger.projections().households;
        assert!(households.len() > 100);
        assert_eq!(households.undecoded(), households.len(), "a reopen decodes no household");
        let p = ledger.projections();
        assert!(!p.cards.is_decoded() && !p.persons.is_decoded(), "nor the card and person groups");
        let some = *households.keys().nth(7).unwrap();
        let stored = std::fs::read(dir.path().join(sunledger::store::SNAPSHOT_FILE)).unwrap();
        let eager = sunledger::ledger::Snapshot::decode(&stored).unwrap();
        assert_eq!(households.get(&some), eager.projections.households.get(&some));
        assert!(households.get(&some).is_some());
        assert_eq!(households.undecoded(), households.len() - 1, "a read decodes the household read");
        let slices: Vec<&[u8]> = lines[cut..].iter().map(|l| l.as_bytes()).collect();
        ledger.append_group(&slices, sunledger::ledger::OnRejection::Stop).unwrap();
        assert!(ledger.projections().persons.is_decoded(), "the new events registered or updated households");
        let untouched = ledger.projections().households.undecoded();
        assert!(untouched > 0 && untouched < ledger.projections().households.len() - 1, "{untouched}");
        ledger.save_snapshot().unwrap();
        assert_eq!(ledger.projections(), reference.projections());
    }
    let reopened = sunledger::ledger::Ledger::open(dir.path()).unwrap();
    assert_eq!(reopened.projections().households.undecoded(), reopened.projections().households.len());
    assert_eq!(reopened.projections().cards.get(), reference.projections().cards.get());
    assert_eq!(reopened.state(), reference.state());
    assert_eq!(reopened.projections(), reference.projections());
    assert_eq!(
        serde_json::to_string(reopened.projections()).unwrap(),
        serde_json::to_string(reference.projections()).unwrap()
    );
}

#[test]
fn a_household_found_damaged_after_the_reopen_sets_the_snapshot_aside_and_the_next_open_replays() {
    // Goal: a household's bytes that fail to decode on first use (at open the snapshot is checked only
    // for its format, the rest of the fold and its tie to the chain) never become a wrong or empty
    // household, nor get copied into the next snapshot: the process sets the snapshot aside and exits
    // with EXIT_DAMAGED_SNAPSHOT, and the next open replays the chain to the exact fold.
    let dir = tempfile::tempdir().unwrap();
    let (lines, _reference_dir, reference) = county_ledgers(dir.path(), usize::MAX);
    assert_eq!(reference.state().size as usize, lines.len());
    let file = dir.path().join(sunledger::store::SNAPSHOT_FILE);
    let mut bytes = std::fs::read(&file).unwrap();
    // Make one household head's masked name invalid UTF-8 wherever it is written.
    let (id, household) = reference.projections().households.iter().nth(3).unwrap();
    let name = household.head_name_masked.as_bytes().to_vec();
    let mut damaged = 0;
    for at in 0..bytes.len() - name.len() {
        if bytes[at..at + name.len()] == name[..] {
            bytes[at] = 0xFF;
            damaged += 1;
        }
    }
    assert!(damaged > 0);
    std::fs::write(&file, &bytes).unwrap();
    {
        let ledger = sunledger::ledger::Ledger::open(dir.path()).unwrap();
        let households = &ledger.projections().households;
        assert_eq!(households.undecoded(), households.len(), "the damage is inside households, found only on use");
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sunledger"))
        .args(["household", "--data", dir.path().to_str().unwrap(), id.as_str()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(sunledger::households::EXIT_DAMAGED_SNAPSHOT), "{stderr}");
    assert!(stderr.contains("damaged") && stderr.contains(id.as_str()), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing was served from the damaged household");
    assert!(!file.exists() && dir.path().join(sunledger::store::DAMAGED_SNAPSHOT_FILE).exists());
    let reopened = sunledger::ledger::Ledger::open(dir.path()).unwrap();
    assert_eq!(reopened.projections(), reference.projections());
    assert_eq!(reopened.state(), reference.state());
}

/// Every record's envelope, and the state, of the ledger in `dir`; with `hashes`, the records' chain
/// hashes too (they cover the time each record was taken, so two ledgers fed the same lines differ).
fn records_and_state(dir: &std::path::Path, hashes: bool) -> (Vec<Vec<u8>>, sunledger::state::State) {
    let ledger = sunledger::ledger::Ledger::open(dir).unwrap();
    let mut records = Vec::new();
    for record in ledger.store().records_from(0) {
        let record = record.unwrap();
        records.push(record.envelope_bytes);
        if hashes {
            records.push(record.hash.to_vec());
        }
    }
    (records, ledger.state().clone())
}

#[test]
fn records_past_the_head_are_the_tail_of_a_group_that_never_committed_and_are_cut_off() {
    // Goal: a crash after a group's records reached records.log but before sled's batch (the commit
    // point) leaves bytes past the last committed record. The next open cuts them off: the ledger is
    // what was acknowledged, record reads stop at the head, and later appends land where the cut was.
    let lines = vector_lines();
    let dir = tempfile::tempdir().unwrap();
    append_and_snapshot(dir.path(), &lines[..10]);
    let before = records_and_state(dir.path(), true);
    let log = dir.path().join(sunledger::store::RECORD_LOG_FILE);
    let log_length = std::fs::metadata(&log).unwrap().len();
    let mut torn = std::fs::read(&log).unwrap();
    torn.extend_from_slice(&lines[10].as_bytes()[..300]);
    std::fs::write(&log, torn).unwrap();
    {
        let store = sunledger::store::SledStore::open(dir.path()).unwrap();
        assert!(store.record(9).unwrap().is_some());
        assert!(store.record(10).unwrap().is_none(), "nothing past the head is read");
        assert_eq!(store.records_from(0).count(), 10);
        assert_eq!(store.records_from(10).count(), 0);
        assert_eq!(store.records_from(99).count(), 0);
    }
    assert_eq!(std::fs::metadata(&log).unwrap().len(), log_length, "the uncommitted tail is cut off");
    assert!(records_and_state(dir.path(), true) == before, "the ledger is what was acknowledged");
    // Appending after the cut gives the same ledger as appending without a crash.
    let state = append_and_snapshot(dir.path(), &lines[10..]);
    let straight = tempfile::tempdir().unwrap();
    assert_eq!(append_and_snapshot(straight.path(), &lines), state);
    assert!(records_and_state(dir.path(), false) == records_and_state(straight.path(), false));
    let length = |dir: &std::path::Path| std::fs::metadata(dir.join(sunledger::store::RECORD_LOG_FILE)).unwrap().len();
    assert_eq!(length(dir.path()), length(straight.path()), "nothing of the cut tail is left between records");
}

#[test]
fn a_record_file_shorter_than_the_head_stops_the_open_instead_of_serving_a_shorter_chain() {
    // Goal: acknowledged records missing from records.log (damage, or a file copied short) fail the
    // open with an error naming the file; they are never silently dropped, and the file is left as found.
    let lines = vector_lines();
    let dir = tempfile::tempdir().unwrap();
    append_and_snapshot(dir.path(), &lines[..10]);
    let path = dir.path().join(sunledger::store::RECORD_LOG_FILE);
    let bytes = std::fs::read(&path).unwrap();
    let short = &bytes[..bytes.len() - 1];
    std::fs::write(&path, short).unwrap();
    let error = sunledger::ledger::Ledger::open(dir.path()).err().expect("the open fails");
    assert!(error.0.contains(sunledger::store::RECORD_LOG_FILE) && error.0.contains("missing"), "{}", error.0);
    assert_eq!(std::fs::read(&path).unwrap(), short, "a failed open cuts nothing");
    // A file of the right length whose last committed record is not the head's (another file put in
    // its place, with more after it): the open fails and cuts nothing.
    let mut other = bytes.clone();
    let last_hash_at = bytes.len() - lines[9].len() - 32;
    other[last_hash_at] ^= 1;
    other.extend_from_slice(b"tail");
    std::fs::write(&path, &other).unwrap();
    let error = sunledger::ledger::Ledger::open(dir.path()).err().expect("the open fails");
    assert!(error.0.contains("does not match the head"), "{}", error.0);
    assert_eq!(std::fs::read(&path).unwrap(), other, "a failed open cuts nothing");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(sunledger::ledger::Ledger::open(dir.path()).unwrap().state().size, 10);
}

/// sled itself, for tests that damage or rewrite what the store keeps there.
/// A just-dropped store's flusher thread may still hold sled's file lock for
/// a moment (as `SledStore::open` allows for): wait for it, bounded.
fn raw_sled(path: &std::path::Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(error) if error.to_string().contains("lock") && started.elapsed().as_secs() < 5 => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("cannot open sled in {}: {error}", path.display()),
        }
    }
}

#[test]
fn damaged_record_places_are_errors_not_wrong_records() {
    // Goal: places in sled that disagree with the head (more of them than it names) fail the open; a
    // place pointing past the records fails the read of that record with an error, not an allocation
    // of its claimed size or another record's bytes.
    let lines = vector_lines();
    let dir = tempfile::tempdir().unwrap();
    append_and_snapshot(dir.path(), &lines[..10]);
    let chunk_key = [&b"x"[..], &0u64.to_be_bytes()].concat();
    let original = {
        let db = raw_sled(dir.path());
        let value = db.get(&chunk_key).unwrap().expect("chunk 0 holds the places of records 0..10").to_vec();
        assert_eq!(value.len(), 8 * 11, "its start, then 10 ends");
        let mut longer = value.clone();
        longer.extend_from_slice(&u64::MAX.to_le_bytes());
        db.insert(&chunk_key, longer).unwrap();
        db.flush().unwrap();
        value
    };
    let error = sunledger::ledger::Ledger::open(dir.path()).err().expect("the open fails");
    assert!(error.0.contains("damaged record places"), "{}", error.0);
    {
        // Record 3's end moved far past the file (still in order with the next ones' ends).
        let db = raw_sled(dir.path());
        let mut far = original.clone();
        for end in far[8 * 4..].chunks_exact_mut(8) {
            end.copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        }
        db.insert(&chunk_key, far).unwrap();
        db.flush().unwrap();
    }
    let error =
        sunledger::store::SledStore::open(dir.path()).err().expect("the last record is not where its place says");
    assert!(error.0.contains("records are missing"), "{}", error.0);
    // In a full chunk before the last (whose places the open does not check), places past the records.
    let county = tempfile::tempdir().unwrap();
    let generated =
        sunledger::generate::county_year(3, sunledger::generate::CountyOptions { misuse: false, ..Default::default() });
    append_and_snapshot(county.path(), &generated.lines[..100]);
    {
        let db = raw_sled(county.path());
        let mut far = db.get(&chunk_key).unwrap().unwrap().to_vec();
        assert_eq!(far.len(), 8 * 65, "chunk 0 is full");
        for end in far[8 * 4..].chunks_exact_mut(8) {
            end.copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        }
        db.insert(&chunk_key, far).unwrap();
        db.flush().unwrap();
    }
    let store = sunledger::store::SledStore::open(county.path()).unwrap();
    let error = store.record(3).expect_err("record 3's place points past the records");
    assert!(error.0.contains("damaged record 3"), "{}", error.0);
    assert!(store.record(2).unwrap().is_some() && store.record(99).unwrap().is_some());
    assert!(store.records_from(0).any(|r| r.is_err()), "a run through record 3 reports it");
}

#[test]
fn records_read_back_whole_from_any_place_after_groups_of_any_size() {
    // Goal: the records' places (chunks of 64 in sled, the last rewritten as records join it) give back
    // every record exactly, by seq and in runs from any seq, whether groups end inside a chunk, on its
    // edge, or span several; and the same after a reopen.
    let generated =
        sunledger::generate::county_year(3, sunledger::generate::CountyOptions { misuse: false, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = sunledger::ledger::Ledger::open(dir.path()).unwrap();
    let mut sent = 0;
    for size in [1, 62, 1, 64, 64, 3, 200, 63, 1, 1, 500].into_iter().cycle() {
        if sent >= 2000.min(generated.lines.len()) {
            break;
        }
        let group = &generated.lines[sent..(sent + size).min(generated.lines.len())];
        let slices: Vec<&[u8]> = group.iter().map(|l| l.as_bytes()).collect();
        ledger.append_group(&slices, sunledger::ledger::OnRejection::Stop).unwrap();
        sent += group.len();
    }
    let check = |store: &dyn sunledger::store::Store| {
        let all: Vec<_> = store.records_from(0).map(Result::unwrap).collect();
        assert_eq!(all.len(), sent);
        for (seq, record) in all.iter().enumerate() {
            assert_eq!(record.seq, seq as u64);
            assert_eq!(record.envelope_bytes, generated.lines[seq].as_bytes());
        }
        for from in [0, 1, 63, 64, 65, 127, 128, 129, 1000, sent as u64 - 1, sent as u64, sent as u64 + 5] {
            let run: Vec<_> = store.records_from(from).map(Result::unwrap).collect();
            assert!(run == all[(from as usize).min(sent)..], "records from {from}");
            let one = store.record(from).unwrap();
            assert_eq!(one.as_ref(), all.get(from as usize), "record {from}");
        }
    };
    check(ledger.store());
    drop(ledger);
    check(sunledger::ledger::Ledger::open(dir.path()).unwrap().store());
}

/// A copy of the store in `new` in the layout before the record files:
/// everything it has in sled, and each record under `r` u64be(seq).
fn old_layout_copy(new: &std::path::Path) -> tempfile::TempDir {
    let old = tempfile::tempdir().unwrap();
    let store = sunledger::store::SledStore::open(new).unwrap();
    let records: Vec<_> = store.records_from(0).map(Result::unwrap).collect();
    drop(store);
    let from = raw_sled(new);
    let to = raw_sled(old.path());
    for item in from.iter() {
        let (key, value) = item.unwrap();
        to.insert(key, value).unwrap();
    }
    for record in records {
        let value = [&record.recorded_at_ms.to_be_bytes()[..], &record.hash, &record.envelope_bytes].concat();
        to.insert(old_record_key(record.seq), value).unwrap();
    }
    to.flush().unwrap();
    old
}

/// `old_layout_copy` with the record of seq `removed` taken out of sled.
fn old_layout_copy_without(new: &std::path::Path, removed: u64) -> tempfile::TempDir {
    let old = old_layout_copy(new);
    let db = raw_sled(old.path());
    db.remove(old_record_key(removed)).unwrap().expect("the record was there");
    db.flush().unwrap();
    old
}

fn old_record_key(seq: u64) -> Vec<u8> {
    let mut key = vec![b'r'];
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

#[test]
fn a_store_that_keeps_its_records_in_sled_reads_no_gap_and_no_short_chain() {
    // Goal: in the old layout a record value missing inside the chain or at its end is an error
    // naming that seq, where iterating sled's values alone would give a gapped or shorter chain.
    let lines = vector_lines();
    let new = tempfile::tempdir().unwrap();
    append_and_snapshot(new.path(), &lines[..12]);
    for (removed, after) in [(5u64, "found seq 6"), (11, "the head names 12")] {
        let old = old_layout_copy_without(new.path(), removed);
        let store = sunledger::store::SledStore::open(old.path()).unwrap();
        let read: Vec<_> = store.records_from(0).collect();
        assert_eq!(read.len() as u64, removed + 1, "records up to the gap, then the error, then nothing");
        let error = read.last().unwrap().as_ref().unwrap_err();
        assert!(error.0.contains(&format!("stored record {removed} is missing ({after})")), "{}", error.0);
        assert!(read[..removed as usize].iter().all(Result::is_ok));
    }
}

#[test]
fn a_store_that_keeps_its_records_in_sled_opens_reads_and_appends_as_before() {
    // Goal: stores written before the record files (records under sled's `r` keys) still open to the
    // same ledger, read their records and take new ones, in sled: they are not split across two places.
    let lines = vector_lines();
    let new = tempfile::tempdir().unwrap();
    append_and_snapshot(new.path(), &lines[..12]);
    let old = old_layout_copy(new.path());
    assert!(records_and_state(old.path(), true) == records_and_state(new.path(), true), "the old store reads the same");
    assert_eq!(append_and_snapshot(old.path(), &lines[12..]), append_and_snapshot(new.path(), &lines[12..]));
    assert!(records_and_state(old.path(), false) == records_and_state(new.path(), false));
    assert!(!old.path().join(sunledger::store::RECORD_LOG_FILE).exists(), "the old store keeps its records in sled");
    let db = raw_sled(old.path());
    assert_eq!(db.scan_prefix(b"r").count(), lines.len());
}

#[test]
fn an_export_to_a_file_is_whole_or_absent() {
    // Goal: `export --out` of a store found short part-way exits 2 and leaves no partial export (nor a
    // temporary file) behind, and a file already at that path is untouched; a whole store's export
    // lands at the path, byte for byte what stdout gets.
    let lines = vector_lines();
    let new = tempfile::tempdir().unwrap();
    append_and_snapshot(new.path(), &lines[..12]);
    let old = old_layout_copy_without(new.path(), 8);
    let run = |data: &std::path::Path, out: Option<&std::path::Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sunledger"));
        command.args(["export", "--data", data.to_str().unwrap()]);
        if let Some(out) = out {
            command.args(["--out", out.to_str().unwrap()]);
        }
        command.output().unwrap()
    };
    let target = tempfile::tempdir().unwrap();
    let fresh = target.path().join("fresh.jsonl");
    let output = run(old.path(), Some(&fresh));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("stored record 8 is missing"), "{stderr}");
    assert!(std::fs::read_dir(target.path()).unwrap().next().is_none(), "nothing left in the directory");
    let existing = target.path().join("existing.jsonl");
    std::fs::write(&existing, b"an earlier export\n").unwrap();
    assert_eq!(run(old.path(), Some(&existing)).status.code(), Some(2));
    assert_eq!(std::fs::read(&existing).unwrap(), b"an earlier export\n");
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 1, "only the earlier export");

    let whole = run(new.path(), None);
    assert_eq!(whole.status.code(), Some(0));
    assert_eq!(whole.stdout.iter().filter(|b| **b == b'\n').count(), 12);
    assert_eq!(run(new.path(), Some(&existing)).status.code(), Some(0));
    assert_eq!(std::fs::read(&existing).unwrap(), whole.stdout);
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 1);
}
