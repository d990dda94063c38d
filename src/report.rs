//! Reports for people and machines over the projections: flags, accounts,
//! households, fund-flow summaries, and the rebuild check (issue 3).
//!
//! Boundary: this is an edge — it reads the store and the policy file and
//! prints; the judgement lives in `rules`, the folds in `projection`.
//! Human output is in yuan with two decimals; `--json` output is in fen.
//! Human output never shows a person or card digest (masked names and cards
//! only); JSON carries digests, which are keyed hashes, never raw numbers.
//!
//! `flags --office O` keeps a flag when O or an office below it is the
//! subject's office (an account's office, a household's village — also for
//! the households of a shared card or duplicated person — or a project's
//! office) or the acting office of any evidence event. So a county auditor
//! sees what happened in the county and what its offices did elsewhere.

use crate::date::Date;
use crate::envelope::Envelope;
use crate::ledger::Ledger;
use crate::payload::parse_payload;
use crate::payload::Level;
use crate::policy::Policy;
use crate::projection::{is_within, snake_name, yuan, Account, Household, Projections, Replay};
use crate::rules::{evaluate, Flag, Rule, Severity, SubjectKind};
use crate::state::State;
use crate::sym::Sym;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub type CommandResult = Result<i32, String>;

const EXIT_OK: i32 = 0;
/// Unknown account or household, or a rebuild that does not match.
const EXIT_NOT_FOUND_OR_MISMATCH: i32 = 1;
/// A human view shows this many hex digits of a digest subject.
const DIGEST_SHOWN_CHARS: usize = 12;

fn load_policy(path: Option<&Path>) -> Result<Policy, String> {
    match path {
        Some(path) => Policy::load(path).map_err(|e| e.to_string()),
        None => Ok(Policy::default()),
    }
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("report values serialise"));
}

fn known_office(state: &State, office: &str) -> Result<(), String> {
    if state.offices.contains_key(office) {
        return Ok(());
    }
    Err(format!("unknown office {office:?}"))
}

/// Which flags to show: every filter given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagFilter {
    pub rule: Option<Rule>,
    /// Keeps a flag that concerns this office or an office below it (see the module doc).
    pub office: Option<String>,
    pub severity: Option<Severity>,
}

impl FlagFilter {
    /// Parses the textual filters of the CLI and the API; an unknown rule or
    /// severity names what is known.
    pub fn parse(rule: Option<&str>, office: Option<&str>, severity: Option<&str>) -> Result<FlagFilter, String> {
        let rule = match rule {
            None => None,
            Some(name) => Some(Rule::parse(name).ok_or_else(|| {
                let known: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
                format!("unknown rule {name:?} (known: {})", known.join(", "))
            })?),
        };
        let severity = match severity {
            None => None,
            Some(name) => Some(
                SEVERITIES
                    .into_iter()
                    .find(|s| snake_name(s) == name)
                    .ok_or_else(|| format!("unknown severity {name:?} (known: low, medium, high)"))?,
            ),
        };
        Ok(FlagFilter { rule, office: office.map(str::to_string), severity })
    }
}

/// Every severity, lowest first.
pub const SEVERITIES: [Severity; 3] = [Severity::Low, Severity::Medium, Severity::High];

/// The flags of the ledger under `policy` that pass `filter`, in the order
/// of [`evaluate`].
pub fn select_flags(ledger: &Ledger, policy: &Policy, filter: &FlagFilter) -> Result<Vec<Flag>, String> {
    filter_flags(ledger, &evaluate(ledger.projections(), ledger.state(), policy), filter)
}

/// The flags of `all` that pass `filter`, in their order.
pub fn filter_flags(ledger: &Ledger, all: &[Flag], filter: &FlagFilter) -> Result<Vec<Flag>, String> {
    let state = ledger.state();
    if let Some(office) = &filter.office {
        known_office(state, office)?;
    }
    let mut flags: Vec<Flag> = all
        .iter()
        .filter(|flag| {
            filter.rule.is_none_or(|rule| rule == flag.rule) && filter.severity.is_none_or(|s| s == flag.severity)
        })
        .cloned()
        .collect();
    if let Some(office) = &filter.office {
        let mut offices_of_events = EventOffices::new(ledger);
        let mut kept = Vec::with_capacity(flags.len());
        for flag in flags {
            if flag_offices(state, &mut offices_of_events, &flag)?.iter().any(|o| is_within(state, o, office)) {
                kept.push(flag);
            }
        }
        flags = kept;
    }
    Ok(flags)
}

/// `sunledger flags`.
pub fn flags(
    ledger: &Ledger,
    json: bool,
    rule: Option<&str>,
    office: Option<&str>,
    policy: Option<&Path>,
) -> CommandResult {
    let policy = load_policy(policy)?;
    let flags = select_flags(ledger, &policy, &FlagFilter::parse(rule, office, None)?)?;
    if json {
        print_json(&flags);
    } else {
        print_flags(&flags, ledger.state().clock);
    }
    Ok(EXIT_OK)
}

/// The acting office of evidence events, read from the store once each.
pub struct EventOffices<'a> {
    ledger: &'a Ledger,
    known: BTreeMap<u64, String>,
}

impl<'a> EventOffices<'a> {
    pub fn new(ledger: &'a Ledger) -> Self {
        EventOffices { ledger, known: BTreeMap::new() }
    }

    /// The office that acted in event `seq`.
    pub fn office(&mut self, seq: u64) -> Result<&str, String> {
        if !self.known.contains_key(&seq) {
            let record = self.ledger.store().record(seq).map_err(|e| e.to_string())?;
            let record = record.ok_or_else(|| format!("evidence record {seq} is missing from the store"))?;
            let envelope = Envelope::parse(&record.envelope_bytes).map_err(|e| format!("record {seq}: {e}"))?;
            let payload = parse_payload(&envelope.payload).map_err(|e| format!("record {seq}: {e}"))?;
            self.known.insert(seq, payload.office.0);
        }
        Ok(&self.known[&seq])
    }
}

/// The offices a flag concerns: the subject's office (an account's office, a
/// household's village — also for the households of a shared card or
/// duplicated person — or a project's office) and the acting office of each
/// evidence event. May repeat an office.
pub fn flag_offices(state: &State, events: &mut EventOffices<'_>, flag: &Flag) -> Result<Vec<String>, String> {
    let mut offices: Vec<String> = flag
        .households
        .iter()
        .filter_map(|h| state.households.get(h.as_str()))
        .map(|h| h.village.to_string())
        .collect();
    match flag.subject.kind {
        SubjectKind::Account => offices.extend(flag.subject.id.split_once('/').map(|(o, _)| o.to_string())),
        SubjectKind::Project | SubjectKind::Office => {
            let project = state.projects.get(&flag.subject.id).map(|p| p.office.clone());
            offices.extend(project.or_else(|| Some(flag.subject.id.clone())))
        }
        _ => {}
    }
    for seq in &flag.evidence {
        offices.push(events.office(*seq)?.to_string());
    }
    Ok(offices)
}

/// A digest subject shortened for people; other subjects as they are.
pub fn shown_subject(flag: &Flag) -> String {
    match flag.subject.kind {
        SubjectKind::Card | SubjectKind::Person => {
            format!("{} {}…", flag.subject.kind.name(), &flag.subject.id[..DIGEST_SHOWN_CHARS])
        }
        kind => format!("{} {}", kind.name(), flag.subject.id),
    }
}

fn print_flags(flags: &[Flag], clock: Option<Date>) {
    let as_of = clock.map_or_else(|| "an empty ledger".to_string(), |d| d.to_string());
    println!("{} flags (疑点) as of {as_of}", flags.len());
    for flag in flags {
        let evidence: Vec<String> = flag.evidence.iter().map(u64::to_string).collect();
        println!();
        println!(
            "[{}] {} {}  {}  {} yuan  evidence {}  id {}",
            snake_name(&flag.severity),
            flag.rule.chinese(),
            flag.rule.name(),
            shown_subject(flag),
            yuan(flag.amount_fen),
            evidence.join(","),
            flag.flag_id
        );
        println!("    {}", flag.message);
        if let Some(review) = flag.review {
            let note = flag.review_note.as_deref().unwrap_or("");
            println!("    review: {} — {note}", snake_name(&review));
        }
    }
}

/// Age in days of a lot as of the ledger clock.
pub fn age_days(at: Date, clock: Option<Date>) -> i64 {
    clock.map_or(0, |now| at.days_until(now))
}

/// Age of the oldest lot still held (None: nothing held).
pub fn oldest_age_days(account: &Account, clock: Option<Date>) -> Option<i64> {
    account.lots.iter().map(|lot| age_days(lot.at, clock)).max()
}

fn flows_json(account: &Account) -> Value {
    let f = &account.flows;
    json!({
        "appropriated_fen": f.appropriated_fen,
        "transferred_in_fen": f.transferred_in_fen,
        "reallocated_in_fen": f.reallocated_in_fen,
        "refunds_in_fen": f.refunds_in_fen,
        "received_fen": f.received_fen(),
        "transferred_out_fen": f.transferred_out_fen,
        "reallocated_out_fen": f.reallocated_out_fen,
        "passed_on_fen": f.passed_on_fen(),
        "paid_out_fen": f.paid_out_fen,
        "spent_fen": f.spent_fen,
        "held_fen": account.balance_fen(),
    })
}

/// A fund account for machines: balance, lots with their ages as of the
/// ledger clock, and flows (fen). None if the account was never credited.
pub fn account_view(projections: &Projections, state: &State, account: &str) -> Option<Value> {
    let found = projections.accounts.get(account)?;
    let clock = state.clock;
    let lots: Vec<Value> = found
        .lots
        .iter()
        .map(|lot| json!({"seq": lot.seq, "at": lot.at, "amount_fen": lot.amount_fen, "age_days": age_days(lot.at, clock)}))
        .collect();
    Some(json!({
        "account": account,
        "as_of": clock,
        "balance_fen": found.balance_fen(),
        "oldest_lot_age_days": oldest_age_days(found, clock),
        "lots": lots,
        "flows": flows_json(found),
    }))
}

/// `sunledger account OFFICE/PROGRAM`.
pub fn account(ledger: &Ledger, account: &str, json: bool) -> CommandResult {
    let Some(found) = ledger.projections().accounts.get(account) else {
        eprintln!("unknown account {account:?} (accounts are OFFICE/PROGRAM and exist once credited)");
        return Ok(EXIT_NOT_FOUND_OR_MISMATCH);
    };
    let clock = ledger.state().clock;
    if json {
        print_json(&account_view(ledger.projections(), ledger.state(), account).expect("the account exists"));
        return Ok(EXIT_OK);
    }
    let as_of = clock.map_or_else(String::new, |d| d.to_string());
    println!("fund account (资金账户) {account}: balance {} yuan as of {as_of}", yuan(found.balance_fen()));
    println!();
    println!("lots (资金批次), oldest first:");
    println!("{:>10} {:>12} {:>20} {:>10}", "seq", "date", "amount (yuan)", "age (days)");
    for lot in &found.lots {
        println!(
            "{:>10} {:>12} {:>20} {:>10}",
            lot.seq,
            lot.at.to_string(),
            yuan(lot.amount_fen),
            age_days(lot.at, clock)
        );
    }
    let f = &found.flows;
    println!();
    println!("flows (资金流向):");
    for (label, fen) in [
        ("appropriated (下达)", f.appropriated_fen),
        ("transferred in (转入)", f.transferred_in_fen),
        ("reallocated in (整合转入)", f.reallocated_in_fen),
        ("refunds (退回)", f.refunds_in_fen),
        ("received in all (收入合计)", f.received_fen()),
        ("transferred out (转出)", f.transferred_out_fen),
        ("reallocated out (整合转出)", f.reallocated_out_fen),
        ("passed on in all (拨付合计)", f.passed_on_fen()),
        ("paid out (发放)", f.paid_out_fen),
        ("spent (支出)", f.spent_fen),
        ("held (结存)", found.balance_fen()),
    ] {
        println!("  {:>20}  {label}", yuan(fen));
    }
    Ok(EXIT_OK)
}

/// Payouts of a household net of refunds, by program and period.
fn payouts_by_program_period(household: &Household) -> BTreeMap<(String, String), u64> {
    let mut totals = BTreeMap::new();
    for payout in &household.payouts {
        *totals.entry((payout.program.to_string(), payout.period.to_string())).or_insert(0) += payout.net_fen();
    }
    totals
}

fn household_json(id: &str, household: &Household, deaths: &BTreeMap<Sym, Date>, flags: &[Flag]) -> Value {
    let members: Vec<Value> = household
        .members
        .iter()
        .map(|(digest, m)| {
            json!({"name_masked": m.name_masked, "person_digest": digest, "added_seq": m.added_seq, "deceased_on": deaths.get(digest.as_str())})
        })
        .collect();
    let payouts: Vec<Value> = household
        .payouts
        .iter()
        .map(|p| {
            json!({"seq": p.seq, "id": p.id, "at": p.at, "office": p.office, "program": p.program, "period": p.period,
                   "amount_fen": p.amount_fen, "refunded_fen": p.refunded_fen, "net_fen": p.net_fen()})
        })
        .collect();
    let totals: Vec<Value> = payouts_by_program_period(household)
        .into_iter()
        .map(|((program, period), net)| json!({"program": program, "period": period, "net_fen": net}))
        .collect();
    json!({
        "household_id": id,
        "village": household.village,
        "head_name_masked": household.head_name_masked,
        "registered_seq": household.registered_seq,
        "registered_at": household.registered_at,
        "status": household.current_status(),
        "statuses": household.statuses,
        "members": members,
        "card": {"card_masked": household.card.card_masked, "bank": household.card.bank,
                 "card_digest": household.card.card_digest, "bound_seq": household.card.seq},
        "payouts": payouts,
        "payouts_by_program_period": totals,
        "flags": flags,
    })
}

/// A household for bureaus and auditors: status timeline, masked members
/// with their keyed digests, card, payouts and those of `all` (the evaluated
/// flags; the server caches them per ledger size, `server::flags`) that
/// name it. None if no such household. Never holds a raw ID or card number
/// (the chain has none).
pub fn household_view(projections: &Projections, household_id: &str, all: &[Flag]) -> Option<Value> {
    let household = projections.households.get(household_id)?;
    Some(household_json(household_id, household, &projections.deaths, &flags_naming(all, household_id)))
}

/// The flags that name `household_id`, in their order.
fn flags_naming(all: &[Flag], household_id: &str) -> Vec<Flag> {
    all.iter().filter(|flag| flag.households.iter().any(|h| h == household_id)).cloned().collect()
}

/// `sunledger household ID`.
pub fn household(ledger: &Ledger, household_id: &str, json: bool, policy: Option<&Path>) -> CommandResult {
    let policy = load_policy(policy)?;
    let projections = ledger.projections();
    let Some(household) = projections.households.get(household_id) else {
        eprintln!("unknown household {household_id:?}");
        return Ok(EXIT_NOT_FOUND_OR_MISMATCH);
    };
    let flags = flags_naming(&evaluate(projections, ledger.state(), &policy), household_id);
    if json {
        print_json(&household_json(household_id, household, &projections.deaths, &flags));
        return Ok(EXIT_OK);
    }
    print_household(household_id, household, &projections.deaths, &flags);
    Ok(EXIT_OK)
}

fn print_household(id: &str, household: &Household, deaths: &BTreeMap<Sym, Date>, flags: &[Flag]) {
    println!("household (农户) {id}, village {}, head {}", household.village, household.head_name_masked);
    println!(
        "registered {} (seq {}), status now: {}",
        household.registered_at,
        household.registered_seq,
        snake_name(&household.current_status())
    );
    for change in &household.statuses {
        let reason = change.reason.as_deref().map_or(String::new(), |r| format!(" ({r})"));
        println!("  {} {}{reason} (seq {})", change.at, snake_name(&change.status), change.seq);
    }
    println!("members (家庭成员):");
    for (digest, member) in &household.members {
        let death = deaths.get(digest).map_or(String::new(), |d| format!(", deceased {d}"));
        println!("  {}{death}", member.name_masked);
    }
    println!(
        "card (一卡通): {} {} (since seq {})",
        household.card.card_masked, household.card.bank, household.card.seq
    );
    println!("payouts (发放):");
    println!(
        "{:>8} {:>12} {:<12} {:<8} {:>14} {:>14} {:>14}",
        "seq", "date", "program", "period", "amount", "refunded", "net"
    );
    for p in &household.payouts {
        println!(
            "{:>8} {:>12} {:<12} {:<8} {:>14} {:>14} {:>14}",
            p.seq,
            p.at.to_string(),
            p.program,
            p.period.to_string(),
            yuan(p.amount_fen),
            yuan(p.refunded_fen),
            yuan(p.net_fen())
        );
    }
    println!("by program and period, net of refunds:");
    for ((program, period), net) in payouts_by_program_period(household) {
        println!("  {program:<12} {period:<8} {:>14}", yuan(net));
    }
    println!("flags (疑点): {}", flags.len());
    for flag in flags {
        println!("  [{}] {} ({})", snake_name(&flag.severity), flag.message, flag.flag_id);
    }
}

/// One fund account in the fund-flow summary (资金流向).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SummaryRow {
    pub office: String,
    pub level: Level,
    pub program: String,
    pub received_fen: u64,
    pub passed_on_fen: u64,
    pub paid_out_fen: u64,
    pub spent_fen: u64,
    pub refunded_fen: u64,
    pub held_fen: u64,
    /// Age of the oldest lot still held, as of the ledger clock (None: nothing held).
    pub oldest_lot_age_days: Option<i64>,
}

/// The fund accounts of `office` and the offices below it (all if None),
/// by level, office and program. Unknown office: an error.
pub fn summary_rows(state: &State, projections: &Projections, office: Option<&str>) -> Result<Vec<SummaryRow>, String> {
    if let Some(office) = office {
        known_office(state, office)?;
    }
    let mut rows = Vec::new();
    for (key, account) in &projections.accounts {
        let (account_office, program) = key.split_once('/').expect("account ids are office/program");
        if office.is_some_and(|o| !is_within(state, account_office, o)) {
            continue;
        }
        let level = state.offices.get(account_office).map(|o| o.level).ok_or("account of an unknown office")?;
        rows.push(summary_row(account_office, level, program, account, state.clock));
    }
    rows.sort_by(|a, b| (a.level, &a.office, &a.program).cmp(&(b.level, &b.office, &b.program)));
    Ok(rows)
}

/// The summary row of one account.
pub fn summary_row(office: &str, level: Level, program: &str, account: &Account, clock: Option<Date>) -> SummaryRow {
    let f = &account.flows;
    SummaryRow {
        office: office.to_string(),
        level,
        program: program.to_string(),
        received_fen: f.received_fen(),
        passed_on_fen: f.passed_on_fen(),
        paid_out_fen: f.paid_out_fen,
        spent_fen: f.spent_fen,
        refunded_fen: f.refunds_in_fen,
        held_fen: account.balance_fen(),
        oldest_lot_age_days: oldest_age_days(account, clock),
    }
}

/// `sunledger summary`.
pub fn summary(ledger: &Ledger, office: Option<&str>, json: bool) -> CommandResult {
    let state = ledger.state();
    let rows = summary_rows(state, ledger.projections(), office)?;
    if json {
        print_json(&rows);
        return Ok(EXIT_OK);
    }
    let as_of = state.clock.map_or_else(String::new, |d| d.to_string());
    println!("fund flow per level (资金流向), yuan, as of {as_of}");
    let mut current_level = None;
    for row in rows {
        if current_level != Some(row.level) {
            current_level = Some(row.level);
            println!();
            println!("{}:", snake_name(&row.level));
            println!(
                "  {:<24} {:>16} {:>16} {:>16} {:>16} {:>16} {:>10}",
                "account", "received", "passed on", "paid", "spent", "held", "oldest"
            );
        }
        let oldest = row.oldest_lot_age_days.map_or("-".to_string(), |d| format!("{d}d"));
        println!(
            "  {:<24} {:>16} {:>16} {:>16} {:>16} {:>16} {:>10}",
            format!("{}/{}", row.office, row.program),
            yuan(row.received_fen),
            yuan(row.passed_on_fen),
            yuan(row.paid_out_fen),
            yuan(row.spent_fen),
            yuan(row.held_fen),
            oldest
        );
    }
    Ok(EXIT_OK)
}

/// Replays every stored record through a fresh `State` and `Projections`.
pub fn replay_store(store: &dyn crate::store::Store) -> Result<Replay, String> {
    let mut replay = Replay::default();
    for record in store.records_from(0) {
        let record = record.map_err(|e| e.to_string())?;
        if record.seq != replay.state.size {
            return Err(format!("stored record {} out of order (expected {})", record.seq, replay.state.size));
        }
        let envelope = Envelope::parse(&record.envelope_bytes).map_err(|e| format!("record {}: {e}", record.seq))?;
        let payload = parse_payload(&envelope.payload).map_err(|e| format!("record {}: {e}", record.seq))?;
        replay.push(record.seq, &payload, crate::encoding::sha256(&envelope.payload));
    }
    Ok(replay)
}

/// The top-level parts of two projections that differ.
fn differing_parts(stored: &Projections, rebuilt: &Projections) -> Vec<String> {
    let stored = serde_json::to_value(stored).expect("projections serialise");
    let rebuilt = serde_json::to_value(rebuilt).expect("projections serialise");
    let keys: BTreeSet<&String> =
        stored.as_object().into_iter().chain(rebuilt.as_object()).flat_map(|o| o.keys()).collect();
    keys.into_iter().filter(|k| stored.get(k.as_str()) != rebuilt.get(k.as_str())).cloned().collect()
}

/// `sunledger rebuild`: recompute every projection from the chain and
/// compare with the stored one.
pub fn rebuild(ledger: &Ledger) -> CommandResult {
    let replay = replay_store(ledger.store())?;
    let projections_match = replay.projections == *ledger.projections();
    let state_match = replay.state == *ledger.state();
    if projections_match && state_match {
        println!("match: {} events replayed; projections and state equal the stored ones", replay.state.size);
        return Ok(EXIT_OK);
    }
    let mut parts = differing_parts(ledger.projections(), &replay.projections);
    if !state_match {
        parts.push("validator state".to_string());
    }
    println!("mismatch: {} events replayed; differing: {}", replay.state.size, parts.join(", "));
    Ok(EXIT_NOT_FOUND_OR_MISMATCH)
}
