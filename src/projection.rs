//! Projections (SPEC §7): pure folds over the chain — fund accounts with FIFO
//! lots, per office and program flows, households, projects — kept up to date
//! as events are appended and snapshotted with the validator state.
//!
//! Owns: everything the misuse rules and the reports read, and the facts of
//! the rules that must be judged at an event's place in ledger order (card
//! binding, membership, notices recorded before a payout, project budgets).
//! Facts are stored without thresholds, so the policy file (which the writer
//! does not know) is applied when flags are evaluated, not when events are
//! folded in.
//!
//! Invariants: folding the same events in the same order gives equal (and
//! byte-identical when serialised) projections — every map is a BTreeMap;
//! the lots of an account sum to its balance in `State`; folding one event
//! costs time bounded by what that event touches (its account's consumed
//! lots, its household, its card or person group), never by the ledger's
//! length. Never: does I/O, validates (events arrive accepted), or reads a
//! clock (time is the events' business dates).

use crate::date::{Date, Period};
use crate::payload::{Body, Category, HouseholdStatus, Level, Payload, ReviewStatus};
use crate::rules::Rule;
use crate::state::{account_id, State};
use crate::sym::Sym;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// SPEC §7 stalled_pass_through: the levels that must pass money on.
pub const PASS_THROUGH_LEVELS: [Level; 3] = [Level::Central, Level::Province, Level::Prefecture];
/// SPEC §7 cross_program_diversion: reallocation (统筹整合) is a county power;
/// these levels are above county.
pub const ABOVE_COUNTY_LEVELS: [Level; 3] = [Level::Central, Level::Province, Level::Prefecture];
/// SPEC §7 forbidden_expenditure categories (违规支出).
pub const FORBIDDEN_CATEGORIES: [Category; 6] = [
    Category::Admin,
    Category::Salary,
    Category::Vehicle,
    Category::Building,
    Category::Hospitality,
    Category::Lending,
];
/// Offices are at most six levels deep (central → village); a parent walk
/// longer than this means a broken office tree.
pub const OFFICE_DEPTH_MAX: usize = 6;

/// A FIFO lot of a fund account: what one credit left in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// The crediting event.
    pub seq: u64,
    /// Its business date: the lot's age runs from here.
    pub at: Date,
    /// What is left of it.
    pub amount_fen: u64,
}

/// Money through one fund account, by kind of movement (cumulative fen;
/// saturating, since only the lots carry the balance).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flows {
    pub appropriated_fen: u64,
    pub transferred_in_fen: u64,
    pub reallocated_in_fen: u64,
    pub refunds_in_fen: u64,
    pub transferred_out_fen: u64,
    pub reallocated_out_fen: u64,
    pub paid_out_fen: u64,
    pub spent_fen: u64,
}

impl Flows {
    /// Appropriated + transferred in + reallocated in + refunds.
    pub fn received_fen(&self) -> u64 {
        self.appropriated_fen
            .saturating_add(self.transferred_in_fen)
            .saturating_add(self.reallocated_in_fen)
            .saturating_add(self.refunds_in_fen)
    }

    /// Transferred out + reallocated out.
    pub fn passed_on_fen(&self) -> u64 {
        self.transferred_out_fen.saturating_add(self.reallocated_out_fen)
    }
}

/// Part of a lot moved on by a debit after being held a while (kept only at
/// pass-through levels and only when held at least a day, since a threshold
/// of 0 days flags holds of 1 day or more).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldMove {
    pub lot_seq: u64,
    pub debit_seq: u64,
    pub held_days: u32,
    pub amount_fen: u64,
}

/// A fund account (office, program).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub lots: VecDeque<Lot>,
    /// Σ lots, kept so that the pair assertion with `State` is O(1).
    pub held_fen: u64,
    pub flows: Flows,
    pub held_moves: Vec<HeldMove>,
}

impl Account {
    pub fn balance_fen(&self) -> u64 {
        self.held_fen
    }

    /// Σ lots recomputed (tests and rebuild checks; O(lots)).
    pub fn lots_fen(&self) -> u64 {
        self.lots.iter().map(|lot| lot.amount_fen).sum()
    }

    fn credit(&mut self, seq: u64, at: Date, amount_fen: u64) {
        self.lots.push_back(Lot { seq, at, amount_fen });
        self.held_fen = self.held_fen.checked_add(amount_fen).expect("balances are bounded like State's");
    }

    /// Consumes the oldest lots first. `keep_moves` records held moves.
    fn debit(&mut self, seq: u64, at: Date, amount_fen: u64, keep_moves: bool) {
        assert!(self.held_fen >= amount_fen, "debits never exceed the balance (validated)");
        self.held_fen -= amount_fen;
        let mut left = amount_fen;
        while left > 0 {
            let lot = self.lots.front_mut().expect("debits never exceed the balance (validated)");
            let taken = lot.amount_fen.min(left);
            let held_days = lot.at.days_until(at);
            if keep_moves && held_days >= 1 {
                let held_days = u32::try_from(held_days).unwrap_or(u32::MAX);
                self.held_moves.push(HeldMove { lot_seq: lot.seq, debit_seq: seq, held_days, amount_fen: taken });
            }
            lot.amount_fen -= taken;
            left -= taken;
            if lot.amount_fen == 0 {
                self.lots.pop_front();
            }
        }
    }
}

/// A household status change as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub seq: u64,
    pub at: Date,
    pub status: HouseholdStatus,
    pub reason: Option<String>,
}

/// A current member: masked name and the event that added them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name_masked: String,
    pub added_seq: u64,
}

/// A person joining (`joined`) or leaving a household at a seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    pub seq: u64,
    pub person_digest: Sym,
    pub joined: bool,
}

/// The card a household is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundCard {
    pub card_digest: Sym,
    pub card_masked: String,
    pub bank: Sym,
    pub seq: u64,
}

/// The household's standing on a date, from its whole status timeline
/// (ineligible_household).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "standing")]
pub enum Standing {
    Enrolled,
    Removed { since: Date },
    Exited { since: Date },
    NotYetRegistered { registered: Date },
}

/// One payout to a household with the facts the payout rules judge that are
/// fixed at its place in ledger order (card binding, notices recorded
/// before it). Dated facts — status changes, deaths — are looked up when
/// flags are evaluated, over the whole chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutEntry {
    pub seq: u64,
    pub id: String,
    pub at: Date,
    pub office: Sym,
    pub program: Sym,
    pub period: Period,
    pub amount_fen: u64,
    pub refunded_fen: u64,
    /// Paid to the card bound at the payout's place in ledger order.
    pub card_matches: bool,
    /// The paid person, if the payout names one.
    pub person_digest: Option<Sym>,
    /// Length in days of the longest earlier-recorded roster notice that
    /// covers this payout apart from its length (None: no such notice).
    pub notice_days: Option<u32>,
}

impl PayoutEntry {
    pub fn net_fen(&self) -> u64 {
        self.amount_fen - self.refunded_fen
    }
}

/// A registered household.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Household {
    pub village: Sym,
    pub head_name_masked: String,
    pub registered_seq: u64,
    pub registered_at: Date,
    pub statuses: Vec<StatusChange>,
    /// Current members by person digest.
    pub members: BTreeMap<Sym, Member>,
    /// Every membership change in seq order (registration included), so the
    /// members at a payout's place in ledger order can be recovered.
    pub membership_log: Vec<MembershipChange>,
    pub card: BoundCard,
    /// Seqs of roster notices listing this household, by program, ascending
    /// (folded in ledger order; the notice page binary-searches them).
    pub notices: BTreeMap<Sym, Vec<u64>>,
    /// In seq order.
    pub payouts: Vec<PayoutEntry>,
}

impl Household {
    /// The status of the latest change on or before `at` (by business date,
    /// ties by seq) among those recorded so far.
    pub fn status_change_on(&self, at: Date) -> Option<&StatusChange> {
        self.statuses.iter().filter(|c| c.at <= at).max_by_key(|c| (c.at, c.seq))
    }

    /// The status now: the latest change of all (enrolled if none).
    pub fn current_status(&self) -> HouseholdStatus {
        self.statuses.iter().max_by_key(|c| (c.at, c.seq)).map_or(HouseholdStatus::Enrolled, |c| c.status)
    }

    pub fn is_removed(&self) -> bool {
        self.current_status() == HouseholdStatus::Removed
    }

    /// The household's standing on `at` by business date, from every
    /// status change in the chain.
    pub fn standing_on(&self, at: Date) -> Standing {
        if at < self.registered_at {
            return Standing::NotYetRegistered { registered: self.registered_at };
        }
        match self.status_change_on(at) {
            Some(StatusChange { status: HouseholdStatus::Removed, at, .. }) => Standing::Removed { since: *at },
            Some(StatusChange { status: HouseholdStatus::Exited, at, .. }) => Standing::Exited { since: *at },
            _ => Standing::Enrolled,
        }
    }

    /// Members just before event `seq` (SPEC §7: membership as of a
    /// payout's place in ledger order).
    pub fn members_before(&self, seq: u64) -> BTreeSet<&str> {
        let mut members = BTreeSet::new();
        for change in self.membership_log.iter().take_while(|c| c.seq < seq) {
            if change.joined {
                members.insert(change.person_digest.as_str());
            } else {
                members.remove(change.person_digest.as_str());
            }
        }
        members
    }

    fn log_membership(&mut self, seq: u64, person_digest: &str, joined: bool) {
        self.membership_log.push(MembershipChange { seq, person_digest: Sym::new(person_digest), joined });
    }

    fn payout_mut(&mut self, seq: u64) -> &mut PayoutEntry {
        let index = self.payouts.binary_search_by_key(&seq, |p| p.seq).expect("refunded payout is indexed");
        &mut self.payouts[index]
    }
}

/// A project in the project library (项目库).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub office: String,
    pub program: String,
    pub name: String,
    pub budget_fen: u64,
    pub registered_seq: u64,
    /// Expenditures of its own office and program on it, and their refunds.
    pub spent_fen: u64,
    pub refunded_fen: u64,
}

impl Project {
    /// Whether expenditure `seq` of `office` and `program` counts towards
    /// this project: decided by `charge_project` when the expenditure is
    /// folded in, and again by `spend_of` when a refund of it comes (by then
    /// the project may have been registered after it: `registered_seq`).
    pub fn is_charged_by(&self, seq: u64, office: &str, program: &str) -> bool {
        self.registered_seq < seq && self.office == office && self.program == program
    }

    pub fn net_spent_fen(&self) -> u64 {
        self.spent_fen - self.refunded_fen
    }
}

/// A roster notice (公示) that lists households.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterNotice {
    pub office: String,
    pub program: String,
    pub period: Option<Period>,
    pub from: Date,
    pub to: Date,
}

impl RosterNotice {
    /// SPEC §7: a notice's length is `to − from + 1` days.
    pub fn days(&self) -> u32 {
        u32::try_from(self.from.days_until(self.to) + 1).unwrap_or(0)
    }
}

/// One expenditure to a payee (structuring).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayeeSpend {
    pub seq: u64,
    pub at: Date,
    pub office: Sym,
    pub program: Sym,
    pub category: Category,
    pub amount_fen: u64,
}

/// A non-household recipient and what it was paid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payee {
    pub name: String,
    pub spends: Vec<PayeeSpend>,
}

/// Where a refund of a payout or expenditure lands: derived from the
/// refunded event's payload by `Projections::spend_of` when the refund comes
/// (the writer reads that payload from its group or the store), so the
/// projections keep no map of every payout and expenditure for the rare
/// refund.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub seq: u64,
    pub account: String,
    pub household: Option<String>,
    /// The project whose spending it counted towards, if any.
    pub project: Option<String>,
}

/// The evidence of a rule judged at event time (no threshold involved).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub evidence: BTreeSet<u64>,
    pub amount_fen: u64,
    /// Households involved (shared_card, duplicate_person).
    pub households: BTreeSet<String>,
    pub detail: String,
}

/// The latest auditor review of a flag id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub seq: u64,
    pub office: String,
    pub at: Date,
    pub status: ReviewStatus,
    pub note: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projections {
    /// Fund accounts by `office/program`.
    pub accounts: BTreeMap<String, Account>,
    /// Decoded from the snapshot on first use (`crate::households`).
    pub households: crate::households::Households,
    pub projects: BTreeMap<String, Project>,
    pub roster_notices: BTreeMap<u64, RosterNotice>,
    /// Card digest → households bound to it → binding event. Decoded from
    /// the snapshot on first use (`crate::households::Lazy`).
    pub cards: crate::households::Lazy<Groups>,
    /// Person digest → households listing them → adding event. Likewise.
    pub persons: crate::households::Lazy<Groups>,
    /// Person digest → earliest recorded date of death.
    #[serde(deserialize_with = "crate::sym::sorted_map")]
    pub deaths: BTreeMap<Sym, Date>,
    pub payees: BTreeMap<String, Payee>,
    /// Event-time findings by rule and subject id.
    pub findings: BTreeMap<Rule, BTreeMap<String, Finding>>,
    /// Latest review by flag id.
    pub reviews: BTreeMap<String, Review>,
    /// What the notice pages need besides the above (card bindings,
    /// project facts, households by village, roster notices by program and
    /// period, month-end balances).
    pub notices: crate::notice::NoticeIndex,
}

/// `office` is `ancestor` or below it.
pub fn is_within(state: &State, office: &str, ancestor: &str) -> bool {
    office_chain(state, office).contains(&ancestor)
}

/// `office` followed by its ancestors, nearest first.
pub fn office_chain<'a>(state: &'a State, office: &'a str) -> Vec<&'a str> {
    let mut chain = vec![office];
    let mut current = office;
    while let Some(parent) = state.offices.get(current).and_then(|o| o.parent.as_deref()) {
        assert!(chain.len() <= OFFICE_DEPTH_MAX, "office tree deeper than {OFFICE_DEPTH_MAX} levels");
        chain.push(parent);
        current = parent;
    }
    chain
}

fn level_of(state: &State, office: &str) -> Option<Level> {
    state.offices.get(office).map(|o| o.level)
}

impl Projections {
    /// Folds one accepted event in. Called after `State::apply` of the same
    /// event, so `state` already includes it. `refunded` is, for a refund,
    /// what `spend_of` gives for the refunded event.
    pub fn apply(&mut self, seq: u64, payload: &Payload, state: &State, refunded: Option<&Spend>) {
        self.notices.apply(seq, payload);
        let office = payload.office.as_str();
        let at = payload.at;
        match &payload.body {
            Body::Appropriate(b) => {
                let account = self.account(office, b.program.as_str());
                account.credit(seq, at, b.amount_fen.fen());
                account.flows.appropriated_fen = account.flows.appropriated_fen.saturating_add(b.amount_fen.fen());
            }
            Body::Transfer(b) => self.apply_transfer(seq, payload, b, state),
            Body::Reallocate(b) => self.apply_reallocate(seq, payload, b, state),
            Body::HouseholdRegister(b) => self.apply_household_register(seq, at, b),
            Body::HouseholdUpdate(b) => self.apply_household_update(seq, at, b),
            Body::Payout(b) => self.apply_payout(seq, payload, b, state),
            Body::ProjectRegister(b) => {
                let project = Project {
                    office: office.to_string(),
                    program: b.program.0.clone(),
                    name: b.name.0.clone(),
                    budget_fen: b.budget_fen.fen(),
                    registered_seq: seq,
                    spent_fen: 0,
                    refunded_fen: 0,
                };
                self.projects.insert(b.project_id.0.clone(), project);
            }
            Body::Expenditure(b) => self.apply_expenditure(seq, payload, b, state),
            Body::Refund(b) => {
                let spend = refunded.expect("a refund comes with its refunded event (validated)");
                self.apply_refund(seq, at, b, spend);
            }
            Body::NoticePublish(b) => self.apply_notice(seq, office, b),
            Body::FlagReview(b) => {
                let review = Review { seq, office: office.to_string(), at, status: b.status, note: b.note.0.clone() };
                self.reviews.insert(b.flag_id.0.clone(), review);
            }
            Body::Genesis(_)
            | Body::OfficeRegister(_)
            | Body::KeyAdd(_)
            | Body::KeyRevoke(_)
            | Body::ProgramDefine(_) => {}
        }
        for account in touched_accounts(payload, refunded) {
            let held = self.accounts.get(&account).map_or(0, |a| a.held_fen);
            assert_eq!(held, state.balance(&account), "projection and State disagree on {account} after seq {seq}");
        }
    }

    /// Where a refund of event `seq` (a payout or an expenditure, already
    /// folded in) lands, from that event's payload: its account, the
    /// household paid, the project charged. A project is charged when it was
    /// registered before the expenditure for the same office and program,
    /// exactly as `charge_project` decided then (projects are never
    /// re-registered). None for other kinds of event.
    pub fn spend_of(&self, seq: u64, payload: &Payload) -> Option<Spend> {
        let office = payload.office.as_str();
        match &payload.body {
            Body::Payout(b) => Some(Spend {
                seq,
                account: account_id(office, b.program.as_str()),
                household: Some(b.household_id.0.clone()),
                project: None,
            }),
            Body::Expenditure(b) => {
                let charged = b.project_id.as_ref().filter(|p| {
                    self.projects
                        .get(p.as_str())
                        .is_some_and(|project| project.is_charged_by(seq, office, b.program.as_str()))
                });
                Some(Spend {
                    seq,
                    account: account_id(office, b.program.as_str()),
                    household: None,
                    project: charged.map(|p| p.0.clone()),
                })
            }
            _ => None,
        }
    }

    /// Full pair check with `State`: every account's lots sum to its
    /// balance, and the same accounts exist (O(accounts + lots)).
    pub fn balances_match(&self, state: &State) -> bool {
        let held = |account: &str| self.accounts.get(account).map(|a| (a.held_fen, a.lots_fen()));
        state.balances.iter().all(|(account, balance)| held(account) == Some((*balance, *balance)))
            && self.accounts.keys().all(|account| state.balances.contains_key(account))
    }

    fn account(&mut self, office: &str, program: &str) -> &mut Account {
        self.accounts.entry(account_id(office, program)).or_default()
    }

    fn debit(&mut self, state: &State, seq: u64, at: Date, office: &str, program: &str, amount_fen: u64) {
        let keep_moves = level_of(state, office).is_some_and(|l| PASS_THROUGH_LEVELS.contains(&l));
        self.account(office, program).debit(seq, at, amount_fen, keep_moves);
    }

    fn add_finding(&mut self, rule: Rule, subject: &str, seq: u64, amount_fen: u64, detail: String) {
        let finding = self.findings.entry(rule).or_default().entry(subject.to_string()).or_default();
        finding.evidence.insert(seq);
        finding.amount_fen = finding.amount_fen.saturating_add(amount_fen);
        if finding.detail.is_empty() {
            finding.detail = detail;
        }
    }

    fn apply_transfer(&mut self, seq: u64, payload: &Payload, b: &crate::payload::Transfer, state: &State) {
        let (office, to, program, amount) =
            (payload.office.as_str(), b.to_office.as_str(), b.program.as_str(), b.amount_fen.fen());
        self.debit(state, seq, payload.at, office, program, amount);
        let from = self.account(office, program);
        from.flows.transferred_out_fen = from.flows.transferred_out_fen.saturating_add(amount);
        let into = self.account(to, program);
        into.credit(seq, payload.at, amount);
        into.flows.transferred_in_fen = into.flows.transferred_in_fen.saturating_add(amount);
        if !is_within(state, to, office) && !is_within(state, office, to) {
            let detail = format!(
                "transfer {} of {} yuan of {program} from {office} to {to}, which is neither its ancestor nor its descendant",
                payload.id,
                yuan(amount)
            );
            self.add_finding(Rule::OffTreeTransfer, payload.id.as_str(), seq, amount, detail);
        }
    }

    fn apply_reallocate(&mut self, seq: u64, payload: &Payload, b: &crate::payload::Reallocate, state: &State) {
        let (office, from, to, amount) =
            (payload.office.as_str(), b.from_program.as_str(), b.to_program.as_str(), b.amount_fen.fen());
        self.debit(state, seq, payload.at, office, from, amount);
        let source = self.account(office, from);
        source.flows.reallocated_out_fen = source.flows.reallocated_out_fen.saturating_add(amount);
        let target = self.account(office, to);
        target.credit(seq, payload.at, amount);
        target.flows.reallocated_in_fen = target.flows.reallocated_in_fen.saturating_add(amount);
        let earmarked = state.programs.get(from).is_some_and(|p| p.earmarked);
        let level = level_of(state, office);
        let above_county = level.is_some_and(|l| ABOVE_COUNTY_LEVELS.contains(&l));
        if earmarked || above_county {
            let why = match level.filter(|_| !earmarked) {
                None => format!("{from} is earmarked (专款专用)"),
                Some(level) => format!("{office} is a {} office, above county level", snake_name(&level)),
            };
            let detail =
                format!("reallocation {} of {} yuan from {from} to {to} by {office}: {why}", payload.id, yuan(amount));
            self.add_finding(Rule::CrossProgramDiversion, payload.id.as_str(), seq, amount, detail);
        }
    }

    fn apply_household_register(&mut self, seq: u64, at: Date, b: &crate::payload::HouseholdRegister) {
        let id = b.household_id.as_str();
        let members = b
            .members
            .iter()
            .map(|m| {
                (Sym::new(m.person_digest.as_str()), Member { name_masked: m.name_masked.0.clone(), added_seq: seq })
            })
            .collect();
        let card = BoundCard {
            card_digest: Sym::new(b.card.card_digest.as_str()),
            card_masked: b.card.card_masked.0.clone(),
            bank: Sym::new(b.card.bank.as_str()),
            seq,
        };
        let household = Household {
            village: Sym::new(b.village.as_str()),
            head_name_masked: b.head_name_masked.0.clone(),
            registered_seq: seq,
            registered_at: at,
            statuses: Vec::new(),
            members,
            membership_log: b
                .members
                .iter()
                .map(|m| MembershipChange { seq, person_digest: Sym::new(m.person_digest.as_str()), joined: true })
                .collect(),
            card,
            notices: BTreeMap::new(),
            payouts: Vec::new(),
        };
        let id = Sym::new(id);
        self.households.insert(id, household);
        self.cards.get_mut().entry(Sym::new(b.card.card_digest.as_str())).or_default().insert(id, seq);
        for member in &b.members {
            self.persons.get_mut().entry(Sym::new(member.person_digest.as_str())).or_default().insert(id, seq);
        }
        self.check_household_groups(&id);
    }

    fn apply_household_update(&mut self, seq: u64, at: Date, b: &crate::payload::HouseholdUpdate) {
        let id = Sym::new(b.household_id.as_str());
        let household = self.households.get_mut(&id).expect("updated household exists (validated)");
        if let Some(status) = b.status {
            let reason = b.reason.as_ref().map(|r| r.0.clone());
            household.statuses.push(StatusChange { seq, at, status, reason });
        }
        for digest in b.deceased.iter().flatten() {
            let date = self.deaths.entry(Sym::new(digest.as_str())).or_insert(at);
            *date = (*date).min(at);
        }
        if let Some(card) = &b.card {
            let old = std::mem::replace(
                &mut household.card,
                BoundCard {
                    card_digest: Sym::new(card.card_digest.as_str()),
                    card_masked: card.card_masked.0.clone(),
                    bank: Sym::new(card.bank.as_str()),
                    seq,
                },
            );
            remove_from_group(self.cards.get_mut(), &old.card_digest, &id);
            self.cards.get_mut().entry(Sym::new(card.card_digest.as_str())).or_default().insert(id, seq);
        }
        for digest in b.remove_members.iter().flatten() {
            if household.members.remove(digest.as_str()).is_some() {
                household.log_membership(seq, digest.as_str(), false);
            }
            remove_from_group(self.persons.get_mut(), digest.as_str(), &id);
        }
        for member in b.add_members.iter().flatten() {
            let digest = Sym::new(member.person_digest.as_str());
            let entry = Member { name_masked: member.name_masked.0.clone(), added_seq: seq };
            if let std::collections::btree_map::Entry::Vacant(vacant) = household.members.entry(digest) {
                vacant.insert(entry);
                household.log_membership(seq, &digest, true);
            }
            self.persons.get_mut().entry(digest).or_default().insert_if_absent(id, seq);
        }
        self.check_household_groups(&id);
    }

    /// shared_card and duplicate_person for the card and members of one
    /// household, after it changed: a group of two or more households not
    /// removed makes (or joins) a flag with their binding events.
    fn check_household_groups(&mut self, id: &str) {
        let household = &self.households[id];
        if household.is_removed() {
            return;
        }
        let card = household.card.clone();
        let persons: Vec<Sym> = household.members.keys().copied().collect();
        if let Some(group) = self.active_group(self.cards.get(), &card.card_digest) {
            let detail = format!("card {} is bound to several households at once", card.card_masked);
            self.join_group_finding(Rule::SharedCard, &card.card_digest, group, detail);
        }
        for person in persons {
            if let Some(group) = self.active_group(self.persons.get(), &person) {
                let name = &self.households[id].members[&person].name_masked;
                let detail = format!("person {name} is listed in several households at once");
                self.join_group_finding(Rule::DuplicatePerson, &person, group, detail);
            }
        }
    }

    /// The households of a card or person group not removed, if two or more.
    fn active_group(&self, index: &BTreeMap<Sym, Group>, key: &str) -> Option<Vec<(String, u64)>> {
        let group: Vec<(String, u64)> = index
            .get(key)?
            .iter()
            .filter(|(household, _)| !self.households[household.as_str()].is_removed())
            .map(|(household, seq)| (household.to_string(), *seq))
            .collect();
        (group.len() >= 2).then_some(group)
    }

    fn join_group_finding(&mut self, rule: Rule, subject: &str, group: Vec<(String, u64)>, detail: String) {
        let finding = self.findings.entry(rule).or_default().entry(subject.to_string()).or_default();
        for (household, seq) in group {
            finding.evidence.insert(seq);
            finding.households.insert(household);
        }
        if finding.detail.is_empty() {
            finding.detail = detail;
        }
    }

    fn apply_payout(&mut self, seq: u64, payload: &Payload, b: &crate::payload::Payout, state: &State) {
        let (office, program, amount) = (payload.office.as_str(), b.program.as_str(), b.amount_fen.fen());
        self.debit(state, seq, payload.at, office, program, amount);
        let account = self.account(office, program);
        account.flows.paid_out_fen = account.flows.paid_out_fen.saturating_add(amount);
        let id = b.household_id.as_str();
        let notice_days = self.notice_days(state, id, payload, b);
        let household = self.households.get_mut(id).expect("paid household exists (validated)");
        let entry = PayoutEntry {
            seq,
            id: payload.id.0.clone(),
            at: payload.at,
            office: Sym::new(office),
            program: Sym::new(program),
            period: b.period,
            amount_fen: amount,
            refunded_fen: 0,
            card_matches: household.card.card_digest == b.card_digest.0,
            person_digest: b.person_digest.as_ref().map(|p| Sym::new(p.as_str())),
            notice_days,
        };
        household.payouts.push(entry);
    }

    /// paid_before_notice: the longest roster notice recorded before this
    /// payout, by the paying office or an ancestor, for its program (and
    /// period, if the notice names one), listing the household and ending
    /// before the payout's date.
    fn notice_days(
        &self,
        state: &State,
        household: &str,
        payload: &Payload,
        b: &crate::payload::Payout,
    ) -> Option<u32> {
        let seqs = self.households[household].notices.get(b.program.as_str())?;
        let chain = office_chain(state, payload.office.as_str());
        seqs.iter()
            .map(|seq| &self.roster_notices[seq])
            .filter(|n| n.period.is_none() || n.period == Some(b.period))
            .filter(|n| n.to < payload.at && chain.contains(&n.office.as_str()))
            .map(RosterNotice::days)
            .max()
    }

    fn apply_expenditure(&mut self, seq: u64, payload: &Payload, b: &crate::payload::Expenditure, state: &State) {
        let (office, program, amount) = (payload.office.as_str(), b.program.as_str(), b.amount_fen.fen());
        self.debit(state, seq, payload.at, office, program, amount);
        let account = self.account(office, program);
        account.flows.spent_fen = account.flows.spent_fen.saturating_add(amount);
        self.charge_project(seq, payload, b);
        if FORBIDDEN_CATEGORIES.contains(&b.category) {
            let category = snake_name(&b.category);
            let detail = format!(
                "expenditure {} of {} yuan by {office} to {} in forbidden category {category}",
                payload.id,
                yuan(amount),
                b.payee_name
            );
            self.add_finding(Rule::ForbiddenExpenditure, payload.id.as_str(), seq, amount, detail);
        }
        let payee = self.payees.entry(b.payee_id.0.clone()).or_default();
        payee.name = b.payee_name.0.clone();
        payee.spends.push(PayeeSpend {
            seq,
            at: payload.at,
            office: Sym::new(office),
            program: Sym::new(program),
            category: b.category,
            amount_fen: amount,
        });
    }

    /// unlisted_project: charges the project if `Project::is_charged_by`
    /// says so, else records why not.
    fn charge_project(&mut self, seq: u64, payload: &Payload, b: &crate::payload::Expenditure) {
        let (office, program, amount) = (payload.office.as_str(), b.program.as_str(), b.amount_fen.fen());
        let problem = match b.project_id.as_ref().map(|p| (p.as_str(), self.projects.get_mut(p.as_str()))) {
            None => Some((amount, "names no project".to_string())),
            Some((id, None)) => Some((amount, format!("names project {id}, which is not in the project library"))),
            Some((id, Some(project))) if !project.is_charged_by(seq, office, program) => Some((
                amount,
                format!("names project {id} of {}/{}, not of {office}/{program}", project.office, project.program),
            )),
            Some((id, Some(project))) => {
                project.spent_fen = project.spent_fen.saturating_add(amount);
                let net = project.net_spent_fen();
                (net > project.budget_fen).then(|| {
                    let beyond = (net - project.budget_fen).min(amount);
                    (
                        beyond,
                        format!(
                            "takes project {id} to {} yuan, beyond its budget of {} yuan",
                            yuan(net),
                            yuan(project.budget_fen)
                        ),
                    )
                })
            }
        };
        if let Some((at_stake, why)) = problem {
            let detail = format!("expenditure {} of {} yuan by {office} {why}", payload.id, yuan(amount));
            self.add_finding(Rule::UnlistedProject, payload.id.as_str(), seq, at_stake, detail);
        }
    }

    fn apply_refund(&mut self, seq: u64, at: Date, b: &crate::payload::Refund, spend: &Spend) {
        let amount = b.amount_fen.fen();
        let account = self.accounts.get_mut(&spend.account).expect("refunded account exists");
        account.credit(seq, at, amount);
        account.flows.refunds_in_fen = account.flows.refunds_in_fen.saturating_add(amount);
        if let Some(household) = &spend.household {
            let entry =
                self.households.get_mut(household.as_str()).expect("paid household exists").payout_mut(spend.seq);
            entry.refunded_fen += amount;
            assert!(entry.refunded_fen <= entry.amount_fen, "refunds beyond the payout passed validation");
        }
        if let Some(project) = &spend.project {
            let project = self.projects.get_mut(project).expect("charged project exists");
            project.refunded_fen += amount;
            assert!(project.refunded_fen <= project.spent_fen, "refunds beyond the spending passed validation");
        }
    }

    fn apply_notice(&mut self, seq: u64, office: &str, b: &crate::payload::NoticePublish) {
        let Some(households) = b.households.as_ref().filter(|_| b.scope == crate::payload::NoticeScope::PayoutRoster)
        else {
            return;
        };
        if households.is_empty() {
            return;
        }
        let notice = RosterNotice {
            office: office.to_string(),
            program: b.program.0.clone(),
            period: b.period,
            from: b.from,
            to: b.to,
        };
        self.roster_notices.insert(seq, notice);
        let program = Sym::new(b.program.as_str());
        for household in households {
            let household = self.households.get_mut(household.as_str()).expect("noticed household exists (validated)");
            let seqs = household.notices.entry(program).or_default();
            if seqs.last() != Some(&seq) {
                seqs.push(seq);
            }
        }
    }
}

/// The accounts whose balances an event changed, for the per-event pair
/// assertion with `State`.
fn touched_accounts(payload: &Payload, refunded: Option<&Spend>) -> Vec<String> {
    let office = payload.office.as_str();
    match &payload.body {
        Body::Appropriate(b) => vec![account_id(office, b.program.as_str())],
        Body::Transfer(b) => {
            vec![account_id(office, b.program.as_str()), account_id(b.to_office.as_str(), b.program.as_str())]
        }
        Body::Reallocate(b) => {
            vec![account_id(office, b.from_program.as_str()), account_id(office, b.to_program.as_str())]
        }
        Body::Payout(b) => vec![account_id(office, b.program.as_str())],
        Body::Expenditure(b) => vec![account_id(office, b.program.as_str())],
        Body::Refund(_) => refunded.map(|s| s.account.clone()).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The households of one card or person group, by id → the event that put
/// each in it. Almost every group has one household (more is what the
/// shared_card and duplicate_person rules look for), so it is a sorted
/// vector, not a BTreeMap: at 10 M events there are 1.45 M groups, and a
/// one-entry BTreeMap allocates a whole 11-slot node (~290 B by the std layout; not measured) where this
/// allocates 24 B. Serialised as a map, exactly as the BTreeMap was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group(Vec<(Sym, u64)>);

impl Group {
    /// Adds `household` at `seq`, or moves it to `seq` if it is there.
    pub fn insert(&mut self, household: Sym, seq: u64) {
        match self.0.binary_search_by(|(h, _)| h.cmp(&household)) {
            Ok(at) => self.0[at].1 = seq,
            Err(at) => self.0.insert(at, (household, seq)),
        }
    }

    /// Adds `household` at `seq` unless it is there already.
    pub fn insert_if_absent(&mut self, household: Sym, seq: u64) {
        if let Err(at) = self.0.binary_search_by(|(h, _)| h.cmp(&household)) {
            self.0.insert(at, (household, seq));
        }
    }

    pub fn remove(&mut self, household: &str) {
        if let Ok(at) = self.0.binary_search_by(|(h, _)| h.as_str().cmp(household)) {
            self.0.remove(at);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// By household id.
    pub fn iter(&self) -> impl Iterator<Item = (&Sym, &u64)> + '_ {
        self.0.iter().map(|(h, seq)| (h, seq))
    }
}

impl Serialize for Group {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Group {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Group, D::Error> {
        struct GroupVisitor;
        impl<'de> serde::de::Visitor<'de> for GroupVisitor {
            type Value = Group;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of household id to event")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Group, A::Error> {
                let mut entries: Vec<(Sym, u64)> = Vec::with_capacity(map.size_hint().unwrap_or(1).min(64));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                // Written sorted, one entry per household; anything else is
                // not a group this code wrote.
                if entries.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
                    return Err(serde::de::Error::custom("a card or person group out of order"));
                }
                Ok(Group(entries))
            }
        }
        deserializer.deserialize_map(GroupVisitor)
    }
}

/// Card or person digest → its group (`Projections::cards`, `persons`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Groups(#[serde(deserialize_with = "crate::sym::sorted_map")] pub BTreeMap<Sym, Group>);

impl crate::households::PartName for Groups {
    const NAME: &'static str = "the card or person groups";
}

impl std::ops::Deref for Groups {
    type Target = BTreeMap<Sym, Group>;
    fn deref(&self) -> &BTreeMap<Sym, Group> {
        &self.0
    }
}

impl std::ops::DerefMut for Groups {
    fn deref_mut(&mut self) -> &mut BTreeMap<Sym, Group> {
        &mut self.0
    }
}

fn remove_from_group(index: &mut BTreeMap<Sym, Group>, key: &str, household: &str) {
    if let Some(group) = index.get_mut(key) {
        group.remove(household);
        if group.is_empty() {
            index.remove(key);
        }
    }
}

/// The wire name of a payload enum value (`work_relief`, `province`).
pub fn snake_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => unreachable!("payload enums serialise as strings"),
    }
}

/// Yuan with two decimals from fen (for people).
pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// Folds events from scratch without an event index: the rebuild path.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    pub state: State,
    pub projections: Projections,
    /// Payout and expenditure event ids → where their refunds go (the
    /// ledger writer reads the refunded event instead; a replay has no
    /// store to read it from).
    pub spends: BTreeMap<String, Spend>,
}

impl Replay {
    /// Applies one accepted event, exactly as the ledger writer does.
    pub fn push(&mut self, seq: u64, payload: &Payload, payload_digest: crate::encoding::Hash) {
        let refunded = match &payload.body {
            Body::Refund(refund) => self.spends.get(refund.ref_event.as_str()).cloned(),
            _ => None,
        };
        self.state.apply(seq, payload, payload_digest, refunded.as_ref().map(|s| s.account.as_str()));
        self.projections.apply(seq, payload, &self.state, refunded.as_ref());
        if let Some(spend) = self.projections.spend_of(seq, payload) {
            self.spends.insert(payload.id.0.clone(), spend);
        }
    }
}
