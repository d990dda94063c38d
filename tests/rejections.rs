//! One test per SPEC §4 rejection code through the real binary; each asserts
//! the code, the line number, and that the ledger did not change.

mod support;

use support::*;

/// Imports each bad line of `code` into a ledger holding the vectors; checks
/// the reported code and that the export is byte-for-byte unchanged.
fn check_code(code: &str) {
    let cases: Vec<String> = cases::rejection_cases().into_iter().filter(|(c, _)| *c == code).map(|(_, l)| l).collect();
    assert!(!cases.is_empty(), "no case for {code}");
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let before = export_bytes(&data);
    for line in cases {
        let file = write_lines(dir.path(), "in.jsonl", &[line]);
        let output = run(&["import", "--data", data.to_str().unwrap(), &file]);
        assert_eq!(output.status.code(), Some(1), "expected a rejection ({code}); stderr: {}", stderr(&output));
        let report: serde_json::Value = serde_json::from_str(stderr(&output).lines().next().unwrap_or(""))
            .expect("stderr is one JSON object per line");
        assert_eq!(report["error"], code, "{report}");
        assert_eq!(report["line"], 1);
        assert!(report["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(export_bytes(&data), before, "a rejected line changed the ledger");
    }
}

#[test]
fn bad_envelope() {
    // Goal: not DSSE, bad base64, a wrong payloadType are bad_envelope.
    check_code("bad_envelope");
}

#[test]
fn schema() {
    // Goal: an unknown field, a float amount or an impossible date is a schema error.
    check_code("schema");
}

#[test]
fn invalid_amount() {
    // Goal: zero, negative and 2^53 amounts, and refunds beyond the original, are invalid_amount.
    check_code("invalid_amount");
}

#[test]
fn wrong_ledger() {
    // Goal: an event of another ledger is refused.
    check_code("wrong_ledger");
}

#[test]
fn unknown_key() {
    // Goal: a signature by an unregistered key id is refused.
    check_code("unknown_key");
}

#[test]
fn revoked_key() {
    // Goal: a key revoked at seq 25 (420000/k2) can no longer sign.
    check_code("revoked_key");
}

#[test]
fn bad_signature() {
    // Goal: a signature over other bytes is refused.
    check_code("bad_signature");
}

#[test]
fn duplicate_id() {
    // Goal: an existing event id with other payload bytes, or an existing household id, is refused.
    check_code("duplicate_id");
}

#[test]
fn forbidden() {
    // Goal: a key of another office, a missing role, root acting on money, a transfer to oneself are refused.
    check_code("forbidden");
}

#[test]
fn dual_control_required() {
    // Goal: moving ≥ 500,000 yuan with one finance signature is refused.
    check_code("dual_control_required");
}

#[test]
fn unknown_reference() {
    // Goal: an unknown program, household or refunded event is refused.
    check_code("unknown_reference");
}

#[test]
fn insufficient_funds() {
    // Goal: a payout beyond the account's balance (4,000 yuan held) is refused.
    check_code("insufficient_funds");
}

#[test]
fn every_code_is_covered() {
    // Goal: every SPEC §4 code has a test here and at least one case.
    let source = include_str!("rejections.rs");
    let cases = cases::rejection_cases();
    for code in sunledger::error::Code::ALL {
        assert!(source.contains(&format!("fn {}()", code.as_str())), "no test for {code}");
        assert!(cases.iter().any(|(c, _)| *c == code.as_str()), "no case for {code}");
    }
}
