//! Property tests: random streams of valid and invalid money events never
//! produce a negative balance, agree with an independent model of the
//! accounts, leave the state untouched when rejected, and conserve money
//! after every step. Deterministic PRNG (splitmix64), several seeds.

mod support;

use serde_json::json;
use std::collections::BTreeMap;
use sunledger::ledger::{Ledger, OnRejection, Outcome};
use support::*;

const OFFICES: [(&str, &str); 3] = [("420000", "420000/k1"), ("422800", "422800/k1"), ("422822", "422822/k1")];
const PROGRAMS: [&str; 2] = ["ranger", "industry"];

/// The setup: the vector ledger's first nine events (genesis, offices, keys, programs) and one household.
fn setup_lines() -> Vec<String> {
    let mut lines: Vec<String> = vector_lines("envelopes.jsonl")[..9].to_vec();
    lines.push(vector_lines("envelopes.jsonl")[12].clone());
    lines
}

#[derive(Default)]
struct Model {
    balances: BTreeMap<String, u64>,
    /// Payout and expenditure ids → (office, account, amount, refunded).
    movable: Vec<(String, String, String, u64, u64)>,
}

/// One random event and whether the model expects it accepted (else the code).
fn random_event(rng: &mut Prng, model: &Model, n: u64) -> (String, Result<(), &'static str>, Vec<(String, i128)>) {
    let id = format!("ev{n}");
    let (office, key) = *rng.pick(&OFFICES);
    let program = *rng.pick(&PROGRAMS);
    let account = format!("{office}/{program}");
    let held = model.balances.get(&account).copied().unwrap_or(0);
    let amount = match rng.below(4) {
        0 => 1 + rng.below(100),
        1 => 1 + rng.below(held.max(1) * 2),
        _ => 1 + rng.below(5_000_000),
    };
    let funded = |a: u64| if held >= a { Ok(()) } else { Err("insufficient_funds") };
    let at = "2019-01-10";
    match rng.below(8) {
        0 | 1 => {
            let body = json!({"program": program, "amount_fen": amount, "budget_ref": "b", "fiscal_year": 2019});
            (sign(&payload(&id, "appropriate", office, at, body), &[key]), Ok(()), vec![(account, amount as i128)])
        }
        2 => {
            let (to, _) = *rng.pick(&OFFICES);
            let body = json!({"to_office": to, "program": program, "amount_fen": amount, "doc_ref": "d"});
            let expected = if to == office { Err("forbidden") } else { funded(amount) };
            let moves = vec![(account, -(amount as i128)), (format!("{to}/{program}"), amount as i128)];
            (sign(&payload(&id, "transfer", office, at, body), &[key]), expected, moves)
        }
        3 if office == "422822" => {
            let body = json!({"household_id": "422822101201-0001", "program": program, "amount_fen": amount,
                              "period": "2019-01", "card_digest": "a".repeat(64)});
            (
                sign(&payload(&id, "payout", office, at, body), &[key]),
                funded(amount),
                vec![(account, -(amount as i128))],
            )
        }
        3 | 4 => {
            let body = json!({"program": program, "project_id": null, "payee_id": "P1", "payee_name": "某合作社",
                              "category": "goods", "amount_fen": amount, "doc_ref": "d"});
            (
                sign(&payload(&id, "expenditure", office, at, body), &[key]),
                funded(amount),
                vec![(account, -(amount as i128))],
            )
        }
        5 if !model.movable.is_empty() => {
            let (ref_id, ref_office, ref_account, moved, refunded) = rng.pick(&model.movable).clone();
            let key = OFFICES.iter().find(|(o, _)| *o == ref_office).unwrap().1;
            let amount = 1 + rng.below(moved);
            let body = json!({"ref_event": ref_id, "amount_fen": amount, "reason": "退回"});
            let expected = if refunded + amount <= moved { Ok(()) } else { Err("invalid_amount") };
            (
                sign(&payload(&id, "refund", &ref_office, at, body), &[key]),
                expected,
                vec![(ref_account, amount as i128)],
            )
        }
        6 => {
            let other = if program == "ranger" { "industry" } else { "ranger" };
            let body = json!({"from_program": program, "to_program": other, "amount_fen": amount, "doc_ref": "d"});
            let moves = vec![(account, -(amount as i128)), (format!("{office}/{other}"), amount as i128)];
            (sign(&payload(&id, "reallocate", office, at, body), &[key]), funded(amount), moves)
        }
        _ => {
            // A fault: another office's key, a zero amount, or garbage.
            let body = json!({"program": program, "amount_fen": amount, "budget_ref": "b", "fiscal_year": 2019});
            match rng.below(3) {
                0 => {
                    let (other_office, _) = *rng.pick(&OFFICES);
                    let wrong_key = OFFICES.iter().find(|(o, _)| *o != other_office).unwrap().1;
                    (sign(&payload(&id, "appropriate", other_office, at, body), &[wrong_key]), Err("forbidden"), vec![])
                }
                1 => {
                    let zero = json!({"program": program, "amount_fen": 0, "budget_ref": "b", "fiscal_year": 2019});
                    (sign(&payload(&id, "appropriate", office, at, zero), &[key]), Err("invalid_amount"), vec![])
                }
                _ => ("{\"payload\":".to_string(), Err("bad_envelope"), vec![]),
            }
        }
    }
}

fn run_stream(seed: u64, steps: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("data")).unwrap();
    let setup = setup_lines();
    let slices: Vec<&[u8]> = setup.iter().map(|l| l.as_bytes()).collect();
    let outcomes = ledger.append_group(&slices, OnRejection::Stop).unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Appended { .. })), "{outcomes:?}");
    let mut rng = Prng(seed);
    let mut model = Model::default();
    for n in 0..steps {
        let (line, expected, moves) = random_event(&mut rng, &model, n);
        let before = serde_json::to_string(&(ledger.state().balances.clone(), ledger.state().totals)).unwrap();
        let outcome = ledger.append_group(&[line.as_bytes()], OnRejection::Stop).unwrap().remove(0);
        match (&outcome, expected) {
            (Outcome::Appended { .. }, Ok(())) => {
                for (account, delta) in &moves {
                    let balance = model.balances.entry(account.clone()).or_insert(0);
                    *balance = u64::try_from(*balance as i128 + delta).expect("the model never goes negative");
                }
                let payload = serde_json::from_slice::<serde_json::Value>(
                    &sunledger::envelope::Envelope::parse(line.as_bytes()).unwrap().payload,
                )
                .unwrap();
                let kind = payload["kind"].as_str().unwrap();
                if kind == "payout" || kind == "expenditure" {
                    let office = payload["office"].as_str().unwrap().to_string();
                    let account = format!("{office}/{}", payload["body"]["program"].as_str().unwrap());
                    let amount = payload["body"]["amount_fen"].as_u64().unwrap();
                    model.movable.push((format!("ev{n}"), office, account, amount, 0));
                }
                if kind == "refund" {
                    let ref_id = payload["body"]["ref_event"].as_str().unwrap();
                    let amount = payload["body"]["amount_fen"].as_u64().unwrap();
                    model.movable.iter_mut().find(|m| m.0 == ref_id).unwrap().4 += amount;
                }
            }
            (Outcome::Rejected(rejection), Err(code)) => {
                assert_eq!(rejection.code.as_str(), code, "seed {seed} step {n}: {}", rejection.message);
                let after = serde_json::to_string(&(ledger.state().balances.clone(), ledger.state().totals)).unwrap();
                assert_eq!(before, after, "a rejected event changed the state");
            }
            (got, expected) => panic!("seed {seed} step {n}: got {got:?}, model expected {expected:?}"),
        }
        let state = ledger.state();
        for (account, balance) in &model.balances {
            assert_eq!(state.balance(account), *balance, "seed {seed} step {n}: {account}");
        }
        assert!(state.conserves_money(), "seed {seed} step {n}: money not conserved");
    }
    // The stored ledger reopens to the same state, and its chain verifies.
    let state = ledger.state().clone();
    drop(ledger);
    let reopened = Ledger::open(&dir.path().join("data")).unwrap();
    assert_eq!(reopened.state(), &state);
}

#[test]
fn random_money_streams_agree_with_the_model() {
    // Goal: over random valid/invalid streams, balances match the model, stay ≥ 0, and money is conserved.
    for seed in [1, 2, 3, 42] {
        run_stream(seed, 150);
    }
}
