//! The 17 misuse rules of SPEC §7, evaluated over the projections in one
//! pass, with the thresholds of a [`Policy`].
//!
//! Owns: which flags exist, their subjects, evidence, ids, severity, money
//! at stake and messages. A flag is one per (rule, subject); its id hashes
//! the first (smallest) evidence seq. Rules that depend on "now" (idle_funds,
//! stalled_pass_through for lots still held) use the ledger clock, the
//! largest business date seen, so a replay gives the same flags.
//! Never: does I/O, or puts a raw ID or card number in a message (the chain
//! holds only digests; messages name cards and people by their masked forms).
//!
//! # Decisions where SPEC §7 is terse (pinned by vectors/rules where noted)
//!
//! Days are `from.days_until(to)` (calendar days between the dates); only a
//! notice's length counts both ends (`to − from + 1`). Thresholds come from
//! the policy of the acting office and program (see `policy`).
//!
//! - idle_funds: every lot still held with age ≥ `idle_days` as of the clock
//!   is evidence (its crediting seq); high once the oldest reaches
//!   `idle_severe_days`. Money at stake: those lots. (Vector: 365 fires, 364 not.)
//! - stalled_pass_through: only central/province/prefecture accounts. Any
//!   debit (transfer, reallocation, payout, expenditure) that consumes part
//!   of a lot held > `pass_through_days` adds [lot seq, debit seq]; a lot
//!   still held that long adds [lot seq]. (Vectors: `[credit, debit]` at 31
//!   days, quiet at 30; `[credit]` when still held.)
//! - off_tree_transfer, cross_program_diversion, forbidden_expenditure,
//!   unlisted_project: one flag per event, evidence [its seq]. A project's
//!   budget is compared with its own office's and program's spending on it,
//!   net of refunds, as of the expenditure; money at stake is the part
//!   beyond the budget.
//! - ineligible_household: status is a dated fact: the latest change on or
//!   before the payout's date over the whole chain (a removal recorded later
//!   but dated earlier counts). Exit: more than `transition_days` after it.
//! - deceased_payee: dates of death as recorded (earliest per person, over
//!   the whole chain); "every member" means the members at the payout's
//!   place in ledger order (SPEC), and needs at least one member.
//! - card_mismatch: the card bound at the payout's place in ledger order.
//! - duplicate_payout: same household, program and period, payouts refunded
//!   in full left out; a partly refunded one still counts. Evidence: the
//!   counted payouts. Money at stake: all but the first.
//! - over_standard: a payout's amount as paid above `standard_fen`; or the
//!   payouts of one program whose periods fall in one calendar year, net of
//!   refunds, above `cap_fen_per_year` (evidence: those not refunded in
//!   full). (Vector: a cap breach cites every payout of the year.)
//! - shared_card / duplicate_person: judged whenever a binding, membership
//!   or status changes; whenever two or more households not removed share
//!   the card or person, their binding (registering, card-changing or
//!   member-adding) events join the flag, which stays once raised (the
//!   sharing happened). Money at stake: net payouts to those households.
//! - outlier_payout: every payout of the same office, program and period
//!   (this one included, amounts as paid); the median of an even count is
//!   the mean of the two middle amounts.
//! - structuring: expenditures to one payee whose amount is in [low%, high%)
//!   of the threshold of its category (construction, goods, else services);
//!   a window ends at each such expenditure and reaches back
//!   `structuring_window_days` (dates at most that many days apart — the
//!   vector fires at 30 days apart, quiet at 31); every member of a window
//!   holding `structuring_count_min` or more is evidence.
//! - late_payout: the payout's date more than `late_payout_days` after the
//!   period's last day.
//! - paid_before_notice: a roster notice recorded before the payout, by the
//!   paying office or an ancestor, for the payout's program, with no period
//!   or the payout's exact period, listing the household, ending before the
//!   payout's date and lasting at least `roster_notice_days_min` days.
//!
//! Payout rules put each payout's net amount (after refunds) at stake.

use crate::date::Date;
use crate::encoding::flag_id;
use crate::payload::ReviewStatus;
use crate::policy::{Policy, Thresholds};
use crate::projection::{
    office_chain, yuan, Household, PayeeSpend, PayoutEntry, Projections, Standing, PASS_THROUGH_LEVELS,
};
use crate::state::State;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A message lists at most this many cases, then "and N more".
pub const MESSAGE_DETAILS_MAX: usize = 3;

/// The rules of SPEC §7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    IdleFunds,
    StalledPassThrough,
    OffTreeTransfer,
    CrossProgramDiversion,
    ForbiddenExpenditure,
    UnlistedProject,
    IneligibleHousehold,
    DeceasedPayee,
    DuplicatePayout,
    OverStandard,
    SharedCard,
    CardMismatch,
    DuplicatePerson,
    OutlierPayout,
    Structuring,
    LatePayout,
    PaidBeforeNotice,
}

/// What a flag is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Account,
    Office,
    Household,
    Person,
    Card,
    Payee,
    Project,
    Event,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Rule {
    pub const ALL: [Rule; 17] = [
        Rule::IdleFunds,
        Rule::StalledPassThrough,
        Rule::OffTreeTransfer,
        Rule::CrossProgramDiversion,
        Rule::ForbiddenExpenditure,
        Rule::UnlistedProject,
        Rule::IneligibleHousehold,
        Rule::DeceasedPayee,
        Rule::DuplicatePayout,
        Rule::OverStandard,
        Rule::SharedCard,
        Rule::CardMismatch,
        Rule::DuplicatePerson,
        Rule::OutlierPayout,
        Rule::Structuring,
        Rule::LatePayout,
        Rule::PaidBeforeNotice,
    ];

    /// The SPEC §7 rule name.
    pub fn name(self) -> &'static str {
        match self {
            Rule::IdleFunds => "idle_funds",
            Rule::StalledPassThrough => "stalled_pass_through",
            Rule::OffTreeTransfer => "off_tree_transfer",
            Rule::CrossProgramDiversion => "cross_program_diversion",
            Rule::ForbiddenExpenditure => "forbidden_expenditure",
            Rule::UnlistedProject => "unlisted_project",
            Rule::IneligibleHousehold => "ineligible_household",
            Rule::DeceasedPayee => "deceased_payee",
            Rule::DuplicatePayout => "duplicate_payout",
            Rule::OverStandard => "over_standard",
            Rule::SharedCard => "shared_card",
            Rule::CardMismatch => "card_mismatch",
            Rule::DuplicatePerson => "duplicate_person",
            Rule::OutlierPayout => "outlier_payout",
            Rule::Structuring => "structuring",
            Rule::LatePayout => "late_payout",
            Rule::PaidBeforeNotice => "paid_before_notice",
        }
    }

    /// The SPEC §7 Chinese name.
    pub fn chinese(self) -> &'static str {
        match self {
            Rule::IdleFunds => "资金闲置滞留",
            Rule::StalledPassThrough => "层层截留",
            Rule::OffTreeTransfer => "违规转移",
            Rule::CrossProgramDiversion => "挤占挪用",
            Rule::ForbiddenExpenditure => "违规支出",
            Rule::UnlistedProject => "项目库外支出",
            Rule::IneligibleHousehold => "虚报冒领",
            Rule::DeceasedPayee => "死亡人员冒领",
            Rule::DuplicatePayout => "重复发放",
            Rule::OverStandard => "超标准发放",
            Rule::SharedCard => "一卡多户",
            Rule::CardMismatch => "代领/户卡不符",
            Rule::DuplicatePerson => "一人多户",
            Rule::OutlierPayout => "异常大额",
            Rule::Structuring => "拆分规避",
            Rule::LatePayout => "发放不及时",
            Rule::PaidBeforeNotice => "未公示先发放",
        }
    }

    pub fn subject_kind(self) -> SubjectKind {
        match self {
            Rule::IdleFunds | Rule::StalledPassThrough => SubjectKind::Account,
            Rule::OffTreeTransfer
            | Rule::CrossProgramDiversion
            | Rule::ForbiddenExpenditure
            | Rule::UnlistedProject => SubjectKind::Event,
            Rule::SharedCard => SubjectKind::Card,
            Rule::DuplicatePerson => SubjectKind::Person,
            Rule::Structuring => SubjectKind::Payee,
            Rule::IneligibleHousehold
            | Rule::DeceasedPayee
            | Rule::DuplicatePayout
            | Rule::OverStandard
            | Rule::CardMismatch
            | Rule::OutlierPayout
            | Rule::LatePayout
            | Rule::PaidBeforeNotice => SubjectKind::Household,
        }
    }

    /// The severity of a flag of this rule (idle_funds may rise to high).
    pub fn severity(self) -> Severity {
        match self {
            Rule::LatePayout => Severity::Low,
            Rule::IdleFunds
            | Rule::StalledPassThrough
            | Rule::UnlistedProject
            | Rule::OverStandard
            | Rule::OutlierPayout
            | Rule::PaidBeforeNotice => Severity::Medium,
            Rule::OffTreeTransfer
            | Rule::CrossProgramDiversion
            | Rule::ForbiddenExpenditure
            | Rule::IneligibleHousehold
            | Rule::DeceasedPayee
            | Rule::DuplicatePayout
            | Rule::SharedCard
            | Rule::CardMismatch
            | Rule::DuplicatePerson
            | Rule::Structuring => Severity::High,
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.name() == name)
    }
}

impl SubjectKind {
    pub fn name(self) -> &'static str {
        match self {
            SubjectKind::Account => "account",
            SubjectKind::Office => "office",
            SubjectKind::Household => "household",
            SubjectKind::Person => "person",
            SubjectKind::Card => "card",
            SubjectKind::Payee => "payee",
            SubjectKind::Project => "project",
            SubjectKind::Event => "event",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: String,
}

/// A flag as shown to auditors (SPEC §7 JSON shape, plus the review note).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub flag_id: String,
    pub rule: Rule,
    pub severity: Severity,
    pub subject: Subject,
    /// The money at stake.
    pub amount_fen: u64,
    /// Ascending seqs of the events that make the case.
    pub evidence: Vec<u64>,
    pub message: String,
    /// The latest review's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_seq: Option<u64>,
    /// Households the flag concerns (for the household view).
    #[serde(skip)]
    pub households: Vec<String>,
}

/// A flag being assembled.
#[derive(Default)]
struct Draft {
    evidence: BTreeSet<u64>,
    amount_fen: u64,
    severe: bool,
    details: Vec<String>,
    households: BTreeSet<String>,
}

/// FxHash (rustc's): a multiply and a rotate per 8 bytes. For the rules'
/// per-payout maps, keyed by office, program and period ids from the chain:
/// SipHash's resistance to chosen collisions buys nothing there (a signer
/// who registered colliding ids would slow the rules, not change them), and
/// it was ~12% of the samples of a 10 M `sunledger-bench --rules` run.
#[derive(Default)]
struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(SEED);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// Thresholds per (office, program), resolved once each.
struct ThresholdCache<'a> {
    policy: &'a Policy,
    state: &'a State,
    /// A hash map: asked once per payout (10 M at province scale), in no order.
    resolved: FastMap<(&'a str, &'a str), Thresholds>,
}

impl<'a> ThresholdCache<'a> {
    fn get(&mut self, office: &'a str, program: &'a str) -> Thresholds {
        let (policy, state) = (self.policy, self.state);
        *self.resolved.entry((office, program)).or_insert_with(|| policy.resolve(&office_chain(state, office), program))
    }
}

struct Evaluation<'a> {
    projections: &'a Projections,
    state: &'a State,
    thresholds: ThresholdCache<'a>,
    drafts: BTreeMap<(Rule, &'a str), Draft>,
    /// `projections.deaths` in a hash map: asked about the paid person of
    /// every payout.
    deaths: FastMap<&'a str, Date>,
}

/// Every flag, sorted by rule name then subject (kind, id).
pub fn evaluate(projections: &Projections, state: &State, policy: &Policy) -> Vec<Flag> {
    let mut evaluation = Evaluation {
        projections,
        state,
        thresholds: ThresholdCache { policy, state, resolved: FastMap::default() },
        drafts: BTreeMap::new(),
        deaths: projections.deaths.iter().map(|(digest, date)| (digest.as_str(), *date)).collect(),
    };
    if let Some(now) = state.clock {
        evaluation.fund_rules(now);
    }
    evaluation.household_rules();
    evaluation.outlier_payouts();
    evaluation.structuring();
    evaluation.event_findings();
    evaluation.finish()
}

impl<'a> Evaluation<'a> {
    fn draft(&mut self, rule: Rule, subject: &'a str) -> &mut Draft {
        self.drafts.entry((rule, subject)).or_default()
    }

    /// idle_funds and stalled_pass_through, as of the ledger clock.
    fn fund_rules(&mut self, now: Date) {
        let projections = self.projections;
        for (account_key, account) in &projections.accounts {
            let (office, program) = account_key.split_once('/').expect("account ids are office/program");
            let t = self.thresholds.get(office, program);
            let age = |at: Date| at.days_until(now);
            let idle: Vec<_> = account.lots.iter().filter(|lot| age(lot.at) >= days(t.idle_days)).collect();
            if let Some(oldest) = idle.iter().max_by_key(|lot| (age(lot.at), std::cmp::Reverse(lot.seq))) {
                let held: u64 = idle.iter().map(|lot| lot.amount_fen).sum();
                let detail = format!(
                    "{} yuan in {account_key} held {} days or more (oldest since {}, {} days) as of {now}",
                    yuan(held),
                    t.idle_days,
                    oldest.at,
                    age(oldest.at)
                );
                let draft = self.draft(Rule::IdleFunds, account_key);
                draft.evidence.extend(idle.iter().map(|lot| lot.seq));
                draft.amount_fen = held;
                draft.severe = age(oldest.at) >= days(t.idle_severe_days);
                draft.details.push(detail);
            }
            let level = self.state.offices.get(office).map(|o| o.level);
            if level.is_some_and(|l| PASS_THROUGH_LEVELS.contains(&l)) {
                self.stalled(account_key, account, now, t.pass_through_days);
            }
        }
    }

    fn stalled(&mut self, key: &'a str, account: &'a crate::projection::Account, now: Date, limit_days: u64) {
        let moved: Vec<_> = account.held_moves.iter().filter(|m| u64::from(m.held_days) > limit_days).collect();
        let held: Vec<_> = account.lots.iter().filter(|lot| lot.at.days_until(now) > days(limit_days)).collect();
        if moved.is_empty() && held.is_empty() {
            return;
        }
        let moved_fen: u64 = moved.iter().map(|m| m.amount_fen).sum();
        let held_fen: u64 = held.iter().map(|lot| lot.amount_fen).sum();
        let mut details = Vec::new();
        if let Some(longest) = moved.iter().max_by_key(|m| m.held_days) {
            details.push(format!(
                "{} yuan moved on after more than {limit_days} days (up to {} days)",
                yuan(moved_fen),
                longest.held_days
            ));
        }
        if let Some(oldest) = held.iter().min_by_key(|lot| lot.at) {
            details.push(format!(
                "{} yuan still held more than {limit_days} days (since {}) as of {now}",
                yuan(held_fen),
                oldest.at
            ));
        }
        let draft = self.draft(Rule::StalledPassThrough, key);
        draft.evidence.extend(moved.iter().flat_map(|m| [m.lot_seq, m.debit_seq]));
        draft.evidence.extend(held.iter().map(|lot| lot.seq));
        draft.amount_fen = moved_fen.saturating_add(held_fen);
        draft.details.push(format!("{key}: {}", details.join(", ")));
    }

    /// The rules judged on each household's payouts.
    fn household_rules(&mut self) {
        let projections = self.projections;
        for (id, household) in &projections.households {
            // Whether anyone ever a member has a recorded death: asked once
            // per household, so the members at each payout's place are
            // recovered only where deceased_payee could hold.
            let deaths = &self.deaths;
            let a_member_died = household.membership_log.iter().any(|c| deaths.contains_key(c.person_digest.as_str()));
            for payout in &household.payouts {
                let t = self.thresholds.get(&payout.office, &payout.program);
                self.payout_rules(id, household, a_member_died, payout, &t);
            }
            self.duplicate_payouts(id, household);
            self.over_standard(id, household);
        }
    }

    fn payout_case(&mut self, rule: Rule, household: &'a str, payout: &PayoutEntry, amount_fen: u64, why: String) {
        let detail = format!(
            "payout {} of {} yuan ({} {}) on {} by {}: {why}",
            payout.id,
            yuan(payout.amount_fen),
            payout.program,
            payout.period,
            payout.at,
            payout.office
        );
        let draft = self.draft(rule, household);
        draft.evidence.insert(payout.seq);
        draft.amount_fen = draft.amount_fen.saturating_add(amount_fen);
        draft.details.push(detail);
    }

    /// deceased_payee: the paid person, or every member at the payout's place
    /// in ledger order, died (by the recorded date of death) before the
    /// period started.
    /// `a_member_died`: some person ever a member of the household has a
    /// recorded death (if not, not every member died).
    fn deceased(&self, household: &Household, a_member_died: bool, p: &PayoutEntry) -> Option<String> {
        let start = p.period.start();
        let died_before = |digest: &str| self.deaths.get(digest).filter(|death| **death < start);
        if let Some(death) = p.person_digest.as_deref().and_then(died_before) {
            return Some(format!("the paid person died on {death}, before the period started on {start}"));
        }
        if !a_member_died {
            return None;
        }
        let members = household.members_before(p.seq);
        let deaths: Option<Vec<&Date>> = members.iter().map(|m| died_before(m)).collect();
        let last = deaths.filter(|d| !d.is_empty())?.into_iter().max().copied()?;
        Some(format!("every member had died (the last on {last}) before the period started on {start}"))
    }

    fn payout_rules(
        &mut self,
        id: &'a str,
        household: &Household,
        a_member_died: bool,
        p: &PayoutEntry,
        t: &Thresholds,
    ) {
        let net = p.net_fen();
        let ineligible = match household.standing_on(p.at) {
            Standing::Enrolled => None,
            Standing::Removed { since } => Some(format!("the household was removed (清退) on {since}")),
            Standing::NotYetRegistered { registered } => {
                Some(format!("the household was registered only on {registered}"))
            }
            Standing::Exited { since } => (since.days_until(p.at) > days(t.transition_days)).then(|| {
                format!(
                    "the household exited on {since}, {} days before, beyond the transition period",
                    since.days_until(p.at)
                )
            }),
        };
        if let Some(why) = ineligible {
            self.payout_case(Rule::IneligibleHousehold, id, p, net, why);
        }
        if let Some(why) = self.deceased(household, a_member_died, p) {
            self.payout_case(Rule::DeceasedPayee, id, p, net, why);
        }
        if !p.card_matches {
            let why = "paid to a card other than the household's bound card".to_string();
            self.payout_case(Rule::CardMismatch, id, p, net, why);
        }
        let late_days = p.period.end().days_until(p.at);
        if late_days > days(t.late_payout_days) {
            let why = format!("{late_days} days after the period ended on {}", p.period.end());
            self.payout_case(Rule::LatePayout, id, p, net, why);
        }
        let noticed = p.notice_days.is_some_and(|d| u64::from(d) >= t.roster_notice_days_min);
        if !noticed {
            let why = match p.notice_days {
                None => "no earlier roster notice of the paying office or above lists it".to_string(),
                Some(d) => {
                    format!("the covering roster notice lasted {d} days, less than {}", t.roster_notice_days_min)
                }
            };
            self.payout_case(Rule::PaidBeforeNotice, id, p, net, why);
        }
    }

    /// duplicate_payout: one program and period paid twice or more, payouts
    /// refunded in full not counted.
    fn duplicate_payouts(&mut self, household: &'a str, h: &'a Household) {
        // Grouped by (program, period) in that order, each group in seq
        // order: a stable sort of a few dozen payouts, not a map per household.
        let mut sorted: Vec<&PayoutEntry> = h.payouts.iter().filter(|p| p.net_fen() > 0).collect();
        sorted.sort_by(|a, b| (a.program.as_str(), a.period).cmp(&(b.program.as_str(), b.period)));
        let groups = sorted.chunk_by(|a, b| (a.program.as_str(), a.period) == (b.program.as_str(), b.period));
        for payouts in groups.filter(|g| g.len() >= 2) {
            let (program, period) = (payouts[0].program.as_str(), payouts[0].period);
            let extra: u64 = payouts[1..].iter().map(|p| p.net_fen()).sum();
            let ids: Vec<&str> = payouts.iter().map(|p| p.id.as_str()).collect();
            let detail = format!("{program} {period} paid {} times ({})", payouts.len(), ids.join(", "));
            let draft = self.draft(Rule::DuplicatePayout, household);
            draft.evidence.extend(payouts.iter().map(|p| p.seq));
            draft.amount_fen = draft.amount_fen.saturating_add(extra);
            draft.details.push(detail);
        }
    }

    /// over_standard: a payout above the program's standard, or a year's
    /// total net of refunds above its cap.
    fn over_standard(&mut self, household: &'a str, h: &'a Household) {
        let mut years: BTreeMap<(&str, i32), Vec<&PayoutEntry>> = BTreeMap::new();
        for payout in &h.payouts {
            years.entry((&payout.program, payout.period.year())).or_default().push(payout);
        }
        for ((program, year), payouts) in years {
            let Some(definition) = self.state.programs.get(program) else { continue };
            let mut evidence = BTreeSet::new();
            let mut details = Vec::new();
            let mut standard_excess = 0u64;
            if let Some(standard) = definition.standard_fen {
                for p in payouts.iter().filter(|p| p.amount_fen > standard) {
                    evidence.insert(p.seq);
                    standard_excess += p.amount_fen - standard;
                    details.push(format!(
                        "payout {} of {} yuan is above the {program} standard of {} yuan",
                        p.id,
                        yuan(p.amount_fen),
                        yuan(standard)
                    ));
                }
            }
            let total: u64 = payouts.iter().map(|p| p.net_fen()).sum();
            let mut cap_excess = 0u64;
            if let Some(cap) = definition.cap_fen_per_year.filter(|cap| total > *cap) {
                evidence.extend(payouts.iter().filter(|p| p.net_fen() > 0).map(|p| p.seq));
                cap_excess = total - cap;
                details.push(format!(
                    "{program} payouts for {year} total {} yuan net of refunds, above the cap of {} yuan",
                    yuan(total),
                    yuan(cap)
                ));
            }
            if evidence.is_empty() {
                continue;
            }
            let draft = self.draft(Rule::OverStandard, household);
            draft.evidence.extend(evidence);
            draft.amount_fen = draft.amount_fen.saturating_add(standard_excess.max(cap_excess));
            draft.details.extend(details);
        }
    }

    /// outlier_payout: above a multiple of the median of the payouts by the
    /// same office, program and period (all of them, this one included).
    fn outlier_payouts(&mut self) {
        type GroupKey<'k> = (&'k str, &'k str, crate::date::Period);
        let projections = self.projections;
        // First pass: each group's amounts (8 bytes a payout, not its whole
        // entry: 10 M payouts at province scale).
        let mut amounts: FastMap<GroupKey<'a>, Vec<u64>> = FastMap::default();
        for household in projections.households.values() {
            for payout in &household.payouts {
                amounts.entry((&payout.office, &payout.program, payout.period)).or_default().push(payout.amount_fen);
            }
        }
        // Each group's bound, if it has enough payouts: (payouts, twice the
        // median, to stay in integers for an even count, and the multiple).
        let mut bounds: FastMap<GroupKey<'a>, (usize, u128, u64)> = FastMap::default();
        for (key, mut amounts) in amounts {
            let t = self.thresholds.get(key.0, key.1);
            if (amounts.len() as u64) < t.outlier_payouts_min {
                continue;
            }
            amounts.sort_unstable();
            let n = amounts.len();
            let twice_median = u128::from(amounts[(n - 1) / 2]) + u128::from(amounts[n / 2]);
            bounds.insert(key, (n, twice_median, t.outlier_median_multiple));
        }
        // Second pass: the payouts above their group's bound, taken group by
        // group in key order and, within a group, in ledger order of
        // households and payouts (a stable sort of the few found).
        let mut found: Vec<(GroupKey<'a>, &'a str, &'a PayoutEntry)> = Vec::new();
        for (id, household) in &projections.households {
            for p in &household.payouts {
                let key = (p.office.as_str(), p.program.as_str(), p.period);
                let Some(&(_, twice_median, multiple)) = bounds.get(&key) else { continue };
                if 2 * u128::from(p.amount_fen) > u128::from(multiple) * twice_median {
                    found.push((key, id, p));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        for ((office, program, period), household, p) in found {
            let (n, twice_median, multiple) = bounds[&(office, program, period)];
            let why = format!(
                "more than {multiple} times the median {} yuan of the {n} payouts by {office} for {program} {period}",
                half_yuan(twice_median)
            );
            self.payout_case(Rule::OutlierPayout, household, p, p.net_fen(), why);
        }
    }

    /// structuring: near-threshold expenditures to one payee, enough of them
    /// within a window.
    fn structuring(&mut self) {
        let projections = self.projections;
        for (payee_id, payee) in &projections.payees {
            let mut near: Vec<(&PayeeSpend, Thresholds)> = Vec::new();
            for spend in &payee.spends {
                let t = self.thresholds.get(&spend.office, &spend.program);
                if near_threshold(spend, &t) {
                    near.push((spend, t));
                }
            }
            near.sort_by_key(|(spend, _)| (spend.at, spend.seq));
            let mut chosen = BTreeSet::new();
            for (end, (last, t)) in near.iter().enumerate() {
                // Sorted by date, so the window's first member is a partition point.
                let start =
                    near[..=end].partition_point(|(s, _)| s.at.days_until(last.at) > days(t.structuring_window_days));
                if (end + 1 - start) as u64 >= t.structuring_count_min {
                    chosen.extend(start..=end);
                }
            }
            if chosen.is_empty() {
                continue;
            }
            let spends: Vec<&PayeeSpend> = chosen.iter().map(|i| near[*i].0).collect();
            let total: u64 = spends.iter().map(|s| s.amount_fen).sum();
            let first = spends.iter().map(|s| s.at).min().expect("chosen is not empty");
            let last = spends.iter().map(|s| s.at).max().expect("chosen is not empty");
            let detail = format!(
                "{} expenditures to {} ({payee_id}) totalling {} yuan between {first} and {last}, each just below its tender threshold",
                spends.len(),
                payee.name,
                yuan(total)
            );
            let draft = self.draft(Rule::Structuring, payee_id);
            draft.evidence.extend(spends.iter().map(|s| s.seq));
            draft.amount_fen = total;
            draft.details.push(detail);
        }
    }

    /// Findings judged when their events were folded in.
    fn event_findings(&mut self) {
        let projections = self.projections;
        for (rule, findings) in &projections.findings {
            for (subject, finding) in findings {
                let paid: u64 = finding
                    .households
                    .iter()
                    .filter_map(|h| projections.households.get(h.as_str()))
                    .flat_map(|h| h.payouts.iter().map(PayoutEntry::net_fen))
                    .sum();
                let draft = self.draft(*rule, subject);
                draft.evidence.extend(finding.evidence.iter().copied());
                draft.amount_fen = if finding.households.is_empty() { finding.amount_fen } else { paid };
                draft.households.extend(finding.households.iter().cloned());
                draft.details.push(finding.detail.clone());
            }
        }
    }

    fn finish(self) -> Vec<Flag> {
        let reviews = &self.projections.reviews;
        let mut flags: Vec<Flag> = self
            .drafts
            .into_iter()
            .map(|((rule, subject), draft)| {
                let kind = rule.subject_kind();
                let evidence: Vec<u64> = draft.evidence.into_iter().collect();
                let first = *evidence.first().expect("a flag has evidence");
                let id = flag_id(rule.name(), kind.name(), subject, first);
                let review = reviews.get(&id);
                let severity = if draft.severe { Severity::High } else { rule.severity() };
                let mut households: Vec<String> = draft.households.into_iter().collect();
                if kind == SubjectKind::Household {
                    households.push(subject.to_string());
                }
                Flag {
                    message: message(rule, &draft.details),
                    flag_id: id,
                    rule,
                    severity,
                    subject: Subject { kind, id: subject.to_string() },
                    amount_fen: draft.amount_fen,
                    evidence,
                    review: review.map(|r| r.status),
                    review_note: review.map(|r| r.note.clone()),
                    review_seq: review.map(|r| r.seq),
                    households,
                }
            })
            .collect();
        flags.sort_by(|a, b| {
            (a.rule.name(), a.subject.kind.name(), &a.subject.id).cmp(&(
                b.rule.name(),
                b.subject.kind.name(),
                &b.subject.id,
            ))
        });
        flags
    }
}

/// A threshold in days as a signed day count (thresholds are bounded by
/// `policy::DAYS_MAX`).
fn days(threshold: u64) -> i64 {
    i64::try_from(threshold).expect("day thresholds are bounded")
}

/// In [low%, high%) of the category's tender threshold.
fn near_threshold(spend: &PayeeSpend, t: &Thresholds) -> bool {
    use crate::payload::Category;
    let threshold = match spend.category {
        Category::Construction => t.tender_construction_fen,
        Category::Goods => t.tender_goods_fen,
        _ => t.tender_services_fen,
    };
    let amount = u128::from(spend.amount_fen) * 100;
    let threshold = u128::from(threshold);
    amount >= threshold * u128::from(t.structuring_band_low_percent)
        && amount < threshold * u128::from(t.structuring_band_high_percent)
}

/// Half of a fen amount, in yuan (a median of an even count may end in .5 fen).
fn half_yuan(twice_fen: u128) -> String {
    let fen = u64::try_from(twice_fen / 2).unwrap_or(u64::MAX);
    if twice_fen % 2 == 0 {
        yuan(fen)
    } else {
        format!("{}5", yuan(fen))
    }
}

fn message(rule: Rule, details: &[String]) -> String {
    let shown: Vec<&str> = details.iter().take(MESSAGE_DETAILS_MAX).map(String::as_str).collect();
    let mut text = format!("{} {}: {}", rule.chinese(), rule.name(), shown.join("; "));
    if details.len() > MESSAGE_DETAILS_MAX {
        text.push_str(&format!("; and {} more", details.len() - MESSAGE_DETAILS_MAX));
    }
    text
}
