//! Authority and keys, data-driven: for every one of the 16 kinds, the right
//! signer is accepted (the control), while a key without the role, a key of
//! another office and a revoked key are refused with `forbidden` /
//! `revoked_key`; an event signed before its key was revoked is accepted if
//! it arrived before the revocation and refused after it; registrars and
//! payers outside their region are `forbidden`; and every accepted event
//! replayed into another ledger is `wrong_ledger`.
//!
//! Built on the vector ledger with the vector keys, plus keys this test adds
//! (derived from fixed seeds) so each role can be held alone and revoked.

mod support;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use sunledger::envelope::Envelope;
use sunledger::ledger::{Ledger, OnRejection, Outcome};
use support::*;

const COUNTY: &str = "422822";
const OTHER_COUNTY: &str = "422823";
const VILLAGE: &str = "422822101201";
const OTHER_VILLAGE: &str = "422822101202";
const DATE: &str = "2018-12-22";

/// Keys by id: the vector keys and the ones this test registers.
struct Keyring(BTreeMap<String, SigningKey>);

impl Keyring {
    fn new() -> Keyring {
        Keyring(keys())
    }

    /// A key derived from its id, remembered for signing.
    fn derive(&mut self, key_id: &str) -> String {
        let seed = sunledger::encoding::sha256(format!("authority test {key_id}").as_bytes());
        let key = SigningKey::from_bytes(&seed);
        let public = sunledger::encoding::base64_encode(key.verifying_key().as_bytes());
        self.0.insert(key_id.to_string(), key);
        public
    }

    fn sign(&self, payload: &Value, key_ids: &[&str]) -> String {
        let signers: Vec<(String, SigningKey)> =
            key_ids.iter().map(|id| (id.to_string(), self.0[*id].clone())).collect();
        Envelope::sign(payload.to_string().into_bytes(), &signers).to_json()
    }
}

fn event(ledger_id: &str, id: &str, kind: &str, office: &str, body: Value) -> Value {
    json!({"v": 1, "ledger": ledger_id, "id": id, "kind": kind, "office": office, "at": DATE, "body": body})
}

fn digest(label: &str) -> String {
    sunledger::encoding::hex(&sunledger::encoding::sha256(label.as_bytes()))
}

/// The role a key needs for each kind acted by the county, and a role that is not enough.
fn roles(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "office_register" | "key_add" | "key_revoke" => ("admin", "finance"),
        "household_register" | "household_update" => ("registrar", "finance"),
        "notice_publish" => ("finance", "auditor"),
        "flag_review" => ("auditor", "finance"),
        _ => ("finance", "registrar"),
    }
}

/// A body of `kind` for the county to act, new in its objects for each `n`.
fn body(kind: &str, n: u32) -> Value {
    match kind {
        "office_register" => json!({"office_id": format!("4228221099{n:02}"), "name": format!("村{n}"),
            "level": "village", "parent": COUNTY, "region_code": format!("4228221099{n:02}"), "keys": []}),
        "key_add" => json!({"office_id": COUNTY, "key_id": format!("{COUNTY}/new{n}"),
            "public_key": public_key_for(&format!("{COUNTY}/new{n}")), "roles": ["auditor"]}),
        "key_revoke" => json!({"office_id": COUNTY, "key_id": format!("{COUNTY}/target{n}"), "reason": "轮换"}),
        "appropriate" => {
            json!({"program": "ranger", "amount_fen": 1, "budget_ref": format!("b{n}"), "fiscal_year": 2018})
        }
        "transfer" => json!({"to_office": VILLAGE, "program": "ranger", "amount_fen": 1, "doc_ref": format!("d{n}")}),
        "reallocate" => {
            json!({"from_program": "industry", "to_program": "ranger", "amount_fen": 1, "doc_ref": format!("r{n}")})
        }
        "household_register" => household(VILLAGE, &format!("{VILLAGE}-9{n:03}")),
        "household_update" => {
            json!({"household_id": format!("{VILLAGE}-0002"), "status": "enrolled", "reason": format!("复核{n}")})
        }
        "payout" => json!({"household_id": format!("{VILLAGE}-0001"), "program": "ranger", "amount_fen": 1,
            "period": "2019", "card_digest": "a".repeat(64)}),
        "project_register" => {
            json!({"project_id": format!("P{n}"), "program": "industry", "name": format!("项目{n}"), "budget_fen": 100})
        }
        "expenditure" => json!({"program": "industry", "project_id": null, "payee_id": "91422822MA0000000X",
            "payee_name": "某公司", "category": "goods", "amount_fen": 1, "doc_ref": format!("x{n}")}),
        "refund" => json!({"ref_event": "e000016", "amount_fen": 1, "reason": format!("退回{n}")}),
        "notice_publish" => json!({"notice_id": format!("N{n}"), "scope": "payout_roster", "program": "ranger",
            "period": "2019", "households": [format!("{VILLAGE}-0001")], "from": DATE, "to": "2018-12-31",
            "document_digest": "c".repeat(64)}),
        "flag_review" => json!({"flag_id": "b5d1ee7a581e92cd", "status": "under_review", "note": format!("复核{n}")}),
        "program_define" => json!({"program_id": format!("prog{n}"), "name": "测试项目资金", "earmarked": false,
            "payee": "any", "standard_fen": null, "cap_fen_per_year": null, "period": "year"}),
        "genesis" => {
            json!({"name": "第二账本", "root_keys": [{"key_id": "root/k1", "public_key": public_of("root/k1")}],
            "log_key": {"key_id": "log/k1", "public_key": public_of("log/k1")}, "currency": "CNY"})
        }
        other => panic!("no body for {other}"),
    }
}

fn household(village: &str, id: &str) -> Value {
    json!({"household_id": id, "village": village, "head_name_masked": "赵*",
           "members": [{"person_digest": digest(&format!("person {id}")), "name_masked": "赵*"}],
           "card": {"card_digest": digest(&format!("card {id}")), "card_masked": "6228********0001", "bank": "b"}})
}

fn public_key_for(key_id: &str) -> String {
    Keyring::new().derive(key_id)
}

fn public_of(key_id: &str) -> String {
    sunledger::encoding::base64_encode(keys()[key_id].verifying_key().as_bytes())
}

/// The 16 kinds; the two root acts are handled by their own rows.
const COUNTY_KINDS: [&str; 14] = [
    "office_register",
    "key_add",
    "key_revoke",
    "appropriate",
    "transfer",
    "reallocate",
    "household_register",
    "household_update",
    "payout",
    "project_register",
    "expenditure",
    "refund",
    "notice_publish",
    "flag_review",
];

/// A ledger under test: the vector ledger plus the test's setup.
struct World {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    keys: Keyring,
    next: u32,
    /// Every envelope accepted, for the replay into another ledger.
    accepted: Vec<String>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let data = vector_ledger(dir.path());
        let ledger = Ledger::open(&data).unwrap();
        let mut world = World { _dir: dir, ledger, keys: Keyring::new(), next: 0, accepted: Vec::new() };
        world.setup();
        world
    }

    fn id(&mut self) -> String {
        self.next += 1;
        format!("auth-{}", self.next)
    }

    fn submit(&mut self, line: &str) -> Outcome {
        let outcomes = self.ledger.append_group(&[line.as_bytes()], OnRejection::Stop).unwrap();
        assert_eq!(outcomes.len(), 1);
        if matches!(outcomes[0], Outcome::Appended { .. }) {
            self.accepted.push(line.to_string());
        }
        outcomes[0].clone()
    }

    fn accept(&mut self, kind: &str, office: &str, body: Value, key_ids: &[&str]) -> u64 {
        let id = self.id();
        let line = self.keys.sign(&event(LEDGER, &id, kind, office, body), key_ids);
        match self.submit(&line) {
            Outcome::Appended { seq, .. } => seq,
            other => panic!("{kind} by {key_ids:?} should be accepted: {other:?}"),
        }
    }

    /// Registers a key of `office` holding exactly `roles`, signed by its admin.
    fn add_key(&mut self, office: &str, key_id: &str, roles: &[&str], admin: &str) {
        let public = self.keys.derive(key_id);
        let body = json!({"office_id": office, "key_id": key_id, "public_key": public, "roles": roles});
        self.accept("key_add", office, body, &[admin]);
    }

    fn setup(&mut self) {
        // Another county (所属州 registers it) and a second village of our county.
        let other_county_key = self.keys.derive(&format!("{OTHER_COUNTY}/k1"));
        let body = json!({"office_id": OTHER_COUNTY, "name": "巴东县财政局", "level": "county", "parent": "422800",
            "region_code": OTHER_COUNTY, "keys": [{"key_id": format!("{OTHER_COUNTY}/k1"), "public_key": other_county_key,
            "roles": ["admin", "finance", "registrar", "auditor"]}]});
        self.accept("office_register", "422800", body, &["422800/k1"]);
        let village_key = self.keys.derive(&format!("{OTHER_VILLAGE}/k1"));
        let body = json!({"office_id": OTHER_VILLAGE, "name": "业州镇二村", "level": "village", "parent": COUNTY,
            "region_code": OTHER_VILLAGE, "keys": [{"key_id": format!("{OTHER_VILLAGE}/k1"), "public_key": village_key,
            "roles": ["registrar"]}]});
        self.accept("office_register", COUNTY, body, &["422822/k1"]);
        // One key per single role in the county, and keys for key_revoke rows to revoke.
        for role in ["admin", "finance", "registrar", "auditor"] {
            self.add_key(COUNTY, &format!("{COUNTY}/{role}"), &[role], "422822/k1");
        }
        for n in 0..8 {
            self.add_key(COUNTY, &format!("{COUNTY}/target{n}"), &["auditor"], "422822/k1");
        }
    }

    /// Signs and submits; returns the code of the refusal (or "accepted"/"repeated").
    fn outcome(&mut self, kind: &str, office: &str, body: Value, key_ids: &[&str]) -> String {
        let id = self.id();
        let line = self.keys.sign(&event(LEDGER, &id, kind, office, body), key_ids);
        code_of(&self.submit(&line))
    }
}

fn code_of(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Appended { .. } => "accepted".into(),
        Outcome::Repeated { .. } => "repeated".into(),
        Outcome::Rejected(rejection) => rejection.code.as_str().into(),
        Outcome::Skipped => "skipped".into(),
    }
}

/// Bodies for a kind: distinct objects per call (`n` counts up per kind).
struct Bodies(BTreeMap<&'static str, u32>);

impl Bodies {
    fn next(&mut self, kind: &'static str) -> Value {
        let n = self.0.entry(kind).or_default();
        *n += 1;
        body(kind, *n - 1)
    }
}

#[test]
fn every_kind_refuses_the_wrong_signers() {
    // Goal: per kind (table rows): the county's full key is accepted; a county key holding only another
    // role, and a key of another county holding every role, are `forbidden`.
    let mut world = World::new();
    let mut bodies = Bodies(BTreeMap::new());
    let mut table = Vec::new();
    for kind in COUNTY_KINDS {
        let (role, lacking) = roles(kind);
        let lacking_key = format!("{COUNTY}/{lacking}");
        let other_office_key = format!("{OTHER_COUNTY}/k1");
        table.push((kind, COUNTY, "422822/k1".to_string(), "accepted"));
        table.push((kind, COUNTY, format!("{COUNTY}/{role}"), "accepted"));
        table.push((kind, COUNTY, lacking_key, "forbidden"));
        table.push((kind, COUNTY, other_office_key, "forbidden"));
    }
    // Root acts: program_define by root is the control; by an office (even one holding every role) or
    // signed by an office key in root's name, it is forbidden. A second genesis is forbidden.
    table.push(("program_define", "root", "root/k1".into(), "accepted"));
    table.push(("program_define", "420000", "420000/k1".into(), "forbidden"));
    table.push(("program_define", "root", "420000/k1".into(), "forbidden"));
    table.push(("genesis", "root", "root/k1".into(), "forbidden"));
    table.push(("genesis", "root", "420000/k1".into(), "forbidden"));
    let mut failures = Vec::new();
    for (kind, office, key, expected) in &table {
        let got = world.outcome(kind, office, bodies.next(kind), &[key.as_str()]);
        if got != *expected {
            failures.push(format!("{kind} by {office} signed {key}: expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(table.len(), 14 * 4 + 5);
    replay_into_another_ledger(&world.accepted);
}

#[test]
fn revoked_keys_sign_nothing_after_their_revocation() {
    // Goal: per county kind, with a fresh key holding the role: an event signed and submitted before the
    // revocation is accepted (and its repeat afterwards answers with the same seq); after the revocation
    // a new event, and one signed before it but submitted after, are both `revoked_key`.
    let mut world = World::new();
    let mut bodies = Bodies(BTreeMap::new());
    let mut failures = Vec::new();
    for kind in COUNTY_KINDS {
        let (role, _) = roles(kind);
        let key_id = format!("{COUNTY}/rv-{kind}");
        world.add_key(COUNTY, &key_id, &[role], "422822/k1");
        let before_id = world.id();
        let before = world.keys.sign(&event(LEDGER, &before_id, kind, COUNTY, bodies.next(kind)), &[&key_id]);
        let first = world.submit(&before);
        let held_id = world.id();
        let held_back = world.keys.sign(&event(LEDGER, &held_id, kind, COUNTY, bodies.next(kind)), &[&key_id]);
        world.accept(
            "key_revoke",
            COUNTY,
            json!({"office_id": COUNTY, "key_id": key_id, "reason": "设备丢失"}),
            &["422822/k1"],
        );
        let after = world.outcome(kind, COUNTY, bodies.next(kind), &[&key_id]);
        let late = code_of(&world.submit(&held_back));
        let repeat = world.submit(&before);
        let repeat_matches = match (&first, &repeat) {
            (Outcome::Appended { seq, hash }, Outcome::Repeated { seq: s, hash: h }) => seq == s && hash == h,
            _ => false,
        };
        if code_of(&first) != "accepted" || after != "revoked_key" || late != "revoked_key" || !repeat_matches {
            failures.push(format!(
                "{kind}: before {}, after {after}, signed before but late {late}, repeat {repeat:?}",
                code_of(&first)
            ));
        }
    }
    // Dual control with one revoked key of two is still refused.
    let body = json!({"program": "ranger", "amount_fen": 60_000_000u64, "budget_ref": "big", "fiscal_year": 2018});
    assert_eq!(world.outcome("appropriate", "420000", body, &["420000/k1", "420000/k2"]), "revoked_key");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn registrars_and_payers_act_only_in_their_region() {
    // Goal: a village registrar registers and updates households of its own village only; a county pays
    // households of its own region only; out of region is `forbidden` (controls accepted).
    let mut world = World::new();
    let village_key = format!("{VILLAGE}/k1");
    let other_village_key = format!("{OTHER_VILLAGE}/k1");
    let rows: Vec<(&str, &str, Value, &str, &str)> = vec![
        ("household_register", VILLAGE, household(VILLAGE, "422822101201-7001"), village_key.as_str(), "accepted"),
        (
            "household_register",
            VILLAGE,
            household(OTHER_VILLAGE, "422822101202-7002"),
            village_key.as_str(),
            "forbidden",
        ),
        (
            "household_register",
            OTHER_VILLAGE,
            household(VILLAGE, "422822101201-7003"),
            other_village_key.as_str(),
            "forbidden",
        ),
        (
            "household_update",
            OTHER_VILLAGE,
            json!({"household_id": "422822101201-0001", "reason": "越权"}),
            other_village_key.as_str(),
            "forbidden",
        ),
        (
            "household_update",
            VILLAGE,
            json!({"household_id": "422822101201-0001", "reason": "复核"}),
            village_key.as_str(),
            "accepted",
        ),
        ("payout", OTHER_COUNTY, body("payout", 0), "422823/k1", "forbidden"),
        ("payout", COUNTY, body("payout", 0), "422822/k1", "accepted"),
    ];
    let mut failures = Vec::new();
    for (kind, office, body, key, expected) in rows {
        let got = world.outcome(kind, office, body, &[key]);
        if got != expected {
            failures.push(format!("{kind} by {office}: expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every accepted envelope, replayed into a ledger with another id but the
/// same keys and offices, is `wrong_ledger` (checked before keys and signatures).
fn replay_into_another_ledger(accepted: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let mut other = Ledger::open(&dir.path().join("other")).unwrap();
    let keyring = Keyring::new();
    // The vector ledger's events re-signed for ledger "hb-demo-2018-b" (same keys, same offices).
    for line in vector_lines("envelopes.jsonl") {
        let envelope = Envelope::parse(line.as_bytes()).unwrap();
        let mut payload: Value = serde_json::from_slice(&envelope.payload).unwrap();
        payload["ledger"] = "hb-demo-2018-b".into();
        let key_ids: Vec<&str> = envelope.signatures.iter().map(|s| s.key_id.as_str()).collect();
        let resigned = keyring.sign(&payload, &key_ids);
        let outcome = &other.append_group(&[resigned.as_bytes()], OnRejection::Stop).unwrap()[0];
        assert!(matches!(outcome, Outcome::Appended { .. }), "{outcome:?}");
    }
    let mut replays: Vec<String> = vector_lines("envelopes.jsonl");
    replays.extend(accepted.iter().cloned());
    let mut kinds = std::collections::BTreeSet::new();
    for line in &replays {
        let outcome = &other.append_group(&[line.as_bytes()], OnRejection::Stop).unwrap()[0];
        let payload: Value = serde_json::from_slice(&Envelope::parse(line.as_bytes()).unwrap().payload).unwrap();
        assert_eq!(code_of(outcome), "wrong_ledger", "replay of {payload}");
        kinds.insert(payload["kind"].as_str().unwrap().to_string());
    }
    assert_eq!(kinds.len(), 16, "every kind was replayed: {kinds:?}");
}

#[test]
fn root_keys_cannot_be_added_or_revoked() {
    // Goal: pin what the ledger does where SPEC is silent: root is not an office, so key_add and
    // key_revoke naming office "root" are `unknown_reference` — root keys are fixed at genesis and a
    // lost root key cannot be revoked or replaced (raised with the lead as a SPEC question).
    let mut world = World::new();
    let public = world.keys.derive("root/k2");
    let add = json!({"office_id": "root", "key_id": "root/k2", "public_key": public, "roles": ["admin"]});
    assert_eq!(world.outcome("key_add", "root", add, &["root/k1"]), "unknown_reference");
    let revoke = json!({"office_id": "root", "key_id": "root/k1", "reason": "轮换"});
    assert_eq!(world.outcome("key_revoke", "root", revoke, &["root/k1"]), "unknown_reference");
}
