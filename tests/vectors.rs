//! Known answers from ../shared/vectors, byte for byte.

mod support;

use sunledger::chain::{export_line, parse_export_line, record_hash};
use sunledger::encoding::hex;
use sunledger::envelope::Envelope;
use sunledger::ledger::{Ledger, OnRejection, Outcome};
use sunledger::verify::Verifier;
use support::*;

/// The clock of the vectors: genesis at 2018-11-01T00:00:00.000Z, one second per event.
const VECTOR_EPOCH_MS: i64 = 1_541_030_400_000;

#[test]
fn entries_pae_digests_and_hashes() {
    // Goal: every envelope's PAE digest and entry hash equal entries.json.
    let entries: Vec<serde_json::Value> = serde_json::from_str(&read_vector("entries.json")).unwrap();
    let envelopes = vector_lines("envelopes.jsonl");
    assert_eq!(entries.len(), envelopes.len());
    let mut prev = [0u8; 32];
    for (entry, line) in entries.iter().zip(&envelopes) {
        let envelope = Envelope::parse(line.as_bytes()).unwrap();
        let seq = entry["seq"].as_u64().unwrap();
        assert_eq!(hex(&envelope.pae_digest()), entry["pae_sha256"].as_str().unwrap(), "PAE digest of seq {seq}");
        let hash = record_hash(seq, &prev, entry["recorded_at_ms"].as_i64().unwrap(), &envelope);
        assert_eq!(hex(&hash), entry["hash"].as_str().unwrap(), "entry hash of seq {seq}");
        prev = hash;
    }
}

#[test]
fn chain_verifies() {
    // Goal: the vector chain replays valid: links, hashes, signatures, rules, money.
    let mut verifier = Verifier::new();
    for line in vector_lines("chain.jsonl") {
        verifier.push(parse_export_line(line.as_bytes()).unwrap());
    }
    let (report, state) = verifier.finish();
    assert!(report.valid(), "{:?}", report.failure);
    assert_eq!(report.records, 27);
    assert!(state.conserves_money());
}

#[test]
fn tampered_files_fail_at_the_expected_seq() {
    // Goal: each tampered export fails, and the first bad seq is the one expected.json gives.
    let expected: Vec<serde_json::Value> = serde_json::from_str(&read_vector("tampered/expected.json")).unwrap();
    assert_eq!(expected.len(), 5);
    for case in expected {
        let file = case["file"].as_str().unwrap();
        let mut verifier = Verifier::new();
        for line in vector_lines(&format!("tampered/{file}")) {
            match parse_export_line(line.as_bytes()) {
                Ok(record) => verifier.push(record),
                Err(reason) => verifier.push_unreadable(reason),
            }
        }
        let (report, _) = verifier.finish();
        let failure = report.failure.unwrap_or_else(|| panic!("{file} verified"));
        assert_eq!(failure.seq, case["first_bad_seq"].as_u64().unwrap(), "{file}: {}", failure.reason);
    }
}

#[test]
fn import_then_export_reproduces_the_chain() {
    // Goal: importing envelopes.jsonl with the vectors' recorded_at gives chain.jsonl byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("data")).unwrap();
    let mut tick = 0i64;
    ledger.set_clock(Box::new(move || {
        tick += 1;
        VECTOR_EPOCH_MS + (tick - 1) * 1000
    }));
    let lines = vector_lines("envelopes.jsonl");
    let slices: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    let outcomes = ledger.append_group(&slices, OnRejection::Stop).unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Appended { .. })), "{outcomes:?}");
    let mut exported = Vec::new();
    let mut prev = [0u8; 32];
    for record in ledger.store().records_from(0) {
        let record = record.unwrap();
        export_line(&mut exported, record.seq, &prev, record.recorded_at_ms, &record.envelope_bytes, &record.hash);
        exported.push(b'\n');
        prev = record.hash;
    }
    assert_eq!(String::from_utf8(exported).unwrap(), read_vector("chain.jsonl"));
}

#[test]
fn balances_match() {
    // Goal: `balance --json` over the imported vectors equals balances.json.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let output = run(&["balance", "--data", data.to_str().unwrap(), "--json"]);
    assert!(output.status.success());
    let got: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let want: serde_json::Value = serde_json::from_str(&read_vector("balances.json")).unwrap();
    assert_eq!(got, want);
}

#[test]
fn cli_verify_reports_first_bad_seq() {
    // Goal: the binary's verify exits 0 on the chain and 1 with `first bad seq: N` on a tampered file.
    let ok = run(&["verify", vectors().join("chain.jsonl").to_str().unwrap()]);
    assert!(ok.status.success(), "{}", stdout(&ok));
    let bad = run(&["verify", vectors().join("tampered/record-dropped.jsonl").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("first bad seq: 8"), "{}", stdout(&bad));
    let json = run(&["verify", "--json", vectors().join("tampered/payload-edited.jsonl").to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["first_bad_seq"], 10);
    assert_eq!(report["valid"], false);
}
