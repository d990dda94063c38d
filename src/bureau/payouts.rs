//! `sunledger payouts import`: a bank payout roster (发放清册, exported from
//! the 一卡通 system) → signed `payout` events with deterministic ids.
//!
//! Owns: the row checks, the preview, and payload bytes that are the same
//! for the same roster and flags — with the id
//! `po-<office>-<program>-<period>-<household>` (hashed when longer than an
//! id may be), a second import of the same roster is an idempotent repeat,
//! and a changed one is refused as a duplicate id: nothing is paid twice.
//! Never: lets a raw ID or card number or a full name out of the process.

use super::amount::{parse_yuan, yuan};
use super::identity::{check_card, check_id, mask_name};
use super::ledger_view::LedgerView;
use super::pepper::Pepper;
use super::roster::{self, Field, Roster, Row, RowError};
use super::{LuhnArgs, Signed, SinkArgs, EXIT_OK, EXIT_REJECTED};
use crate::date::Period;
use crate::ledger::Ledger;
use crate::payload::{HouseholdStatus, Role};
use crate::validate::DUAL_CONTROL_FEN;
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;

/// Keys per payout: one, or two for dual control.
pub const KEYS_MAX: usize = 2;

pub const COLUMNS_HELP: &str = "\
Roster columns (a header row within the first 10 rows; headers in Chinese or English, \
brackets ignored, e.g. 金额（元）):
  户编号 | 户号 | household_id                      the household (or give the ID number instead)
  身份证号 | 证件号码 | 户主身份证号 | id_number     the paid person's ID number; becomes person_digest; \
with --data it finds the household when 户编号 is absent
  银行卡号 | 卡号 | 一卡通账号 | 账号 | card_number    the card the bank credited (required)
  金额 | 发放金额 | 实发金额 | amount                  yuan: 300, 300.00, ¥1,200.50, full-width digits; \
at most two decimals (required)
  姓名 | 户主姓名 | 收款人 | name                       optional, shown masked in the preview only
  开户行 | bank                                       optional, for --no-luhn-bank
A 合计/总计 row is checked against the sum of the rows. With --data DIR each row is checked \
against the ledger: household registered and not removed, card equal to the bound card, \
the paid person a member, amount against the program standard, funds, and the event not \
already recorded with other data.";

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The pepper file (the registrar's, so digests match the households').
    #[arg(long)]
    pub pepper: PathBuf,
    /// Finance key file(s) of the office; give two for dual control (双人复核).
    #[arg(long = "key", required = true)]
    pub keys: Vec<PathBuf>,
    /// The ledger id (from its genesis).
    #[arg(long)]
    pub ledger: String,
    /// The paying finance office (e.g. 422822).
    #[arg(long)]
    pub office: String,
    /// The program id (e.g. dibao).
    #[arg(long)]
    pub program: String,
    /// The period paid: YYYY, YYYY-Qn or YYYY-MM.
    #[arg(long)]
    pub period: String,
    /// Business date of the payouts (YYYY-MM-DD).
    #[arg(long)]
    pub at: String,
    /// Sign rows whose card is not the household's bound card, or whose household
    /// was removed or has the paid person dead, instead of refusing them: the bank
    /// paid, so the ledger records it and its rules flag it.
    #[arg(long)]
    pub record_suspicious: bool,
    #[command(flatten)]
    pub luhn: LuhnArgs,
    #[command(flatten)]
    pub sink: SinkArgs,
    /// The roster: CSV (UTF-8 or GBK) or .xlsx.
    pub roster: PathBuf,
}

/// One checked row.
struct PayoutRow {
    row: usize,
    household: String,
    amount_fen: u64,
    card_digest: String,
    card_masked: String,
    person_digest: Option<String>,
    name_masked: Option<String>,
}

/// What the checks can see of the ledger.
struct Context<'a> {
    ledger: Option<&'a Ledger>,
    view: Option<LedgerView>,
}

/// Collects a row's errors and warnings.
struct Findings<'r> {
    roster: &'r Roster,
    errors: Vec<RowError>,
    warnings: Vec<RowError>,
    record_suspicious: bool,
}

impl Findings<'_> {
    fn error(&mut self, row: &Row, field: Field, message: impl std::fmt::Display) {
        self.errors.push(self.roster.error(row, field, message));
    }

    /// Suspicious but possibly real: an error unless --record-suspicious.
    fn suspicious(&mut self, row: &Row, field: Field, message: impl std::fmt::Display) {
        if self.record_suspicious {
            let message = format!("{message} (recorded; the ledger will flag it)");
            self.warnings.push(self.roster.error(row, field, message));
        } else {
            let message = format!("{message} (or pass --record-suspicious if the bank did pay it)");
            self.errors.push(self.roster.error(row, field, message));
        }
    }
}

fn read_row(
    row: &Row,
    args: &ImportArgs,
    pepper: &Pepper,
    context: &Context<'_>,
    findings: &mut Findings<'_>,
) -> Option<PayoutRow> {
    let roster = findings.roster;
    let before = findings.errors.len();
    let household = match roster.text(row, Field::Household) {
        Ok(Some(id)) if super::identity::contains_id_number(&id) => {
            findings.error(row, Field::Household, super::NOT_AN_ID_NUMBER);
            None
        }
        Ok(Some(id)) if super::is_id(&id) => Some(id),
        Ok(Some(_)) => {
            findings.error(row, Field::Household, "not a household id [A-Za-z0-9._:-]{1,64}");
            None
        }
        Ok(None) => None,
        Err(e) => {
            findings.errors.push(e);
            None
        }
    };
    let person_digest = match roster.identifier(row, Field::IdNumber) {
        Ok(Some(raw)) => match check_id(&raw) {
            Ok(id) => Some(id.digest(pepper)),
            Err(e) => {
                findings.error(row, Field::IdNumber, e);
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            findings.errors.push(e);
            None
        }
    };
    let bank = roster.text(row, Field::Bank).ok().flatten();
    let card = match roster.identifier(row, Field::Card) {
        Ok(Some(raw)) => {
            check_card(&raw, args.luhn.applies(bank.as_deref())).map_err(|e| findings.error(row, Field::Card, e)).ok()
        }
        Ok(None) => {
            findings.error(row, Field::Card, "no card number");
            None
        }
        Err(e) => {
            findings.errors.push(e);
            None
        }
    };
    let amount_fen = match roster.amount_text(row).map(parse_yuan) {
        Some(Ok(fen)) => Some(fen),
        Some(Err(e)) => {
            findings.error(row, Field::Amount, e);
            None
        }
        None => {
            findings.error(row, Field::Amount, "no amount");
            None
        }
    };
    let name_masked = roster.text(row, Field::Name).ok().flatten().and_then(|n| mask_name(&n).ok());
    let household = resolve_household(row, household, person_digest.as_deref(), context, findings);
    if findings.errors.len() > before {
        return None;
    }
    let (household, card, amount_fen) = (household?, card?, amount_fen?);
    Some(PayoutRow {
        row: row.number,
        household,
        amount_fen,
        card_digest: card.digest(pepper),
        card_masked: card.masked(),
        person_digest,
        name_masked,
    })
}

/// The household a row pays: its 户编号, or the ledger household that has
/// the row's ID number as a member.
fn resolve_household(
    row: &Row,
    household: Option<String>,
    person_digest: Option<&str>,
    context: &Context<'_>,
    findings: &mut Findings<'_>,
) -> Option<String> {
    match (household, person_digest, &context.view) {
        (Some(household), _, _) => Some(household),
        (None, Some(digest), Some(view)) => match view.households_of(digest).as_slice() {
            [one] => Some(one.to_string()),
            [] => {
                findings.error(row, Field::IdNumber, "no household in the ledger has this person as a member");
                None
            }
            [first, second, ..] => {
                let message = format!("this person is a member of several households ({first}, {second})");
                findings.error(row, Field::IdNumber, message);
                None
            }
        },
        (None, Some(_), None) => {
            findings.error(row, Field::Household, "no household id: finding it from the ID number needs --data DIR");
            None
        }
        (None, None, _) => {
            findings.error(row, Field::Household, "no household id and no ID number");
            None
        }
    }
}

/// Checks a good row against the ledger (when there is one) and the flags.
fn check_row(
    payout: &PayoutRow,
    row: &Row,
    keys: usize,
    context: &Context<'_>,
    findings: &mut Findings<'_>,
    standard_fen: Option<u64>,
) {
    if payout.amount_fen >= DUAL_CONTROL_FEN && keys < 2 {
        let message = format!("{} yuan needs dual control: give two --key files", yuan(payout.amount_fen));
        findings.error(row, Field::Amount, message);
    }
    if let Some(standard) = standard_fen.filter(|s| payout.amount_fen > *s) {
        let message =
            format!("above the program standard of {} yuan (the ledger will flag over_standard)", yuan(standard));
        findings.warnings.push(findings.roster.error(row, Field::Amount, message));
    }
    let Some(ledger) = context.ledger else { return };
    if !ledger.state().households.contains_key(payout.household.as_str()) {
        findings.error(
            row,
            Field::Household,
            format!("household {} is not registered in the ledger", payout.household),
        );
        return;
    }
    let Some(facts) = context.view.as_ref().and_then(|v| v.households.get(&payout.household)) else { return };
    match facts.status {
        HouseholdStatus::Enrolled => {}
        HouseholdStatus::Exited => findings.warnings.push(findings.roster.error(
            row,
            Field::Household,
            format!("household {} has exited (脱贫): paid in the transition period?", payout.household),
        )),
        HouseholdStatus::Removed => {
            findings.suspicious(row, Field::Household, format!("household {} was removed (清退)", payout.household))
        }
    }
    if facts.card_digest != payout.card_digest {
        findings.suspicious(row, Field::Card, format!("not the card bound to household {}", payout.household));
    }
    if let Some(person) = &payout.person_digest {
        if !facts.members.contains(person) {
            findings.error(
                row,
                Field::IdNumber,
                format!("this person is not a member of household {}", payout.household),
            );
        } else if facts.deceased.contains(person) {
            findings.suspicious(row, Field::IdNumber, "this person is recorded as deceased");
        }
    }
}

/// The payload bytes of one payout: compact JSON, keys sorted.
fn payload(payout: &PayoutRow, args: &ImportArgs, event_id: &str) -> Vec<u8> {
    let mut body = serde_json::json!({
        "household_id": payout.household,
        "program": args.program,
        "amount_fen": payout.amount_fen,
        "period": args.period,
        "card_digest": payout.card_digest,
    });
    if let Some(person) = &payout.person_digest {
        body["person_digest"] = serde_json::Value::String(person.clone());
    }
    serde_json::json!({
        "v": 1, "ledger": args.ledger, "id": event_id, "kind": "payout", "office": args.office, "at": args.at, "body": body,
    })
    .to_string()
    .into_bytes()
}

fn open_context(args: &ImportArgs, keys: &[(String, ed25519_dalek::SigningKey)]) -> Result<Option<Ledger>, String> {
    let Some(data) = &args.sink.data else { return Ok(None) };
    let ledger = super::open_ledger(data)?;
    super::check_keys_in_ledger(&ledger, &args.ledger, &args.office, keys, Role::Finance)?;
    if !ledger.state().programs.contains_key(&args.program) {
        return Err(format!("program {} is not defined in the ledger", args.program));
    }
    Ok(Some(ledger))
}

/// Rows in roster order, with duplicates and shared cards found.
fn read_rows(
    roster: &Roster,
    args: &ImportArgs,
    pepper: &Pepper,
    keys: usize,
    context: &Context<'_>,
    findings: &mut Findings<'_>,
) -> Vec<PayoutRow> {
    let standard_fen = context.ledger.and_then(|l| l.state().programs.get(&args.program)).and_then(|p| p.standard_fen);
    let mut payouts: Vec<PayoutRow> = Vec::new();
    let mut households: HashMap<String, usize> = HashMap::new();
    let mut cards: HashMap<String, (usize, String)> = HashMap::new();
    for row in &roster.rows {
        let Some(payout) = read_row(row, args, pepper, context, findings) else { continue };
        if let Some(first) = households.get(&payout.household) {
            let message = format!("household {} is already paid at row {first} (a duplicate row?)", payout.household);
            findings.error(row, Field::Household, message);
            continue;
        }
        if let Some((first, other)) = cards.get(&payout.card_digest).filter(|(_, h)| *h != payout.household) {
            let message = format!("the same card as row {first} (household {other}): one card for two households");
            findings.warnings.push(roster.error(row, Field::Card, message));
        }
        let before = findings.errors.len();
        check_row(&payout, row, keys, context, findings, standard_fen);
        if findings.errors.len() > before {
            continue;
        }
        households.insert(payout.household.clone(), row.number);
        cards.entry(payout.card_digest.clone()).or_insert((row.number, payout.household.clone()));
        payouts.push(payout);
    }
    payouts
}

/// A 合计 row must equal the sum of the rows (a missing or misread row shows).
fn check_total(roster: &Roster, all_rows_fen: Option<u64>, findings: &mut Findings<'_>) {
    for row in &roster.total_rows {
        let Some(Ok(total)) = roster.amount_text(row).map(parse_yuan) else { continue };
        match all_rows_fen {
            Some(sum) if sum != total => findings.error(
                row,
                Field::Amount,
                format!("the total row says {} yuan but the rows add up to {} yuan", yuan(total), yuan(sum)),
            ),
            _ => {}
        }
    }
}

/// Each payout's event id, payload and whether the ledger holds it already.
struct Prepared {
    payout: PayoutRow,
    event_id: String,
    payload: Vec<u8>,
    present: bool,
}

fn prepare(
    payouts: Vec<PayoutRow>,
    args: &ImportArgs,
    ledger: Option<&Ledger>,
    findings: &mut Findings<'_>,
) -> Result<Vec<Prepared>, String> {
    let mut prepared = Vec::with_capacity(payouts.len());
    for payout in payouts {
        let event_id = super::event_id("po", &[&args.office, &args.program, &args.period, &payout.household]);
        let payload = payload(&payout, args, &event_id);
        // Pair check: what is signed passes the ledger's own schema first.
        if let Err(rejection) = crate::payload::parse_payload(&payload) {
            let message = format!("the payout payload is not valid: {}", rejection.message);
            findings.errors.push(RowError { row: payout.row, column: String::new(), message });
            continue;
        }
        let existing = match ledger {
            Some(ledger) => ledger.store().event(&event_id).map_err(|e| e.to_string())?,
            None => None,
        };
        let present = match existing {
            Some(event) if event.payload_digest == crate::encoding::sha256(&payload) => true,
            Some(event) => {
                let message = format!(
                    "household {} was already paid for {} {} (event {event_id}, seq {}) with other data",
                    payout.household, args.program, args.period, event.seq
                );
                findings.errors.push(RowError { row: payout.row, column: String::new(), message });
                continue;
            }
            None => false,
        };
        prepared.push(Prepared { payout, event_id, payload, present });
    }
    Ok(prepared)
}

fn preview(args: &ImportArgs, roster: &Roster, prepared: &[Prepared], ledger: Option<&Ledger>) {
    let total_fen: u64 = prepared.iter().map(|p| p.payout.amount_fen).sum();
    let present = prepared.iter().filter(|p| p.present).count();
    let dual = prepared.iter().filter(|p| p.payout.amount_fen >= DUAL_CONTROL_FEN).count();
    eprintln!(
        "payout roster {} ({}): program {}, period {}, office {}, at {}",
        args.roster.display(),
        roster.format,
        args.program,
        args.period,
        args.office,
        args.at
    );
    eprintln!(
        "  {} rows read, {} payouts ready, total {} yuan ({total_fen} fen); {present} already in the ledger; {dual} need two signatures",
        roster.rows.len(),
        prepared.len(),
        yuan(total_fen)
    );
    if args.sink.dry_run {
        for p in prepared {
            eprintln!(
                "  row {}: household {}, {}, card {}, {} yuan{}",
                p.payout.row,
                p.payout.household,
                p.payout.name_masked.as_deref().unwrap_or("-"),
                p.payout.card_masked,
                yuan(p.payout.amount_fen),
                if p.present { " (already in the ledger)" } else { "" }
            );
        }
    }
    if ledger.is_none() {
        eprintln!(
            "note: not checked against a ledger (no --data): household registered and status, bound card, \
             membership, program standard, funds, earlier payouts"
        );
    }
}

/// Funds: the office's account must hold what the new payouts need, or the
/// import would stop part way.
fn check_funds(args: &ImportArgs, ledger: &Ledger, prepared: &[Prepared]) -> Option<String> {
    let needed: u64 = prepared.iter().filter(|p| !p.present).map(|p| p.payout.amount_fen).sum();
    let account = crate::state::account_id(&args.office, &args.program);
    let balance = ledger.state().balance(&account);
    (needed > balance)
        .then(|| format!("{account} holds {} yuan; the new payouts need {} yuan", yuan(balance), yuan(needed)))
}

/// `sunledger payouts import`.
pub fn import(args: &ImportArgs) -> Result<i32, String> {
    super::check_sink(&args.sink)?;
    super::parse_common(&args.ledger, &args.office, &args.at)?;
    if !super::is_id(&args.program) {
        return Err(format!("--program {:?} is not an id", args.program));
    }
    Period::parse(&args.period).ok_or_else(|| format!("--period {:?} is not YYYY, YYYY-Qn or YYYY-MM", args.period))?;
    if args.keys.len() > KEYS_MAX {
        return Err(format!("at most {KEYS_MAX} --key files (two for dual control)"));
    }
    let pepper = Pepper::read(&args.pepper)?;
    let keys = super::signing_keys(&args.keys)?;
    let roster = roster::read(&args.roster, &[Field::Card, Field::Amount])?;
    if !roster.has(Field::Household) && !roster.has(Field::IdNumber) {
        return Err("the roster needs a household column (户编号) or an ID number column (身份证号)".into());
    }
    let mut ledger = open_context(args, &keys)?;
    let view = ledger.as_ref().map(LedgerView::scan).transpose()?;
    let context = Context { ledger: ledger.as_ref(), view };
    let mut findings = Findings {
        roster: &roster,
        errors: Vec::new(),
        warnings: Vec::new(),
        record_suspicious: args.record_suspicious,
    };
    let payouts = read_rows(&roster, args, &pepper, keys.len(), &context, &mut findings);
    let all_rows_fen: Option<u64> = roster.rows.iter().try_fold(0u64, |sum, r| {
        roster.amount_text(r).and_then(|t| parse_yuan(t).ok()).and_then(|f| sum.checked_add(f))
    });
    check_total(&roster, all_rows_fen, &mut findings);
    let prepared = prepare(payouts, args, context.ledger, &mut findings)?;
    preview(args, &roster, &prepared, context.ledger);
    let funds_problem = context.ledger.and_then(|l| check_funds(args, l, &prepared));
    findings.errors.sort_by_key(|e| e.row);
    let error_count = super::report_problems(&findings.errors, &findings.warnings);
    if let Some(problem) = &funds_problem {
        eprintln!("error: {problem}");
    }
    if funds_problem.is_some() || (error_count > 0 && !args.sink.skip_bad_rows) {
        eprintln!(
            "nothing was imported: {} errors (fix the roster, or pass --skip-bad-rows)",
            error_count + usize::from(funds_problem.is_some())
        );
        return Ok(EXIT_REJECTED);
    }
    if args.sink.dry_run {
        return Ok(EXIT_OK);
    }
    drop(context);
    let events: Vec<Signed> = prepared
        .into_iter()
        .map(|p| {
            // Dual control: at or above the threshold both keys sign; below, the first.
            let signers = if p.payout.amount_fen >= DUAL_CONTROL_FEN { &keys[..] } else { &keys[..1] };
            Signed { row: p.payout.row, envelope_json: super::sign(p.payload, signers), event_id: p.event_id }
        })
        .collect();
    super::deliver(&args.sink, ledger.as_mut(), &events, "payout")
}
