//! Test support for the projection and rule tests: a small world of offices,
//! programs and households, a builder that signs payloads with deterministic
//! keys, and import into a fresh ledger in a temporary directory.
//!
//! Every event the builder makes must be accepted by the validator: a
//! rejection fails the test with the event id and the error, because a case
//! that the ledger refuses tests nothing about the rules.

#![allow(dead_code)] // each test binary uses a different part of this module

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use sunledger::envelope::Envelope;
use sunledger::ledger::{Ledger, OnRejection, Outcome};
use sunledger::policy::Policy;
use sunledger::rules::{evaluate, Flag};

pub const LEDGER_ID: &str = "test-ledger";
pub const PROVINCE: &str = "420000";
pub const PREFECTURE: &str = "422800";
pub const COUNTY: &str = "422822";
pub const OTHER_COUNTY: &str = "422823";
pub const VILLAGE: &str = "422822101201";
pub const AUDITOR: &str = "422822-aud";
/// Households registered by the base world, each with its own card and person.
pub const BASE_HOUSEHOLDS: [&str; 8] = ["H1", "H2", "H3", "H4", "H5", "H6", "H7", "H8"];
pub const BASE_DATE: &str = "2018-12-01";

/// The vectors directory (SPEC §8), next to the project.
pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors")
}

pub fn hex_sha256(text: &str) -> String {
    sunledger::encoding::hex(&sunledger::encoding::sha256(text.as_bytes()))
}

/// Test digests: sha256 of a label (the chain only ever sees digests).
pub fn card(label: &str) -> String {
    hex_sha256(&format!("card:{label}"))
}

pub fn person(label: &str) -> String {
    hex_sha256(&format!("person:{label}"))
}

fn key(key_id: &str) -> SigningKey {
    SigningKey::from_bytes(&sunledger::encoding::sha256(key_id.as_bytes()))
}

fn public_key(key_id: &str) -> String {
    sunledger::encoding::base64_encode(&key(key_id).verifying_key().to_bytes())
}

fn office_keys(office: &str) -> Value {
    let roles = json!(["admin", "finance", "registrar", "auditor"]);
    json!([
        {"key_id": format!("{office}/k1"), "public_key": public_key(&format!("{office}/k1")), "roles": roles},
        {"key_id": format!("{office}/k2"), "public_key": public_key(&format!("{office}/k2")), "roles": roles},
    ])
}

/// A ledger being described event by event.
pub struct World {
    pub envelopes: Vec<(String, Vec<u8>)>,
    counter: u64,
    /// The card each household is bound to, for payouts to "its" card.
    cards: BTreeMap<String, String>,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// Genesis, a province → prefecture → two counties → village tree, an
    /// auditor, five programs and households H1–H8 (registered 2018-12-01).
    pub fn new() -> World {
        let mut world = World::empty();
        let body = json!({"name": "test", "currency": "CNY",
            "root_keys": [{"key_id": "root/k1", "public_key": public_key("root/k1")}],
            "log_key": {"key_id": "log/k1", "public_key": public_key("log/k1")}});
        world.raw("genesis", "root", "2018-11-01", "genesis", body);
        world.office(PROVINCE, "province", None, "420000");
        world.office(PREFECTURE, "prefecture", Some(PROVINCE), "422800");
        world.office(COUNTY, "county", Some(PREFECTURE), "422822");
        world.office(OTHER_COUNTY, "county", Some(PREFECTURE), "422823");
        world.office(AUDITOR, "county", Some(PREFECTURE), "422822");
        world.office(VILLAGE, "village", Some(COUNTY), "422822101201");
        world.program("dibao", true, "household", Some(30_000), Some(360_000), "month");
        world.program("ranger", true, "household", Some(400_000), Some(400_000), "year");
        world.program("edu", true, "household", None, None, "year");
        world.program("grant", false, "household", None, Some(100_000), "quarter");
        world.program("industry", false, "any", None, None, "once");
        for household in BASE_HOUSEHOLDS {
            world.register(&format!("reg-{household}"), household, BASE_DATE, &[household], household);
        }
        world
    }

    pub fn empty() -> World {
        World { envelopes: Vec::new(), counter: 0, cards: BTreeMap::new() }
    }

    /// A fresh event id.
    pub fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("e{:05}", self.counter)
    }

    /// Signs and queues one event; `root` events by root/k1, others by both
    /// keys of the office (so dual control always holds).
    pub fn raw(&mut self, id: &str, office: &str, at: &str, kind: &str, body: Value) {
        let payload =
            json!({"v": 1, "ledger": LEDGER_ID, "id": id, "kind": kind, "office": office, "at": at, "body": body});
        let signers: Vec<(String, SigningKey)> = if office == "root" {
            vec![("root/k1".to_string(), key("root/k1"))]
        } else {
            ["k1", "k2"].iter().map(|k| format!("{office}/{k}")).map(|k| (k.clone(), key(&k))).collect()
        };
        let envelope = Envelope::sign(payload.to_string().into_bytes(), &signers);
        self.envelopes.push((id.to_string(), envelope.to_json().into_bytes()));
    }

    /// An event with a generated id; returns the id.
    pub fn event(&mut self, office: &str, at: &str, kind: &str, body: Value) -> String {
        let id = self.next_id();
        self.raw(&id, office, at, kind, body);
        id
    }

    pub fn office(&mut self, id: &str, level: &str, parent: Option<&str>, region: &str) {
        let body = json!({"office_id": id, "name": format!("office {id}"), "level": level, "parent": parent,
                          "region_code": region, "contact": "12317", "keys": office_keys(id)});
        self.event(parent.unwrap_or("root"), "2018-11-01", "office_register", body);
    }

    pub fn program(
        &mut self,
        id: &str,
        earmarked: bool,
        payee: &str,
        standard: Option<u64>,
        cap: Option<u64>,
        period: &str,
    ) {
        let body = json!({"program_id": id, "name": id, "earmarked": earmarked, "payee": payee,
                          "standard_fen": standard, "cap_fen_per_year": cap, "period": period});
        self.event("root", "2018-11-01", "program_define", body);
    }

    /// Registers a household in the village; persons and card are labels.
    pub fn register(&mut self, id: &str, household: &str, at: &str, persons: &[&str], card_label: &str) {
        let members: Vec<Value> =
            persons.iter().map(|p| json!({"person_digest": person(p), "name_masked": "张*三"})).collect();
        let body = json!({"household_id": household, "village": VILLAGE, "head_name_masked": "张*三",
            "members": members,
            "card": {"card_digest": card(card_label), "card_masked": "6228********1234", "bank": "农信"}});
        self.raw(id, COUNTY, at, "household_register", body);
        self.cards.insert(household.to_string(), card(card_label));
    }

    /// A household update with the given body fields (household_id added).
    pub fn update(&mut self, id: &str, household: &str, at: &str, mut body: Value) {
        body["household_id"] = json!(household);
        if let Some(digest) = body.pointer("/card/card_digest").and_then(Value::as_str) {
            self.cards.insert(household.to_string(), digest.to_string());
        }
        self.raw(id, COUNTY, at, "household_update", body);
    }

    /// A card object for a household update.
    pub fn card_body(label: &str) -> Value {
        json!({"card_digest": card(label), "card_masked": "6217********0002", "bank": "邮储"})
    }

    /// Appropriates at the province and passes the money down to `office`
    /// the same day (so nothing stalls on the way). Ids `{tag}-a`, `{tag}-1`…
    pub fn fund(&mut self, tag: &str, office: &str, program: &str, amount: u64, at: &str) {
        let body = json!({"program": program, "amount_fen": amount, "budget_ref": "b", "fiscal_year": 2019});
        self.raw(&format!("{tag}-a"), PROVINCE, at, "appropriate", body);
        let path: &[&str] = match office {
            PROVINCE => &[],
            PREFECTURE => &[PREFECTURE],
            _ => &[PREFECTURE, office],
        };
        let mut from = PROVINCE;
        for (i, to) in path.iter().enumerate() {
            self.transfer(&format!("{tag}-{}", i + 1), from, to, program, amount, at);
            from = to;
        }
    }

    pub fn appropriate(&mut self, id: &str, office: &str, program: &str, amount: u64, at: &str) {
        let body = json!({"program": program, "amount_fen": amount, "budget_ref": "b", "fiscal_year": 2019});
        self.raw(id, office, at, "appropriate", body);
    }

    pub fn transfer(&mut self, id: &str, from: &str, to: &str, program: &str, amount: u64, at: &str) {
        let body = json!({"to_office": to, "program": program, "amount_fen": amount, "doc_ref": "t"});
        self.raw(id, from, at, "transfer", body);
    }

    pub fn reallocate(&mut self, id: &str, office: &str, from: &str, to: &str, amount: u64, at: &str) {
        let body = json!({"from_program": from, "to_program": to, "amount_fen": amount, "doc_ref": "r"});
        self.raw(id, office, at, "reallocate", body);
    }

    /// A roster notice by `office`.
    #[allow(clippy::too_many_arguments)]
    pub fn notice(
        &mut self,
        id: &str,
        office: &str,
        program: &str,
        period: Option<&str>,
        households: &[&str],
        from: &str,
        to: &str,
    ) {
        let mut body = json!({"notice_id": id, "scope": "payout_roster", "program": program, "households": households,
                              "from": from, "to": to, "document_digest": hex_sha256(id)});
        if let Some(period) = period {
            body["period"] = json!(period);
        }
        self.raw(id, office, from, "notice_publish", body);
    }

    /// A payout by the county to the household's bound card.
    pub fn payout(&mut self, id: &str, at: &str, household: &str, program: &str, period: &str, amount: u64) {
        let card = self.cards.get(household).cloned().unwrap_or_else(|| card(household));
        self.payout_to(id, at, household, program, period, amount, &card, None);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn payout_to(
        &mut self,
        id: &str,
        at: &str,
        household: &str,
        program: &str,
        period: &str,
        amount: u64,
        card_digest: &str,
        person_digest: Option<&str>,
    ) {
        let mut body = json!({"household_id": household, "program": program, "amount_fen": amount,
                              "period": period, "card_digest": card_digest});
        if let Some(p) = person_digest {
            body["person_digest"] = json!(p);
        }
        self.raw(id, COUNTY, at, "payout", body);
    }

    pub fn refund(&mut self, id: &str, at: &str, ref_event: &str, amount: u64) {
        let body = json!({"ref_event": ref_event, "amount_fen": amount, "reason": "退票"});
        self.raw(id, COUNTY, at, "refund", body);
    }

    pub fn project(&mut self, id: &str, office: &str, project: &str, program: &str, budget: u64, at: &str) {
        let body = json!({"project_id": project, "program": program, "name": "路", "budget_fen": budget});
        self.raw(id, office, at, "project_register", body);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn expenditure(
        &mut self,
        id: &str,
        at: &str,
        program: &str,
        project: Option<&str>,
        payee: &str,
        category: &str,
        amount: u64,
    ) {
        let body = json!({"program": program, "project_id": project, "payee_id": payee, "payee_name": "某公司",
                          "category": category, "amount_fen": amount, "doc_ref": "d"});
        self.raw(id, COUNTY, at, "expenditure", body);
    }

    pub fn review(&mut self, id: &str, at: &str, flag_id: &str, status: &str, note: &str) {
        let body = json!({"flag_id": flag_id, "status": status, "note": note});
        self.raw(id, AUDITOR, at, "flag_review", body);
    }

    /// Moves the ledger clock to `at` with an event that moves no money.
    pub fn clock(&mut self, at: &str) {
        let id = self.next_id();
        self.review(&id, at, "0000000000000000", "under_review", "clock");
    }

    /// Imports every queued event into a fresh ledger; all must be accepted.
    pub fn import(&self) -> Imported {
        let directory = tempfile::tempdir().expect("temporary directory");
        let mut ledger = Ledger::open(directory.path()).expect("open ledger");
        let lines: Vec<&[u8]> = self.envelopes.iter().map(|(_, bytes)| bytes.as_slice()).collect();
        let outcomes = ledger.append_group(&lines, OnRejection::KeepGoing).expect("append");
        let mut seqs = BTreeMap::new();
        for ((id, _), outcome) in self.envelopes.iter().zip(&outcomes) {
            match outcome {
                Outcome::Appended { seq, .. } => {
                    seqs.insert(id.clone(), *seq);
                }
                other => panic!("event {id} was not accepted: {other:?}"),
            }
        }
        Imported { ledger, seqs, _directory: directory }
    }
}

/// A ledger built from a [`World`], with each event id's seq.
pub struct Imported {
    pub ledger: Ledger,
    pub seqs: BTreeMap<String, u64>,
    _directory: tempfile::TempDir,
}

impl Imported {
    pub fn flags(&self, policy: &Policy) -> Vec<Flag> {
        evaluate(self.ledger.projections(), self.ledger.state(), policy)
    }

    pub fn seq(&self, id: &str) -> u64 {
        *self.seqs.get(id).unwrap_or_else(|| panic!("no event {id}"))
    }
}

/// Reads a JSON Lines file of envelopes into a fresh ledger; every line must
/// be accepted (a rejection names the line and the error).
pub fn import_file(path: &Path) -> (Ledger, tempfile::TempDir) {
    let text = std::fs::read_to_string(path).expect("vector file");
    let directory = tempfile::tempdir().expect("temporary directory");
    let mut ledger = Ledger::open(directory.path()).expect("open ledger");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let bytes: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    let outcomes = ledger.append_group(&bytes, OnRejection::KeepGoing).expect("append");
    for (number, outcome) in outcomes.iter().enumerate() {
        if let Outcome::Rejected(rejection) = outcome {
            panic!("{} line {}: rejected {:?}: {}", path.display(), number + 1, rejection.code, rejection.message);
        }
    }
    assert_eq!(outcomes.len(), lines.len());
    (ledger, directory)
}

/// The vector fields of a flag: rule, subject, evidence, flag_id (and review
/// if present).
pub fn vector_view(flag: &Value) -> Value {
    let mut view = json!({"rule": flag["rule"], "subject": flag["subject"], "evidence": flag["evidence"],
                          "flag_id": flag["flag_id"]});
    if let Some(review) = flag.get("review") {
        view["review"] = review.clone();
    }
    view
}

/// Reopens a ledger directory. Another test of the same binary may be
/// spawning the CLI at that moment, and a child process holds a copy of our
/// descriptors (and so sled's flock) until its exec closes them; retry a
/// bounded number of times rather than fail on that race.
pub fn reopen(directory: &Path) -> Ledger {
    const ATTEMPTS_MAX: u32 = 100;
    for _ in 0..ATTEMPTS_MAX {
        match Ledger::open(directory) {
            Ok(ledger) => return ledger,
            Err(error) if error.0.contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(error) => panic!("reopen {}: {error}", directory.display()),
        }
    }
    panic!("reopen {}: still locked after {ATTEMPTS_MAX} attempts", directory.display())
}
