//! Bad inputs for every SPEC §4 code, against a ledger holding the 27 vector
//! events (shared by the CLI and HTTP rejection tests).

use super::*;
use serde_json::json;

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

/// (code, envelope line) pairs; several per code.
pub fn rejection_cases() -> Vec<(&'static str, String)> {
    let mut cases: Vec<(&'static str, String)> = Vec::new();
    let mut add = |code: &'static str, line: String| cases.push((code, line));

    add("bad_envelope", "{\"payload\":\"not base64!\",\"payloadType\":\"x\",\"signatures\":[]}".into());
    add("bad_envelope", "plain text".into());
    add("bad_envelope", sign(&county_payout("x1", 100), &["422822/k1"]).replace("vnd.sunledger.event.v1", "vnd.other"));

    add("schema", sign(&county_payout("x1", 100).replacen('{', "{\"extra\":1,", 1), &["422822/k1"]));
    add(
        "schema",
        sign(&county_payout("x1", 100).replace("\"amount_fen\":100", "\"amount_fen\":100.0"), &["422822/k1"]),
    );
    add("schema", sign(&county_payout("x1", 100).replace("2018-12-22", "2019-02-30"), &["422822/k1"]));

    add("invalid_amount", sign(&county_payout("x1", 0), &["422822/k1"]));
    add(
        "invalid_amount",
        sign(&county_payout("x1", 1).replace("\"amount_fen\":1", "\"amount_fen\":-5"), &["422822/k1"]),
    );
    add("invalid_amount", sign(&county_payout("x1", 1 << 53), &["422822/k1"]));
    let refund = payload(
        "x2",
        "refund",
        "422822",
        "2018-12-22",
        json!({"ref_event": "e000016", "amount_fen": 400_001, "reason": "r"}),
    );
    add("invalid_amount", sign(&refund, &["422822/k1"]));

    add("wrong_ledger", sign(&county_payout("x1", 100).replace(LEDGER, "another-ledger"), &["422822/k1"]));

    add(
        "unknown_key",
        sign(&county_payout("x1", 100), &["422822/k1"]).replace("\"keyid\":\"422822/k1\"", "\"keyid\":\"422822/k9\""),
    );

    let transfer = payload(
        "x1",
        "transfer",
        "420000",
        "2018-12-22",
        json!({"to_office": "422800", "program": "ranger", "amount_fen": 100, "doc_ref": "d"}),
    );
    add("revoked_key", sign(&transfer, &["420000/k2"]));

    let good: serde_json::Value = serde_json::from_str(&sign(&county_payout("x1", 100), &["422822/k1"])).unwrap();
    let mut forged: serde_json::Value = serde_json::from_str(&sign(&county_payout("x1", 101), &["422822/k1"])).unwrap();
    forged["signatures"] = good["signatures"].clone();
    add("bad_signature", forged.to_string());

    add("duplicate_id", sign(&county_payout("e000016", 100), &["422822/k1"]));
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
    add("duplicate_id", sign(&household, &["422822-fpb/k1"]));

    let as_province = county_payout("x1", 100).replace("\"office\":\"422822\"", "\"office\":\"420000\"");
    add("forbidden", sign(&as_province, &["422822/k1"]));
    let registrar_pays = county_payout("x1", 100).replace("\"office\":\"422822\"", "\"office\":\"422822-fpb\"");
    add("forbidden", sign(&registrar_pays, &["422822-fpb/k1"]));
    let root_money = payload(
        "x1",
        "appropriate",
        "root",
        "2018-12-22",
        json!({"program": "ranger", "amount_fen": 100, "budget_ref": "b", "fiscal_year": 2018}),
    );
    add("forbidden", sign(&root_money, &["root/k1"]));
    let to_self = payload(
        "x1",
        "transfer",
        "422800",
        "2018-12-22",
        json!({"to_office": "422800", "program": "ranger", "amount_fen": 100, "doc_ref": "d"}),
    );
    add("forbidden", sign(&to_self, &["422800/k1"]));

    let big = payload(
        "x1",
        "appropriate",
        "420000",
        "2018-12-22",
        json!({"program": "ranger", "amount_fen": 50_000_000u64, "budget_ref": "b", "fiscal_year": 2018}),
    );
    add("dual_control_required", sign(&big, &["420000/k1"]));

    let program = payload(
        "x1",
        "appropriate",
        "420000",
        "2018-12-22",
        json!({"program": "nope", "amount_fen": 100, "budget_ref": "b", "fiscal_year": 2018}),
    );
    add("unknown_reference", sign(&program, &["420000/k1"]));
    add(
        "unknown_reference",
        sign(&county_payout("x1", 100).replace("422822101201-0001", "422822101201-9999"), &["422822/k1"]),
    );
    let refund = payload(
        "x1",
        "refund",
        "422822",
        "2018-12-22",
        json!({"ref_event": "e000011", "amount_fen": 1, "reason": "r"}),
    );
    add("unknown_reference", sign(&refund, &["422822/k1"]));

    add("insufficient_funds", sign(&county_payout("x1", 400_001), &["422822/k1"]));
    cases
}
