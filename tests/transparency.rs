//! Transparency through the ledger: stored Merkle nodes give the vector roots
//! and proofs, checkpoints are byte-exact, truncated or rewritten exports fail
//! against a checkpoint, cosigners are enforced, and the independent Python
//! verifier accepts what the binary exports.

mod support;

use sunledger::encoding::hex;
use sunledger::ledger::{Ledger, OnRejection};
use support::*;

const VECTOR_EPOCH_MS: i64 = 1_541_030_400_000;

/// The vector ledger with the vectors' recorded_at, so hashes equal chain.jsonl.
fn vector_clock_ledger(dir: &std::path::Path) -> Ledger {
    let mut ledger = Ledger::open(&dir.join("data")).unwrap();
    let mut tick = 0i64;
    ledger.set_clock(Box::new(move || {
        tick += 1;
        VECTOR_EPOCH_MS + (tick - 1) * 1000
    }));
    let lines = vector_lines("envelopes.jsonl");
    let slices: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    ledger.append_group(&slices, OnRejection::Stop).unwrap();
    ledger
}

fn key_file(dir: &std::path::Path, key_id: &str) -> String {
    let keys: Vec<serde_json::Value> = serde_json::from_str(&read_vector("keys.json")).unwrap();
    let key = keys.iter().find(|k| k["key_id"] == key_id).unwrap();
    let path = dir.join(format!("{}.key", key_id.replace('/', "_")));
    std::fs::write(&path, key.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn stored_tree_gives_the_vector_roots_and_proofs() {
    // Goal: roots for every size and every proof in merkle.json come out of the store's nodes.
    let dir = tempfile::tempdir().unwrap();
    let ledger = vector_clock_ledger(dir.path());
    let merkle: serde_json::Value = serde_json::from_str(&read_vector("merkle.json")).unwrap();
    for (size, root) in merkle["roots"].as_object().unwrap() {
        assert_eq!(hex(&ledger.root_at(size.parse().unwrap()).unwrap()), root.as_str().unwrap(), "root at {size}");
    }
    for case in merkle["inclusion"].as_array().unwrap() {
        let proof = ledger.inclusion_proof(case["index"].as_u64().unwrap(), case["size"].as_u64().unwrap()).unwrap();
        let proof: Vec<String> = proof.iter().map(|h| hex(h)).collect();
        assert_eq!(serde_json::json!(proof), case["proof"], "{case}");
    }
    for case in merkle["consistency"].as_array().unwrap() {
        let proof = ledger.consistency_proof(case["from"].as_u64().unwrap(), case["to"].as_u64().unwrap()).unwrap();
        let proof: Vec<String> = proof.iter().map(|h| hex(h)).collect();
        assert_eq!(serde_json::json!(proof), case["proof"], "{case}");
    }
    assert!(ledger.inclusion_proof(27, 27).is_err());
    assert!(ledger.consistency_proof(3, 28).is_err());
}

#[test]
fn checkpoint_is_byte_exact_and_survives_reopen() {
    // Goal: the ledger's checkpoint for the vector chain equals checkpoint.txt, and the tree is rebuilt on reopen.
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = vector_clock_ledger(dir.path());
    let keys = keys();
    let note = ledger.issue_checkpoint("log/k1", &keys["log/k1"]).unwrap();
    assert_eq!(note, read_vector("checkpoint.txt"));
    assert!(ledger.issue_checkpoint("root/k1", &keys["root/k1"]).is_err(), "only the log key signs checkpoints");
    drop(ledger);
    let reopened = Ledger::open(&dir.path().join("data")).unwrap();
    assert_eq!(reopened.latest_checkpoint().unwrap().as_deref(), Some(read_vector("checkpoint.txt").as_str()));
    assert_eq!(reopened.root_at(27).unwrap(), ledger_root_from_vector());
}

fn ledger_root_from_vector() -> [u8; 32] {
    let merkle: serde_json::Value = serde_json::from_str(&read_vector("merkle.json")).unwrap();
    sunledger::encoding::hex_array(merkle["roots"]["27"].as_str().unwrap()).unwrap()
}

#[test]
fn truncated_and_rewritten_exports_fail_against_a_checkpoint() {
    // Goal: a shorter export and one with another history both fail; the true one passes.
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = vectors().join("checkpoint.txt");
    let cp = checkpoint.to_str().unwrap();
    let ok = run(&["verify", vectors().join("chain.jsonl").to_str().unwrap(), "--checkpoint", cp]);
    assert!(ok.status.success(), "{}", stdout(&ok));
    let short: Vec<String> = vector_lines("chain.jsonl")[..20].to_vec();
    let short = write_lines(dir.path(), "short.jsonl", &short);
    let truncated = run(&["verify", &short, "--checkpoint", cp]);
    assert_eq!(truncated.status.code(), Some(1));
    assert!(stdout(&truncated).contains("first bad seq: 20"), "{}", stdout(&truncated));
    // The same events recorded at other times: a valid chain, but not the checkpointed history.
    let data = vector_ledger(dir.path());
    let export = dir.path().join("rewritten.jsonl");
    assert!(run(&["export", "--data", data.to_str().unwrap(), "--out", export.to_str().unwrap()]).status.success());
    let rewritten = run(&["verify", export.to_str().unwrap(), "--checkpoint", cp]);
    assert_eq!(rewritten.status.code(), Some(1));
    assert!(stdout(&rewritten).contains("history rewritten"), "{}", stdout(&rewritten));
}

#[test]
fn required_cosigner_is_enforced() {
    // Goal: a checkpoint cosigned by the county auditor verifies with --require-cosigner; removing or altering the line fails.
    let dir = tempfile::tempdir().unwrap();
    let aud = key_file(dir.path(), "422822-aud/k1");
    let cosigned = run(&["cosign", "--key", &aud, vectors().join("checkpoint.txt").to_str().unwrap()]);
    assert!(cosigned.status.success(), "{}", stderr(&cosigned));
    let text = stdout(&cosigned);
    assert!(text.starts_with(&read_vector("checkpoint.txt")));
    let chain = vectors().join("chain.jsonl");
    let check = |note: &str| {
        let path = dir.path().join("note.txt");
        std::fs::write(&path, note).unwrap();
        run(&[
            "verify",
            chain.to_str().unwrap(),
            "--checkpoint",
            path.to_str().unwrap(),
            "--require-cosigner",
            "422822-aud/k1",
        ])
    };
    assert!(check(&text).status.success(), "{}", stdout(&check(&text)));
    assert_eq!(check(&read_vector("checkpoint.txt")).status.code(), Some(1), "the cosigner's line removed");
    let last = text.trim_end().rsplit('\n').next().unwrap().to_string();
    let mut altered_line = last.clone().into_bytes();
    let n = altered_line.len();
    altered_line[n - 6] = if altered_line[n - 6] == b'A' { b'B' } else { b'A' };
    let altered = text.replace(&last, &String::from_utf8(altered_line).unwrap());
    assert_eq!(check(&altered).status.code(), Some(1), "the cosigner's line altered");
    // A key without the auditor role cannot stand in as a cosigner.
    let registrar = key_file(dir.path(), "422822-fpb/k1");
    let by_county = stdout(&run(&["cosign", "--key", &registrar, vectors().join("checkpoint.txt").to_str().unwrap()]));
    let path = dir.path().join("county.txt");
    std::fs::write(&path, by_county).unwrap();
    let output = run(&[
        "verify",
        chain.to_str().unwrap(),
        "--checkpoint",
        path.to_str().unwrap(),
        "--require-cosigner",
        "422822-fpb/k1",
    ]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn prove_cli_matches_the_vectors() {
    // Goal: `prove inclusion/consistency --json` print the merkle.json proofs for the vector ledger.
    let dir = tempfile::tempdir().unwrap();
    drop(vector_clock_ledger(dir.path()));
    let data = dir.path().join("data");
    let output = run(&["prove", "inclusion", "--data", data.to_str().unwrap(), "--seq", "3", "--size", "7", "--json"]);
    let got: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let merkle: serde_json::Value = serde_json::from_str(&read_vector("merkle.json")).unwrap();
    let want = merkle["inclusion"].as_array().unwrap().iter().find(|c| c["index"] == 3 && c["size"] == 7).unwrap();
    assert_eq!(got["proof"], want["proof"]);
    let output = run(&["prove", "consistency", "--data", data.to_str().unwrap(), "--from", "3", "--to", "7", "--json"]);
    let got: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let want = merkle["consistency"].as_array().unwrap().iter().find(|c| c["from"] == 3 && c["to"] == 7).unwrap();
    assert_eq!(got["proof"], want["proof"]);
    let bad = run(&["prove", "inclusion", "--data", data.to_str().unwrap(), "--seq", "30"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn python_verifier_accepts_the_binarys_export_and_checkpoint() {
    // Goal: tools/verify.py (independent code) agrees with an export and checkpoint made by the binary.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let log = key_file(dir.path(), "log/k1");
    let note = run(&["checkpoint", "--data", data.to_str().unwrap(), "--log-key", &log]);
    assert!(note.status.success(), "{}", stderr(&note));
    let cp = dir.path().join("cp.txt");
    std::fs::write(&cp, &note.stdout).unwrap();
    let export = dir.path().join("export.jsonl");
    assert!(run(&["export", "--data", data.to_str().unwrap(), "--out", export.to_str().unwrap()]).status.success());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/verify.py");
    let output = std::process::Command::new("python3")
        .args([script.to_str().unwrap(), export.to_str().unwrap(), "--checkpoint", cp.to_str().unwrap()])
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
}

#[test]
fn stored_tree_matches_a_memory_tree_at_every_size() {
    // Goal: with interior nodes below MERKLE_STORED_LEVEL_MIN recomputed from the records, every root,
    // and strided inclusion and consistency proofs, of a 200-record ledger written in uneven groups and
    // reopened equal those of a full in-memory tree.
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    {
        let mut ledger = Ledger::open(&data).unwrap();
        let lines: Vec<String> = (0..173)
            .map(|n| {
                let body = serde_json::json!({"program": "ranger", "amount_fen": 100, "budget_ref": format!("b{n}"),
                                              "fiscal_year": 2018});
                sign(&payload(&format!("m{n}"), "appropriate", "420000", "2018-12-22", body), &["420000/k1"])
            })
            .collect();
        for chunk in lines.chunks(37) {
            let slices: Vec<&[u8]> = chunk.iter().map(|l| l.as_bytes()).collect();
            let outcomes = ledger.append_group(&slices, OnRejection::Stop).unwrap();
            assert!(outcomes.iter().all(|o| matches!(o, sunledger::ledger::Outcome::Appended { .. })));
        }
    }
    let ledger = Ledger::open(&data).unwrap();
    let hashes: Vec<sunledger::merkle::Hash> = ledger.store().records_from(0).map(|r| r.unwrap().hash).collect();
    assert_eq!(hashes.len(), 200);
    let tree = sunledger::merkle::MemoryTree::from_leaves(hashes.iter().copied());
    for size in 1..=200u64 {
        let want = sunledger::merkle::root(size, &tree).unwrap();
        assert_eq!(ledger.root_at(size).unwrap(), want, "root at {size}");
        for index in (size % 7..size).step_by(7) {
            let want = sunledger::merkle::inclusion_proof(index, size, &tree).unwrap();
            assert_eq!(ledger.inclusion_proof(index, size).unwrap(), want, "inclusion {index} in {size}");
        }
        for from in (1..=size).step_by(11) {
            let want = sunledger::merkle::consistency_proof(from, size, &tree).unwrap();
            assert_eq!(ledger.consistency_proof(from, size).unwrap(), want, "consistency {from} to {size}");
        }
    }
}
