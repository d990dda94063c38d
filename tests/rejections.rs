//! One test per SPEC §4 rejection code through the real binary; each asserts
//! the code, the line number, and that the ledger did not change.

mod support;

use serde_json::json;
use support::*;

/// Imports one line into a ledger holding the vectors; checks the code and
/// that the export is byte-for-byte unchanged.
fn check_rejected(line: &str, code: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let before = export_bytes(&data);
    let file = write_lines(dir.path(), "in.jsonl", &[line.to_string()]);
    let output = run(&["import", "--data", data.to_str().unwrap(), &file]);
    assert_eq!(output.status.code(), Some(1), "expected a rejection ({code}); stderr: {}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(stderr(&output).lines().next().unwrap_or("")).expect("stderr is one JSON object per line");
    assert_eq!(report["error"], code, "{report}");
    assert_eq!(report["line"], 1);
    assert!(report["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(export_bytes(&data), before, "a rejected line changed the ledger");
}

fn county_payout(id: &str, amount: u64) -> String {
    payload(
        id,
        "payout",
        "422822",
        "2018-12-22",
        json!({"household_id": "422822101201-0001", "program": "ranger", "amount_fen": amount, "period": "2019",
               "card_digest": "a".repeat(64)}),
    )
}

#[test]
fn bad_envelope() {
    // Goal: a line that is not a DSSE envelope is bad_envelope.
    check_rejected("{\"payload\":\"not base64!\",\"payloadType\":\"x\",\"signatures\":[]}", "bad_envelope");
    check_rejected("plain text", "bad_envelope");
    let wrong_type = sign(&county_payout("x1", 100), &["422822/k1"]).replace("vnd.sunledger.event.v1", "vnd.other");
    check_rejected(&wrong_type, "bad_envelope");
}

#[test]
fn schema() {
    // Goal: an unknown field, a float amount or an impossible date is a schema error.
    let unknown = county_payout("x1", 100).replacen("{", "{\"extra\":1,", 1);
    check_rejected(&sign(&unknown, &["422822/k1"]), "schema");
    let float = county_payout("x1", 100).replace("\"amount_fen\":100", "\"amount_fen\":100.0");
    check_rejected(&sign(&float, &["422822/k1"]), "schema");
    let date = county_payout("x1", 100).replace("2018-12-22", "2019-02-30");
    check_rejected(&sign(&date, &["422822/k1"]), "schema");
}

#[test]
fn invalid_amount() {
    // Goal: zero, negative and 2^53 amounts, and refunds beyond the original, are invalid_amount.
    check_rejected(&sign(&county_payout("x1", 0), &["422822/k1"]), "invalid_amount");
    let negative = county_payout("x1", 1).replace("\"amount_fen\":1", "\"amount_fen\":-5");
    check_rejected(&sign(&negative, &["422822/k1"]), "invalid_amount");
    check_rejected(&sign(&county_payout("x1", 1 << 53), &["422822/k1"]), "invalid_amount");
    let refund = payload(
        "x2",
        "refund",
        "422822",
        "2018-12-22",
        json!({"ref_event": "e000016", "amount_fen": 400_001, "reason": "r"}),
    );
    check_rejected(&sign(&refund, &["422822/k1"]), "invalid_amount");
}

#[test]
fn wrong_ledger() {
    // Goal: an event of another ledger is refused.
    let other = county_payout("x1", 100).replace(LEDGER, "another-ledger");
    check_rejected(&sign(&other, &["422822/k1"]), "wrong_ledger");
}

#[test]
fn unknown_key() {
    // Goal: a signature by an unregistered key id is refused.
    let envelope =
        sign(&county_payout("x1", 100), &["422822/k1"]).replace("\"keyid\":\"422822/k1\"", "\"keyid\":\"422822/k9\"");
    check_rejected(&envelope, "unknown_key");
}

#[test]
fn revoked_key() {
    // Goal: a key revoked at seq 25 (420000/k2) can no longer sign.
    let transfer = payload(
        "x1",
        "transfer",
        "420000",
        "2018-12-22",
        json!({"to_office": "422800", "program": "ranger", "amount_fen": 100, "doc_ref": "d"}),
    );
    check_rejected(&sign(&transfer, &["420000/k2"]), "revoked_key");
}

#[test]
fn bad_signature() {
    // Goal: a signature over other bytes is refused.
    let good = sign(&county_payout("x1", 100), &["422822/k1"]);
    let other = sign(&county_payout("x1", 101), &["422822/k1"]);
    let good: serde_json::Value = serde_json::from_str(&good).unwrap();
    let mut forged: serde_json::Value = serde_json::from_str(&other).unwrap();
    forged["signatures"] = good["signatures"].clone();
    check_rejected(&forged.to_string(), "bad_signature");
}

#[test]
fn duplicate_id() {
    // Goal: an existing event id with other payload bytes, or an existing household id, is refused.
    check_rejected(&sign(&county_payout("e000016", 100), &["422822/k1"]), "duplicate_id");
    let household = payload(
        "x1",
        "household_register",
        "422822-fpb",
        "2018-12-22",
        json!({
        "household_id": "422822101201-0001", "village": "422822101201", "head_name_masked": "赵*",
        "members": [{"person_digest": "4".repeat(64), "name_masked": "赵*"}],
        "card": {"card_digest": "5".repeat(64), "card_masked": "6228********0001", "bank": "b"}}),
    );
    check_rejected(&sign(&household, &["422822-fpb/k1"]), "duplicate_id");
}

#[test]
fn forbidden() {
    // Goal: a key of another office, a missing role, root acting on money, a transfer to oneself are refused.
    let as_province = county_payout("x1", 100).replace("\"office\":\"422822\"", "\"office\":\"420000\"");
    check_rejected(&sign(&as_province, &["422822/k1"]), "forbidden");
    let registrar_pays = county_payout("x1", 100).replace("\"office\":\"422822\"", "\"office\":\"422822-fpb\"");
    check_rejected(&sign(&registrar_pays, &["422822-fpb/k1"]), "forbidden");
    let root_money = payload(
        "x1",
        "appropriate",
        "root",
        "2018-12-22",
        json!({"program": "ranger", "amount_fen": 100, "budget_ref": "b", "fiscal_year": 2018}),
    );
    check_rejected(&sign(&root_money, &["root/k1"]), "forbidden");
    let to_self = payload(
        "x1",
        "transfer",
        "422800",
        "2018-12-22",
        json!({"to_office": "422800", "program": "ranger", "amount_fen": 100, "doc_ref": "d"}),
    );
    check_rejected(&sign(&to_self, &["422800/k1"]), "forbidden");
}

#[test]
fn dual_control_required() {
    // Goal: moving ≥ 500,000 yuan with one finance signature is refused.
    let big = payload(
        "x1",
        "appropriate",
        "420000",
        "2018-12-22",
        json!({"program": "ranger", "amount_fen": 50_000_000u64, "budget_ref": "b", "fiscal_year": 2018}),
    );
    check_rejected(&sign(&big, &["420000/k1"]), "dual_control_required");
}

#[test]
fn unknown_reference() {
    // Goal: an unknown program, household or refunded event is refused.
    let program = payload(
        "x1",
        "appropriate",
        "420000",
        "2018-12-22",
        json!({"program": "nope", "amount_fen": 100, "budget_ref": "b", "fiscal_year": 2018}),
    );
    check_rejected(&sign(&program, &["420000/k1"]), "unknown_reference");
    let household = county_payout("x1", 100).replace("422822101201-0001", "422822101201-9999");
    check_rejected(&sign(&household, &["422822/k1"]), "unknown_reference");
    let refund = payload(
        "x1",
        "refund",
        "422822",
        "2018-12-22",
        json!({"ref_event": "e000011", "amount_fen": 1, "reason": "r"}),
    );
    check_rejected(&sign(&refund, &["422822/k1"]), "unknown_reference");
}

#[test]
fn insufficient_funds() {
    // Goal: a payout beyond the account's balance (4,000 yuan held) is refused.
    check_rejected(&sign(&county_payout("x1", 400_001), &["422822/k1"]), "insufficient_funds");
}

#[test]
fn every_code_is_covered() {
    // Goal: this file tests every SPEC §4 code (a new code must get a test here).
    let source = include_str!("rejections.rs");
    for code in sunledger::error::Code::ALL {
        assert!(source.contains(&format!("fn {}()", code.as_str())), "no test for {code}");
    }
}
