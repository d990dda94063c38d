//! Public notices (公告公示, SPEC §9): what an office's notice page shows —
//! payout rosters by program and period, project notices, the fund flow of
//! the levels above and below the office, the complaint channel and the
//! ledger's latest signed checkpoint — as data, for the HTML and CSV views in
//! `server::pages`.
//!
//! Built from the projections and a [`NoticeIndex`]: a fold of the few chain
//! facts a notice needs that the projections do not keep (the masked form of
//! each card digest and every household's card history, so a roster row shows
//! the card actually credited; project locations, payees and project notices;
//! month-end balances by office for the auditor's chart).
//!
//! Owns: the SPEC §9 masking rule ([`mask_name`]) and what a public notice
//! may show. Invariants: a notice holds no digest (person, card or document),
//! no ID number and no name that has not been through [`mask_name`]; folding
//! the same events gives the same index. Never: does I/O or reads a clock
//! (the date of a notice is the ledger clock).

use crate::date::{Date, Period};
use crate::payload::{Body, Level, NoticeScope, Payload};
use crate::projection::{is_within, office_chain, Household, PayoutEntry, Projections};
use crate::report::{summary_row, SummaryRow};
use crate::state::State;
use crate::sym::Sym;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Rows on one notice page. A county's year is a few thousand; beyond this
/// the oldest rosters are left off (the page says so) and can be asked for
/// by program and period.
pub const NOTICE_ROWS_MAX: usize = 10_000;
/// What a mask hides a character with.
pub const MASK_CHARACTER: char = '*';

/// SPEC §9 name masking, applied again on every public page so one rule
/// holds everywhere (the chain's masked names are only checked for shape):
/// the first character stays and, for three or more characters, the last;
/// every other character becomes `*`. Idempotent: `张*`, `张*丰`, `欧**明`
/// come back unchanged; `欧阳*明` becomes `欧**明`.
pub fn mask_name(name: &str) -> String {
    let mut characters = name.chars();
    let Some(first) = characters.next() else { return String::new() };
    let Some(last) = characters.next_back() else { return MASK_CHARACTER.to_string() };
    let hidden = characters.count();
    let mut masked =
        String::with_capacity(first.len_utf8() + (hidden + 1) * MASK_CHARACTER.len_utf8() + last.len_utf8());
    masked.push(first);
    if hidden == 0 {
        // Two characters: the second is hidden too.
        masked.push(MASK_CHARACTER);
        return masked;
    }
    masked.extend(std::iter::repeat_n(MASK_CHARACTER, hidden));
    masked.push(last);
    masked
}

/// A calendar month (the auditor chart's step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn of(date: Date) -> Month {
        let (year, month, _) = date.ymd();
        Month { year, month }
    }

    /// Months since year 0 (for arithmetic).
    pub fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    /// The month `months` before this one.
    pub fn minus(self, months: u32) -> Month {
        let index = self.index() - i64::from(months);
        let year = i32::try_from(index.div_euclid(12)).unwrap_or(i32::MIN);
        Month { year, month: u32::try_from(index.rem_euclid(12)).unwrap_or(0) + 1 }
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month { year: self.year + 1, month: 1 }
        } else {
            Month { year: self.year, month: self.month + 1 }
        }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// `YYYY-MM`, so a month can key a JSON object (`rebuild` compares JSON).
impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Month, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        match Period::parse(&text) {
            Some(Period::Month(year, month)) => Ok(Month { year, month }),
            _ => Err(serde::de::Error::custom(format!("not a month YYYY-MM: {text:?}"))),
        }
    }
}

/// An ordered map with keys JSON cannot name (tuples), as a list of pairs.
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map)
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}

/// A published notice's span and publisher.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NoticeSpan {
    pub seq: u64,
    pub office: String,
    pub from: Date,
    pub to: Date,
}

impl NoticeSpan {
    /// SPEC §7: a notice lasts `to − from + 1` calendar days.
    pub fn days(&self) -> i64 {
        self.from.days_until(self.to) + 1
    }
}

/// What a project notice needs beyond `projection::Project`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectFacts {
    pub office: String,
    pub program: String,
    pub location: Option<String>,
    /// Payees of expenditures charged to the project (its office and program), by payee id.
    pub payees: BTreeMap<String, String>,
    pub notices: Vec<NoticeSpan>,
}

/// A card binding of a household, from its registration or a card change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CardBinding {
    seq: u64,
    card_digest: Sym,
}

/// The chain facts of notices that the other projections do not keep;
/// folded event by event in ledger order as part of the projections
/// (`Projections::notices`), so it is snapshotted with them and a restart
/// does not replay the chain to rebuild it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeIndex {
    /// Events folded in: the next seq.
    size: u64,
    projects: BTreeMap<String, ProjectFacts>,
    /// Card bindings per household, in seq order.
    #[serde(deserialize_with = "crate::sym::sorted_map")]
    cards: BTreeMap<Sym, Vec<CardBinding>>,
    /// The masked form of every card digest registered.
    #[serde(deserialize_with = "crate::sym::sorted_map")]
    card_masks: BTreeMap<Sym, String>,
    /// Payouts credited to a card other than the household's bound one: seq → card digest.
    #[serde(deserialize_with = "crate::sym::sorted_map")]
    stray_payouts: BTreeMap<u64, Sym>,
    /// Net change of an office's fund balances per month of business date.
    held_changes: BTreeMap<String, BTreeMap<Month, i128>>,
    /// Household ids per village (a household's village never changes), so
    /// a village page does not scan every household of the ledger.
    #[serde(deserialize_with = "crate::sym::sorted_map")]
    village_households: BTreeMap<Sym, Vec<Sym>>,
    /// Roster notices by (program, period named in the notice): the
    /// candidates for "which notices cover this roster", so a roster does
    /// not scan every notice of the ledger.
    #[serde(with = "pairs")]
    roster_notices: BTreeMap<(String, Option<Period>), Vec<u64>>,
    /// Project ids by the office that registered them and by their
    /// location (an office id or free text), so a notice page reads the
    /// projects of its region, not every project of the ledger.
    #[serde(deserialize_with = "crate::sym::sorted_map")]
    projects_by_place: BTreeMap<Sym, Vec<Sym>>,
}

impl NoticeIndex {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Folds in the accepted event `seq`; events come in ledger order.
    pub fn apply(&mut self, seq: u64, payload: &Payload) {
        assert_eq!(seq, self.size, "the notice index folds events in ledger order");
        self.size += 1;
        let office = payload.office.as_str();
        let month = Month::of(payload.at);
        match &payload.body {
            Body::Appropriate(b) => self.held_change(office, month, i128::from(b.amount_fen.fen())),
            Body::Transfer(b) => {
                self.held_change(office, month, -i128::from(b.amount_fen.fen()));
                self.held_change(b.to_office.as_str(), month, i128::from(b.amount_fen.fen()));
            }
            Body::Payout(b) => {
                self.held_change(office, month, -i128::from(b.amount_fen.fen()));
                let bound = self.cards.get(b.household_id.as_str()).and_then(|c| c.last());
                if bound.is_none_or(|binding| binding.card_digest != b.card_digest.as_str()) {
                    self.stray_payouts.insert(seq, Sym::new(b.card_digest.as_str()));
                }
            }
            Body::Expenditure(b) => {
                self.held_change(office, month, -i128::from(b.amount_fen.fen()));
                let project = b.project_id.as_ref().and_then(|p| self.projects.get_mut(p.as_str()));
                if let Some(project) = project.filter(|p| p.office == office && p.program == b.program.as_str()) {
                    project.payees.insert(b.payee_id.0.clone(), b.payee_name.0.clone());
                }
            }
            // A refund credits the refunded event's account, which is of the same office (SPEC §3).
            Body::Refund(b) => self.held_change(office, month, i128::from(b.amount_fen.fen())),
            Body::HouseholdRegister(b) => {
                self.bind_card(seq, b.household_id.as_str(), &b.card);
                let (village, household) = (Sym::new(b.village.as_str()), Sym::new(b.household_id.as_str()));
                self.village_households.entry(village).or_default().push(household);
            }
            Body::HouseholdUpdate(b) => {
                if let Some(card) = &b.card {
                    self.bind_card(seq, b.household_id.as_str(), card);
                }
            }
            Body::ProjectRegister(b) => {
                let facts = ProjectFacts {
                    office: office.to_string(),
                    program: b.program.0.clone(),
                    location: b.location.as_ref().map(|l| l.0.clone()),
                    ..ProjectFacts::default()
                };
                self.projects.insert(b.project_id.0.clone(), facts);
                let project = Sym::new(b.project_id.as_str());
                let places = std::iter::once(office).chain(b.location.as_ref().map(|l| l.as_str()));
                for place in places {
                    let ids = self.projects_by_place.entry(Sym::new(place)).or_default();
                    if ids.last() != Some(&project) {
                        ids.push(project);
                    }
                }
            }
            Body::NoticePublish(b) if b.scope == NoticeScope::PayoutRoster => {
                self.roster_notices.entry((b.program.0.clone(), b.period)).or_default().push(seq);
            }
            Body::NoticePublish(b) if b.scope == NoticeScope::Project => {
                for project in b.projects.iter().flatten() {
                    if let Some(facts) = self.projects.get_mut(project.as_str()) {
                        let span = NoticeSpan { seq, office: office.to_string(), from: b.from, to: b.to };
                        facts.notices.push(span);
                    }
                }
            }
            _ => {}
        }
    }

    fn held_change(&mut self, office: &str, month: Month, change: i128) {
        // Look up before inserting: no key allocation per event.
        let changes = match self.held_changes.get_mut(office) {
            Some(changes) => changes,
            None => self.held_changes.entry(office.to_string()).or_default(),
        };
        *changes.entry(month).or_insert(0) += change;
    }

    fn bind_card(&mut self, seq: u64, household: &str, card: &crate::payload::Card) {
        let digest = Sym::new(card.card_digest.as_str());
        self.card_masks.insert(digest, card.card_masked.0.clone());
        let binding = CardBinding { seq, card_digest: digest };
        self.cards.entry(Sym::new(household)).or_default().push(binding);
    }

    /// The masked card a payout credited: the card bound at the payout's
    /// place in ledger order, or the card it names if another.
    /// `household` is the household's projection: a payout after its latest
    /// binding (most of them) credited the card it holds now, whose masked
    /// form the household keeps, so no index is searched for it. (Where one
    /// card digest was bound with two masked forms, such a row shows the
    /// household's own; other rows, the form bound last anywhere.)
    pub fn paid_card_masked<'a>(
        &'a self,
        household_id: &str,
        household: &'a Household,
        payout_seq: u64,
    ) -> Option<&'a str> {
        let digest = match self.stray_payouts.get(&payout_seq) {
            Some(digest) => digest,
            None if household.card.seq < payout_seq => return Some(&household.card.card_masked),
            None => {
                let bindings = self.cards.get(household_id)?;
                let before = bindings.partition_point(|b| b.seq < payout_seq);
                &bindings[before.checked_sub(1)?].card_digest
            }
        };
        self.card_masks.get(digest.as_str()).map(String::as_str)
    }

    pub fn project(&self, project_id: &str) -> Option<&ProjectFacts> {
        self.projects.get(project_id)
    }

    /// Month-end fund balances of `office` (all programs) by business date,
    /// every month from `from` to `until` (both included).
    pub fn held_by_month(&self, office: &str, from: Month, until: Month) -> Vec<(Month, i128)> {
        let Some(changes) = self.held_changes.get(office) else {
            return Vec::new();
        };
        let mut held: i128 = changes.range(..from).map(|(_, change)| change).sum();
        let mut series = Vec::new();
        let mut month = from;
        while month <= until {
            held += changes.get(&month).copied().unwrap_or(0);
            series.push((month, held));
            month = month.next();
        }
        series
    }

    /// The first month in which any fund moved.
    pub fn first_month(&self) -> Option<Month> {
        self.held_changes.values().filter_map(|changes| changes.keys().next()).min().copied()
    }

    /// Offices whose funds ever moved, in id order.
    pub fn offices_with_funds(&self) -> impl Iterator<Item = &str> {
        self.held_changes.keys().map(String::as_str)
    }
}

/// Which rosters a notice page shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoticeQuery {
    pub program: Option<String>,
    pub period: Option<Period>,
}

/// One payout row of a roster (SPEC §9 columns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterRow {
    /// The payout's record: its inclusion proof and record links.
    pub seq: u64,
    /// Not shown on the page; counts households.
    pub household_id: String,
    pub head_name_masked: String,
    pub village_name: String,
    /// Members at the payout's place in ledger order.
    pub members: usize,
    pub program_name: String,
    pub standard_fen: Option<u64>,
    pub amount_fen: u64,
    pub refunded_fen: u64,
    pub period: Period,
    pub paid_on: Date,
    pub card_masked: String,
    /// Not listed by any roster notice of the program for this period.
    pub unlisted: bool,
}

/// The payouts of one program and period to the households of the region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    pub program: String,
    pub program_name: String,
    pub period: Period,
    /// Roster notices (公示) of the program and period listing these households.
    pub notices: Vec<NoticeSpan>,
    pub rows: Vec<RosterRow>,
}

impl Roster {
    pub fn total_fen(&self) -> u64 {
        self.rows.iter().map(|r| r.amount_fen).sum()
    }

    pub fn refunded_fen(&self) -> u64 {
        self.rows.iter().map(|r| r.refunded_fen).sum()
    }

    /// Distinct households paid.
    pub fn households(&self) -> usize {
        self.rows.iter().map(|r| &r.household_id).collect::<BTreeSet<_>>().len()
    }
}

/// A project notice (项目公示).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectNotice {
    pub project_id: String,
    pub name: String,
    /// The location as given, or the office's name when it names an office.
    pub location: String,
    pub program_name: String,
    pub office_name: String,
    pub budget_fen: u64,
    pub payees: Vec<String>,
    /// Spent on it net of refunds.
    pub paid_fen: u64,
    pub notices: Vec<NoticeSpan>,
}

/// One fund account in a notice's fund flow, with the names people read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRow {
    pub office_name: String,
    pub program_name: String,
    pub summary: SummaryRow,
}

/// The ledger's latest signed checkpoint as a notice shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointView {
    /// The signed note, if one was issued.
    pub note: Option<String>,
    /// Its tree size: rows of records below it link to inclusion proofs.
    pub size: Option<u64>,
    /// The ledger's records now.
    pub tree_size: u64,
    pub log_key_id: Option<String>,
    pub log_public_key_base64: Option<String>,
}

impl CheckpointView {
    pub fn new(state: &State, note: Option<String>) -> CheckpointView {
        let size = note.as_deref().and_then(|text| {
            let note = crate::checkpoint::Note::parse(text).ok()?;
            crate::checkpoint::parse_checkpoint(&note.body).ok().map(|c| c.size)
        });
        CheckpointView {
            note: note.filter(|_| size.is_some()),
            size,
            tree_size: state.size,
            log_key_id: state.log_key.as_ref().map(|(id, _)| id.clone()),
            log_public_key_base64: state.log_key.as_ref().map(|(_, key)| crate::encoding::base64_encode(key)),
        }
    }

    /// Whether record `seq` is in the checkpointed tree (so it has a proof against it).
    pub fn covers(&self, seq: u64) -> bool {
        self.size.is_some_and(|size| seq < size)
    }
}

/// An office's notice page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficeNotice {
    pub office_id: String,
    pub office_name: String,
    pub level: Level,
    pub ledger_name: String,
    /// The ledger clock: the notice's date.
    pub as_of: Option<Date>,
    pub rosters: Vec<Roster>,
    /// Rosters left off beyond [`NOTICE_ROWS_MAX`] rows (the oldest).
    pub rosters_left_off: usize,
    pub projects: Vec<ProjectNotice>,
    /// Accounts of the office, its ancestors and the offices below it.
    pub flows: Vec<FlowRow>,
    /// The complaint channel and the office it is from (this one or the nearest ancestor with one).
    pub contact: Option<(String, String)>,
    pub checkpoint: CheckpointView,
}

/// An office's name, or its id if unknown.
pub fn office_name(state: &State, office: &str) -> String {
    state.offices.get(office).map_or_else(|| office.to_string(), |o| o.name.clone())
}

/// A village committee's name as a roster's 组/村 column shows it
/// (`业州镇雾黄村民委员会` → `业州镇雾黄村`).
pub fn village_label(name: &str) -> String {
    match name.strip_suffix("村民委员会") {
        Some(stem) => format!("{stem}村"),
        None => name.to_string(),
    }
}

/// The notice page of `office` (None if no such office).
pub fn office_notice(
    state: &State,
    projections: &Projections,
    office: &str,
    query: &NoticeQuery,
    checkpoint: CheckpointView,
) -> Option<OfficeNotice> {
    let office_state = state.offices.get(office)?;
    let index = &projections.notices;
    let (rosters, rosters_left_off) = rosters(state, projections, index, office, query);
    Some(OfficeNotice {
        office_id: office.to_string(),
        office_name: office_state.name.clone(),
        level: office_state.level,
        ledger_name: state.ledger_name.clone().unwrap_or_default(),
        as_of: state.clock,
        rosters,
        rosters_left_off,
        projects: projects(state, projections, index, office),
        flows: flows(state, projections, office),
        contact: contact(state, office),
        checkpoint,
    })
}

fn contact(state: &State, office: &str) -> Option<(String, String)> {
    office_chain(state, office).into_iter().find_map(|id| {
        let found = state.offices.get(id)?;
        found.contact.clone().filter(|c| !c.trim().is_empty()).map(|c| (c, found.name.clone()))
    })
}

/// Households of villages at or below `office`, in id order.
fn region_households<'a>(
    state: &State,
    projections: &'a Projections,
    index: &NoticeIndex,
    office: &str,
) -> Vec<(&'a Sym, &'a Household)> {
    // The households of the villages at or below `office`, from the index:
    // the page reads (and, after a reopen, decodes) those alone.
    let mut ids = listed_in_region(state, office, &index.village_households);
    ids.sort_unstable();
    projections.households.many(&ids)
}

/// The ids an index keyed by office lists under the offices of `office`'s
/// region (`office` and those below it). A village, the lowest level, is
/// its whole region: one lookup, no walk over the index. Keys that are no
/// office (a project's free-text location) belong to no region.
fn listed_in_region<'a>(state: &State, office: &str, by_office: &'a BTreeMap<Sym, Vec<Sym>>) -> Vec<&'a str> {
    if state.offices.get(office).is_some_and(|o| o.level == Level::Village) {
        return by_office.get(office).into_iter().flatten().map(|id| id.as_str()).collect();
    }
    let mut within = WithinOffice::new(state, office);
    by_office
        .iter()
        .filter(|(place, _)| state.offices.contains_key(place.as_str()) && within.contains(place))
        .flat_map(|(_, ids)| ids.iter().map(|id| id.as_str()))
        .collect()
}

/// A payout with its household and the household's id.
type PaidHousehold<'a> = (&'a Sym, &'a Household, &'a PayoutEntry);

fn rosters(
    state: &State,
    projections: &Projections,
    index: &NoticeIndex,
    office: &str,
    query: &NoticeQuery,
) -> (Vec<Roster>, usize) {
    // Latest period first, then program id.
    let mut grouped: BTreeMap<(std::cmp::Reverse<Period>, &str), Vec<PaidHousehold<'_>>> = BTreeMap::new();
    for (id, household) in region_households(state, projections, index, office) {
        for payout in &household.payouts {
            let wanted = query.program.as_deref().is_none_or(|p| p == payout.program)
                && query.period.is_none_or(|p| p == payout.period);
            if wanted {
                let key = (std::cmp::Reverse(payout.period), payout.program.as_str());
                grouped.entry(key).or_default().push((id, household, payout));
            }
        }
    }
    let mut rosters = Vec::new();
    let (mut rows_taken, mut left_off) = (0usize, 0usize);
    for ((std::cmp::Reverse(period), program), payouts) in grouped {
        if rows_taken + payouts.len() > NOTICE_ROWS_MAX {
            left_off += 1;
            continue;
        }
        rows_taken += payouts.len();
        rosters.push(roster(state, projections, index, program, period, payouts));
    }
    (rosters, left_off)
}

fn roster(
    state: &State,
    projections: &Projections,
    index: &NoticeIndex,
    program: &str,
    period: Period,
    payouts: Vec<PaidHousehold<'_>>,
) -> Roster {
    let program_state = state.programs.get(program);
    let program_name = program_state.map_or_else(|| program.to_string(), |p| p.name.clone());
    let mut notice_seqs = BTreeSet::new();
    let mut rows = Vec::with_capacity(payouts.len());
    // The roster notices of this program that cover this period, found once
    // per roster from the index (not one ordered-map lookup per notice of
    // every household: that grew with the ledger's age).
    let mut covering: Vec<u64> = [None, Some(period)]
        .into_iter()
        .filter_map(|named| index.roster_notices.get(&(program.to_string(), named)))
        .flatten()
        .copied()
        .filter(|seq| projections.roster_notices.contains_key(seq))
        .collect();
    covering.sort_unstable();
    covering.dedup();
    // A roster's rows come from a few villages (one, on a village page).
    let mut village_labels: HashMap<&str, String> = HashMap::new();
    for (id, household, payout) in payouts {
        let village_name = village_labels
            .entry(household.village.as_str())
            .or_insert_with(|| village_label(&office_name(state, &household.village)))
            .clone();
        let listed = household.notices.get(program).map_or(&[][..], Vec::as_slice);
        let listing = sorted_intersection(&covering, listed);
        notice_seqs.extend(listing.iter().copied());
        rows.push(RosterRow {
            seq: payout.seq,
            household_id: id.to_string(),
            head_name_masked: mask_name(&household.head_name_masked),
            village_name,
            members: household.members_before(payout.seq).len(),
            program_name: program_name.clone(),
            standard_fen: program_state.and_then(|p| p.standard_fen),
            amount_fen: payout.amount_fen,
            refunded_fen: payout.refunded_fen,
            period,
            paid_on: payout.at,
            card_masked: index.paid_card_masked(id, household, payout.seq).unwrap_or("（未登记卡）").to_string(),
            unlisted: listing.is_empty(),
        });
    }
    rows.sort_by(|a, b| (&a.village_name, a.paid_on, a.seq).cmp(&(&b.village_name, b.paid_on, b.seq)));
    // One line per publisher and span: a county publishes the same span for each village.
    let mut notices: Vec<NoticeSpan> = Vec::new();
    for seq in notice_seqs {
        let Some(notice) = projections.roster_notices.get(&seq) else { continue };
        let seen = notices.iter().any(|n| (&n.office, n.from, n.to) == (&notice.office, notice.from, notice.to));
        if !seen {
            notices.push(NoticeSpan { seq, office: notice.office.clone(), from: notice.from, to: notice.to });
        }
    }
    Roster { program: program.to_string(), program_name, period, notices, rows }
}

/// The seqs in both ascending lists, ascending: the shorter list's seqs
/// searched for in the longer, so a roster costs what its smaller side
/// does. Both grow with the ledger's age: the covering notices of a
/// program (every county's notices naming no period), and the notices that
/// listed a household (one per month it was listed).
fn sorted_intersection(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.iter().copied().filter(|seq| long.binary_search(seq).is_ok()).collect()
}

/// `is_within(state, ·, office)` remembered per office for one page: a page
/// asks it of every fund account of the province and of every place in an
/// index keyed by office (`listed_in_region`), which name far fewer
/// distinct offices, and each answer is a walk up the office tree.
struct WithinOffice<'a> {
    state: &'a State,
    office: &'a str,
    known: HashMap<String, bool>,
}

impl<'a> WithinOffice<'a> {
    fn new(state: &'a State, office: &'a str) -> WithinOffice<'a> {
        WithinOffice { state, office, known: HashMap::new() }
    }

    fn contains(&mut self, other: &str) -> bool {
        if let Some(known) = self.known.get(other) {
            return *known;
        }
        let within = is_within(self.state, other, self.office);
        self.known.insert(other.to_string(), within);
        within
    }
}

fn projects(state: &State, projections: &Projections, index: &NoticeIndex, office: &str) -> Vec<ProjectNotice> {
    let mut notices = Vec::new();
    // The projects registered by or located at an office of the page's
    // region: the index lists exactly those.
    let ids: BTreeSet<&str> = listed_in_region(state, office, &index.projects_by_place).into_iter().collect();
    for id in ids {
        let Some((id, project)) = projections.projects.get_key_value(id) else { continue };
        let facts = index.project(id);
        let location = match facts.and_then(|f| f.location.as_deref()) {
            Some(l) if state.offices.contains_key(l) => village_label(&office_name(state, l)),
            Some(l) => l.to_string(),
            None => String::new(),
        };
        notices.push(ProjectNotice {
            project_id: id.clone(),
            name: project.name.clone(),
            location,
            program_name: state
                .programs
                .get(&project.program)
                .map_or_else(|| project.program.clone(), |p| p.name.clone()),
            office_name: office_name(state, &project.office),
            budget_fen: project.budget_fen,
            payees: facts
                .map(|f| f.payees.values().cloned().collect::<BTreeSet<_>>().into_iter().collect())
                .unwrap_or_default(),
            paid_fen: project.net_spent_fen(),
            notices: facts.map(|f| f.notices.clone()).unwrap_or_default(),
        });
    }
    notices
}

/// The accounts of the office, its ancestors and the offices below it, by
/// level, office and program.
fn flows(state: &State, projections: &Projections, office: &str) -> Vec<FlowRow> {
    let ancestors = office_chain(state, office);
    let mut within = WithinOffice::new(state, office);
    let mut rows = Vec::new();
    for (key, account) in &projections.accounts {
        let (account_office, program) = key.split_once('/').expect("account ids are office/program");
        if !ancestors.contains(&account_office) && !within.contains(account_office) {
            continue;
        }
        let Some(found) = state.offices.get(account_office) else { continue };
        rows.push(FlowRow {
            office_name: found.name.clone(),
            program_name: state.programs.get(program).map_or_else(|| program.to_string(), |p| p.name.clone()),
            summary: summary_row(account_office, found.level, program, account, state.clock),
        });
    }
    rows.sort_by(|a, b| {
        let (a, b) = (&a.summary, &b.summary);
        (a.level, &a.office, &a.program).cmp(&(b.level, &b.office, &b.program))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: &str) {
        assert_eq!(mask_name(name), expected, "{name}");
        assert_eq!(mask_name(expected), expected, "masking is idempotent on {expected}");
    }

    #[test]
    fn masking_follows_spec_section_9() {
        check("张三", "张*");
        check("张*", "张*");
        check("张三丰", "张*丰");
        check("张*丰", "张*丰");
        check("欧阳明", "欧*明");
        check("欧阳*明", "欧**明");
        check("欧**明", "欧**明");
        check("李", "*");
        check("", "");
        check("<script>", "<******>");
    }

    #[test]
    fn village_labels() {
        assert_eq!(village_label("业州镇雾黄村民委员会"), "业州镇雾黄村");
        assert_eq!(village_label("三组"), "三组");
    }

    #[test]
    fn months_roll_over() {
        assert_eq!(Month { year: 2018, month: 12 }.next(), Month { year: 2019, month: 1 });
        assert_eq!(Month::of(Date::parse("2019-02-28").unwrap()).to_string(), "2019-02");
        assert_eq!(Month { year: 2019, month: 3 }.minus(3), Month { year: 2018, month: 12 });
        assert_eq!(Month { year: 2019, month: 3 }.minus(0), Month { year: 2019, month: 3 });
    }
}
