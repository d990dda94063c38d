//! The validator's view of the ledger: keys, offices, programs, households,
//! projects and fund balances, as a pure fold over accepted events.
//!
//! Owns: `State::apply`, the only place ledger state changes. Invariant: no
//! fund balance is negative, and Σappropriated = Σbalances + Σpaid + Σspent −
//! Σrefunded after every event. Never: does I/O or validates (that is
//! `validate`, which runs before `apply` and never mutates).

use crate::date::Date;
use crate::encoding::Hash;
use crate::payload::{Body, Level, Payload, Role};
use crate::sym::Sym;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The office id that root keys act for.
pub const ROOT_OFFICE: &str = "root";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    pub office: String,
    pub public_key: [u8; 32],
    pub roles: Vec<Role>,
    /// Seq of the `key_revoke` that ended it.
    pub revoked_at_seq: Option<u64>,
}

impl KeyState {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficeState {
    pub name: String,
    pub level: Level,
    pub parent: Option<String>,
    pub region_code: String,
    pub contact: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramState {
    pub name: String,
    pub earmarked: bool,
    pub standard_fen: Option<u64>,
    pub cap_fen_per_year: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdState {
    pub village: Sym,
    pub village_region_code: Sym,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectState {
    pub office: String,
    pub program: String,
    pub budget_fen: u64,
}

/// Money totals of SPEC §1's conservation equation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub appropriated_fen: u64,
    pub paid_out_fen: u64,
    pub spent_fen: u64,
    pub refunded_fen: u64,
}

/// What the ledger remembers of each accepted event id: enough for
/// idempotency, duplicate detection and refunds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedEvent {
    pub seq: u64,
    /// SHA-256 of the payload bytes: same id + same digest = idempotent repeat.
    pub payload_digest: Hash,
    pub kind: String,
    pub office: String,
    /// For payouts and expenditures: the debited account and amount.
    pub account: Option<String>,
    pub amount_fen: u64,
}

/// The whole validator state. Serialisable, for the store's snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub ledger_id: Option<String>,
    pub ledger_name: Option<String>,
    pub log_key: Option<(String, [u8; 32])>,
    pub keys: HashMap<String, KeyState>,
    pub offices: HashMap<String, OfficeState>,
    pub programs: HashMap<String, ProgramState>,
    /// Interned (360,000 at 10 M events, three texts each, the village's
    /// repeated by every household of it); reserved in full when a snapshot
    /// is read.
    #[serde(deserialize_with = "crate::sym::reserved_hash_map")]
    pub households: HashMap<Sym, HouseholdState>,
    pub projects: HashMap<String, ProjectState>,
    /// Fund accounts `office/program` → balance in fen. Sorted for output.
    pub balances: BTreeMap<String, u64>,
    pub totals: Totals,
    /// Refunds so far per refunded event id (only events that had refunds).
    pub refunded_by_event: HashMap<String, u64>,
    /// The ledger clock: the largest business date seen.
    pub clock: Option<Date>,
    /// Events applied so far (the next seq).
    pub size: u64,
}

pub fn account_id(office: &str, program: &str) -> String {
    format!("{office}/{program}")
}

impl State {
    pub fn balance(&self, account: &str) -> u64 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    fn credit(&mut self, account: String, amount: u64) {
        let balance = self.balances.entry(account).or_insert(0);
        *balance = balance.checked_add(amount).expect("balance overflow: amounts are bounded by 2^53");
    }

    fn debit(&mut self, account: String, amount: u64) {
        let balance = self.balances.entry(account).or_insert(0);
        assert!(*balance >= amount, "debit beyond balance passed validation");
        *balance -= amount;
    }

    /// Σbalances + Σpaid + Σspent − Σrefunded == Σappropriated.
    pub fn conserves_money(&self) -> bool {
        let held: u128 = self.balances.values().map(|b| u128::from(*b)).sum();
        let t = self.totals;
        held + u128::from(t.paid_out_fen) + u128::from(t.spent_fen)
            == u128::from(t.appropriated_fen) + u128::from(t.refunded_fen)
    }

    /// Applies an accepted event; returns what the event index keeps of it.
    /// `refunded_account` is the account of the refunded event, for refunds.
    pub fn apply(
        &mut self,
        seq: u64,
        payload: &Payload,
        payload_digest: Hash,
        refunded_account: Option<&str>,
    ) -> IndexedEvent {
        assert_eq!(seq, self.size, "events are applied in seq order");
        let office = payload.office.as_str();
        let mut indexed = IndexedEvent {
            seq,
            payload_digest,
            kind: payload.kind().to_string(),
            office: office.to_string(),
            account: None,
            amount_fen: 0,
        };
        match &payload.body {
            Body::Genesis(b) => {
                self.ledger_id = Some(payload.ledger.0.clone());
                self.ledger_name = Some(b.name.0.clone());
                self.log_key = Some((b.log_key.key_id.0.clone(), b.log_key.public_key.0));
                for key in &b.root_keys {
                    self.add_key(&key.key_id.0, ROOT_OFFICE, key.public_key.0, Vec::new());
                }
            }
            Body::OfficeRegister(b) => {
                self.offices.insert(
                    b.office_id.0.clone(),
                    OfficeState {
                        name: b.name.0.clone(),
                        level: b.level,
                        parent: b.parent.as_ref().map(|p| p.0.clone()),
                        region_code: b.region_code.0.clone(),
                        contact: b.contact.as_ref().map(|c| c.0.clone()),
                    },
                );
                for key in &b.keys {
                    self.add_key(&key.key_id.0, &b.office_id.0, key.public_key.0, key.roles.clone());
                }
            }
            Body::KeyAdd(b) => self.add_key(&b.key_id.0, &b.office_id.0, b.public_key.0, b.roles.clone()),
            Body::KeyRevoke(b) => {
                let key = self.keys.get_mut(b.key_id.as_str()).expect("revoked key exists (validated)");
                key.revoked_at_seq = Some(seq);
            }
            Body::ProgramDefine(b) => {
                self.programs.insert(
                    b.program_id.0.clone(),
                    ProgramState {
                        name: b.name.0.clone(),
                        earmarked: b.earmarked,
                        standard_fen: b.standard_fen.map(|a| a.fen()),
                        cap_fen_per_year: b.cap_fen_per_year.map(|a| a.fen()),
                    },
                );
            }
            Body::Appropriate(b) => {
                let amount = b.amount_fen.fen();
                self.credit(account_id(office, &b.program.0), amount);
                self.totals.appropriated_fen += amount;
            }
            Body::Transfer(b) => {
                let amount = b.amount_fen.fen();
                self.debit(account_id(office, &b.program.0), amount);
                self.credit(account_id(&b.to_office.0, &b.program.0), amount);
            }
            Body::Reallocate(b) => {
                let amount = b.amount_fen.fen();
                self.debit(account_id(office, &b.from_program.0), amount);
                self.credit(account_id(office, &b.to_program.0), amount);
            }
            Body::HouseholdRegister(b) => {
                let region = self.offices.get(b.village.as_str()).map(|o| o.region_code.clone()).unwrap_or_default();
                self.households.insert(
                    Sym::new(b.household_id.as_str()),
                    HouseholdState { village: Sym::new(b.village.as_str()), village_region_code: Sym::new(&region) },
                );
            }
            Body::HouseholdUpdate(_) | Body::NoticePublish(_) | Body::FlagReview(_) => {}
            Body::Payout(b) => {
                let amount = b.amount_fen.fen();
                let account = account_id(office, &b.program.0);
                self.debit(account.clone(), amount);
                self.totals.paid_out_fen += amount;
                indexed.account = Some(account);
                indexed.amount_fen = amount;
            }
            Body::ProjectRegister(b) => {
                self.projects.insert(
                    b.project_id.0.clone(),
                    ProjectState {
                        office: office.to_string(),
                        program: b.program.0.clone(),
                        budget_fen: b.budget_fen.fen(),
                    },
                );
            }
            Body::Expenditure(b) => {
                let amount = b.amount_fen.fen();
                let account = account_id(office, &b.program.0);
                self.debit(account.clone(), amount);
                self.totals.spent_fen += amount;
                indexed.account = Some(account);
                indexed.amount_fen = amount;
            }
            Body::Refund(b) => {
                let amount = b.amount_fen.fen();
                let account = refunded_account.expect("refund names a payout or expenditure (validated)");
                self.credit(account.to_string(), amount);
                self.totals.refunded_fen += amount;
                *self.refunded_by_event.entry(b.ref_event.0.clone()).or_insert(0) += amount;
            }
        }
        self.clock = Some(self.clock.map_or(payload.at, |c| c.max(payload.at)));
        self.size += 1;
        debug_assert!(self.conserves_money());
        indexed
    }

    fn add_key(&mut self, key_id: &str, office: &str, public_key: [u8; 32], roles: Vec<Role>) {
        let key = KeyState { office: office.to_string(), public_key, roles, revoked_at_seq: None };
        let previous = self.keys.insert(key_id.to_string(), key);
        assert!(previous.is_none(), "key ids are unique (validated)");
    }
}

/// Ledger id, name and log key (set once, by genesis).
type LedgerIdentity = (Option<String>, Option<String>, Option<(String, [u8; 32])>);

/// The prior values of everything one `apply` may touch, so it can be undone
/// (atomic batches validate every event, then undo, before applying any).
#[derive(Debug)]
pub struct Undo {
    keys: Vec<(String, Option<KeyState>)>,
    offices: Vec<(String, Option<OfficeState>)>,
    programs: Vec<(String, Option<ProgramState>)>,
    households: Vec<(Sym, Option<HouseholdState>)>,
    projects: Vec<(String, Option<ProjectState>)>,
    balances: Vec<(String, Option<u64>)>,
    refunded: Vec<(String, Option<u64>)>,
    ledger: LedgerIdentity,
    totals: Totals,
    clock: Option<Date>,
    size: u64,
}

fn saved<K, V>(map: &HashMap<K, V>, key: &str) -> (K, Option<V>)
where
    K: Eq + std::hash::Hash + std::borrow::Borrow<str> + for<'a> From<&'a str>,
    V: Clone,
{
    (K::from(key), map.get(key).cloned())
}

fn put_back<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, saved: Vec<(K, Option<V>)>) {
    for (key, value) in saved.into_iter().rev() {
        match value {
            Some(value) => map.insert(key, value),
            None => map.remove(&key),
        };
    }
}

impl State {
    /// Records what `apply(payload)` is about to change.
    pub fn capture(&self, payload: &Payload, refunded_account: Option<&str>) -> Undo {
        let office = payload.office.as_str();
        let balance = |account: String| (account.clone(), self.balances.get(&account).copied());
        let mut undo = Undo {
            keys: Vec::new(),
            offices: Vec::new(),
            programs: Vec::new(),
            households: Vec::new(),
            projects: Vec::new(),
            balances: Vec::new(),
            refunded: Vec::new(),
            ledger: (self.ledger_id.clone(), self.ledger_name.clone(), self.log_key.clone()),
            totals: self.totals,
            clock: self.clock,
            size: self.size,
        };
        match &payload.body {
            Body::Genesis(b) => undo.keys = b.root_keys.iter().map(|k| saved(&self.keys, k.key_id.as_str())).collect(),
            Body::OfficeRegister(b) => {
                undo.offices.push(saved(&self.offices, b.office_id.as_str()));
                undo.keys = b.keys.iter().map(|k| saved(&self.keys, k.key_id.as_str())).collect();
            }
            Body::KeyAdd(b) => undo.keys.push(saved(&self.keys, b.key_id.as_str())),
            Body::KeyRevoke(b) => undo.keys.push(saved(&self.keys, b.key_id.as_str())),
            Body::ProgramDefine(b) => undo.programs.push(saved(&self.programs, b.program_id.as_str())),
            Body::Appropriate(b) => undo.balances.push(balance(account_id(office, &b.program.0))),
            Body::Transfer(b) => {
                undo.balances.push(balance(account_id(office, &b.program.0)));
                undo.balances.push(balance(account_id(&b.to_office.0, &b.program.0)));
            }
            Body::Reallocate(b) => {
                undo.balances.push(balance(account_id(office, &b.from_program.0)));
                undo.balances.push(balance(account_id(office, &b.to_program.0)));
            }
            Body::HouseholdRegister(b) => undo.households.push(saved(&self.households, b.household_id.as_str())),
            Body::Payout(b) => undo.balances.push(balance(account_id(office, &b.program.0))),
            Body::ProjectRegister(b) => undo.projects.push(saved(&self.projects, b.project_id.as_str())),
            Body::Expenditure(b) => undo.balances.push(balance(account_id(office, &b.program.0))),
            Body::Refund(b) => {
                if let Some(account) = refunded_account {
                    undo.balances.push(balance(account.to_string()));
                }
                undo.refunded.push((b.ref_event.0.clone(), self.refunded_by_event.get(b.ref_event.as_str()).copied()));
            }
            Body::HouseholdUpdate(_) | Body::NoticePublish(_) | Body::FlagReview(_) => {}
        }
        undo
    }

    /// Puts back what `capture` recorded. Undo in reverse order of apply.
    pub fn restore(&mut self, undo: Undo) {
        put_back(&mut self.keys, undo.keys);
        put_back(&mut self.offices, undo.offices);
        put_back(&mut self.programs, undo.programs);
        put_back(&mut self.households, undo.households);
        put_back(&mut self.projects, undo.projects);
        put_back(&mut self.refunded_by_event, undo.refunded);
        for (account, value) in undo.balances.into_iter().rev() {
            match value {
                Some(value) => self.balances.insert(account, value),
                None => self.balances.remove(&account),
            };
        }
        (self.ledger_id, self.ledger_name, self.log_key) = undo.ledger;
        self.totals = undo.totals;
        self.clock = undo.clock;
        self.size = undo.size;
    }
}
