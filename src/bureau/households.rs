//! `sunledger households import`: a household roster (建档立卡花名册, one row
//! per person) → one signed `household_register` event per household.
//!
//! Owns: grouping persons into households, finding the head, and the
//! payload bytes (deterministic: the same roster and flags give the same
//! bytes, so a second import is an idempotent repeat). Never: lets a raw ID
//! or card number or a full name out of the process.

use super::identity::{check_card, check_id, mask_name};
use super::pepper::Pepper;
use super::roster::{self, Field, Roster, Row, RowError};
use super::{LuhnArgs, Signed, SinkArgs, EXIT_OK, EXIT_REJECTED};
use crate::ledger::Ledger;
use crate::payload::{Role, MEMBERS_PER_HOUSEHOLD_MAX};
use clap::Args;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Values of 与户主关系 that mark the head of the household.
pub const HEAD_RELATIONS: &[&str] = &["户主", "本人", "户主本人", "head", "self"];

pub const COLUMNS_HELP: &str = "\
Roster columns (a header row within the first 10 rows; headers in Chinese or English, \
brackets ignored, e.g. 金额（元）):
  户编号 | 户号 | 家庭编号 | household_id      household id, [A-Za-z0-9._:-]{1,64} (required)
  姓名 | 成员姓名 | name                       the person's name; only its mask enters the chain (required)
  身份证号 | 身份证号码 | 证件号码 | id_number   18-character ID number, GB 11643 check digit (required)
  与户主关系 | 关系 | relation                  户主/本人/head marks the head; without this column the household's first row is the head
  银行卡号 | 卡号 | 一卡通账号 | card_number     the household's 一卡通 card, on the head's row or any member's (required)
  开户行 | 开户银行 | 银行 | bank                 the card's bank (or --bank)
  村 | 行政村 | 村编号 | village                  the village office id (or --village)
One row per person; rows with the same household id form one household. ID and card \
numbers stored as numbers in Excel are refused (Excel keeps only 15 digits): format them \
as text. A 合计/总计 row and empty rows are ignored.";

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The pepper file (see `sunledger pepper new`).
    #[arg(long)]
    pub pepper: PathBuf,
    /// The registrar's key file (plain or passphrase-protected).
    #[arg(long)]
    pub key: PathBuf,
    /// The ledger id (from its genesis).
    #[arg(long)]
    pub ledger: String,
    /// The registrar office (e.g. the county poverty alleviation office 422822-fpb).
    #[arg(long)]
    pub office: String,
    /// Business date of the registrations (YYYY-MM-DD).
    #[arg(long)]
    pub at: String,
    /// The village office id, for rows without a village column.
    #[arg(long)]
    pub village: Option<String>,
    /// The card's bank, for rows without a bank column.
    #[arg(long)]
    pub bank: Option<String>,
    #[command(flatten)]
    pub luhn: LuhnArgs,
    #[command(flatten)]
    pub sink: SinkArgs,
    /// The roster: CSV (UTF-8 or GBK) or .xlsx.
    pub roster: PathBuf,
}

/// One person's row, checked.
struct Person {
    row: usize,
    household: String,
    name_masked: String,
    person_digest: String,
    head: bool,
    card: Option<(String, String)>,
    bank: Option<String>,
    village: Option<String>,
}

/// One household, ready to become a payload.
struct Household {
    id: String,
    first_row: usize,
    village: String,
    head_name_masked: String,
    members: Vec<(String, String)>,
    card_digest: String,
    card_masked: String,
    bank: String,
}

fn person(roster: &Roster, row: &Row, args: &ImportArgs, pepper: &Pepper) -> Result<Person, Vec<RowError>> {
    let mut errors = Vec::new();
    let household = match roster.text(row, Field::Household) {
        Ok(Some(id)) if super::identity::contains_id_number(&id) => {
            errors.push(roster.error(row, Field::Household, super::NOT_AN_ID_NUMBER));
            String::new()
        }
        Ok(Some(id)) if super::is_id(&id) => id,
        Ok(Some(_)) => {
            errors.push(roster.error(row, Field::Household, "not a household id [A-Za-z0-9._:-]{1,64}"));
            String::new()
        }
        Ok(None) => {
            errors.push(roster.error(row, Field::Household, "no household id"));
            String::new()
        }
        Err(e) => {
            errors.push(e);
            String::new()
        }
    };
    let name_masked = roster
        .text(row, Field::Name)
        .and_then(|name| mask_name(name.as_deref().unwrap_or("")).map_err(|e| roster.error(row, Field::Name, e)))
        .unwrap_or_else(|e| {
            errors.push(e);
            String::new()
        });
    let person_digest = roster
        .identifier(row, Field::IdNumber)
        .and_then(|id| check_id(id.as_deref().unwrap_or("")).map_err(|e| roster.error(row, Field::IdNumber, e)))
        .map(|id| id.digest(pepper))
        .unwrap_or_else(|e| {
            errors.push(e);
            String::new()
        });
    let relation = roster.text(row, Field::Relation).ok().flatten();
    let head = relation.as_deref().is_some_and(|r| HEAD_RELATIONS.contains(&r.to_lowercase().as_str()));
    let bank = roster.text(row, Field::Bank).ok().flatten().or_else(|| args.bank.clone());
    let card = match roster.identifier(row, Field::Card) {
        Ok(None) => None,
        Ok(Some(raw)) => match check_card(&raw, args.luhn.applies(bank.as_deref())) {
            Ok(card) => Some((card.digest(pepper), card.masked())),
            Err(e) => {
                errors.push(roster.error(row, Field::Card, e));
                None
            }
        },
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let village = match roster.text(row, Field::Village) {
        Ok(Some(v)) if super::is_id(&v) => Some(v),
        Ok(Some(_)) => {
            errors.push(roster.error(row, Field::Village, "not a village office id"));
            None
        }
        Ok(None) => args.village.clone(),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if errors.is_empty() {
        Ok(Person { row: row.number, household, name_masked, person_digest, head, card, bank, village })
    } else {
        Err(errors)
    }
}

/// One value shared by the household's rows, or an error naming the rows.
fn agreed<T: PartialEq + Clone>(values: &[(usize, Option<T>)], what: &str) -> Result<Option<T>, String> {
    let mut found: Option<(usize, T)> = None;
    for (row, value) in values {
        let Some(value) = value else { continue };
        match &found {
            None => found = Some((*row, value.clone())),
            Some((first, v)) if v != value => return Err(format!("{what} differs from row {first}")),
            Some(_) => {}
        }
    }
    Ok(found.map(|(_, v)| v))
}

fn household(id: &str, persons: &[Person], roster: &Roster) -> Result<Household, RowError> {
    let first_row = persons[0].row;
    let fail = |row: usize, field: Option<Field>, message: String| RowError {
        row,
        column: field.map(|f| roster.column_label(f)).unwrap_or_default(),
        message,
    };
    if persons.len() > MEMBERS_PER_HOUSEHOLD_MAX {
        return Err(fail(first_row, None, format!("household {id} has more than {MEMBERS_PER_HOUSEHOLD_MAX} members")));
    }
    let heads: Vec<&Person> = persons.iter().filter(|p| p.head).collect();
    let head = match (roster.has(Field::Relation), heads.as_slice()) {
        (false, _) => &persons[0],
        (true, [head]) => head,
        (true, []) => return Err(fail(first_row, Some(Field::Relation), format!("household {id} has no 户主 (head)"))),
        (true, [_, second, ..]) => {
            return Err(fail(second.row, Some(Field::Relation), format!("household {id} has a second 户主 (head)")))
        }
    };
    let cards: Vec<(usize, Option<(String, String)>)> = persons.iter().map(|p| (p.row, p.card.clone())).collect();
    let (card_digest, card_masked) = agreed(&cards, "the card")
        .map_err(|m| fail(first_row, Some(Field::Card), format!("household {id}: {m}")))?
        .ok_or_else(|| fail(first_row, Some(Field::Card), format!("household {id} has no card number")))?;
    let banks: Vec<(usize, Option<String>)> = persons.iter().map(|p| (p.row, p.bank.clone())).collect();
    let bank = agreed(&banks, "the bank")
        .map_err(|m| fail(first_row, Some(Field::Bank), format!("household {id}: {m}")))?
        .ok_or_else(|| fail(first_row, Some(Field::Bank), format!("household {id} has no bank (column or --bank)")))?;
    if bank.chars().count() > crate::payload::STRING_CHARS_MAX || bank.chars().any(|c| c.is_ascii_digit()) {
        return Err(fail(first_row, Some(Field::Bank), "a bank name of at most 500 characters, without digits".into()));
    }
    let villages: Vec<(usize, Option<String>)> = persons.iter().map(|p| (p.row, p.village.clone())).collect();
    let village = agreed(&villages, "the village")
        .map_err(|m| fail(first_row, Some(Field::Village), format!("household {id}: {m}")))?
        .ok_or_else(|| {
            fail(first_row, Some(Field::Village), format!("household {id} has no village (column or --village)"))
        })?;
    let mut members = vec![(head.person_digest.clone(), head.name_masked.clone())];
    members
        .extend(persons.iter().filter(|p| p.row != head.row).map(|p| (p.person_digest.clone(), p.name_masked.clone())));
    Ok(Household {
        id: id.to_string(),
        first_row,
        village,
        head_name_masked: head.name_masked.clone(),
        members,
        card_digest,
        card_masked,
        bank,
    })
}

/// The payload bytes of one household: compact JSON, keys sorted.
fn payload(household: &Household, args: &ImportArgs, event_id: &str) -> Vec<u8> {
    let members: Vec<serde_json::Value> = household
        .members
        .iter()
        .map(|(digest, name)| serde_json::json!({"person_digest": digest, "name_masked": name}))
        .collect();
    serde_json::json!({
        "v": 1, "ledger": args.ledger, "id": event_id, "kind": "household_register", "office": args.office, "at": args.at,
        "body": {
            "household_id": household.id,
            "village": household.village,
            "head_name_masked": household.head_name_masked,
            "members": members,
            "card": {"card_digest": household.card_digest, "card_masked": household.card_masked, "bank": household.bank},
        },
    })
    .to_string()
    .into_bytes()
}

/// Reads every row; returns the households (in roster order) and the errors.
fn read_households(roster: &Roster, args: &ImportArgs, pepper: &Pepper) -> (Vec<Household>, Vec<RowError>) {
    let mut errors = Vec::new();
    let mut order: Vec<String> = Vec::new();
    let mut persons: HashMap<String, Vec<Person>> = HashMap::new();
    let mut bad_households: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_people: HashMap<String, usize> = HashMap::new();
    for row in &roster.rows {
        match person(roster, row, args, pepper) {
            Ok(p) => {
                if let Some(first) = seen_people.get(&p.person_digest) {
                    errors.push(roster.error(
                        row,
                        Field::IdNumber,
                        format!("the same ID number as row {first} (a duplicate row?)"),
                    ));
                    bad_households.insert(p.household.clone(), row.number);
                    continue;
                }
                seen_people.insert(p.person_digest.clone(), row.number);
                if !persons.contains_key(&p.household) {
                    order.push(p.household.clone());
                }
                persons.entry(p.household.clone()).or_default().push(p);
            }
            Err(row_errors) => {
                if let Ok(Some(id)) = roster.text(row, Field::Household) {
                    bad_households.insert(id, row.number);
                }
                errors.extend(row_errors);
            }
        }
    }
    let mut households = Vec::new();
    for id in order {
        let members = &persons[&id];
        if let Some(bad_row) = bad_households.get(&id) {
            if args.sink.skip_bad_rows {
                eprintln!("warning: household {id} skipped: its row {bad_row} has errors");
            }
            continue;
        }
        match household(&id, members, roster) {
            Ok(h) => households.push(h),
            Err(e) => errors.push(e),
        }
    }
    (households, errors)
}

/// A household with its event id and payload bytes, checked by the schema.
struct Prepared {
    household: Household,
    event_id: String,
    payload: Vec<u8>,
}

fn prepare(households: Vec<Household>, args: &ImportArgs, errors: &mut Vec<RowError>) -> Vec<Prepared> {
    let mut prepared = Vec::with_capacity(households.len());
    for household in households {
        let event_id = super::event_id("hh", &[&household.id]);
        let payload = payload(&household, args, &event_id);
        // Pair check: what is signed passes the ledger's own schema first.
        match crate::payload::parse_payload(&payload) {
            Ok(_) => prepared.push(Prepared { household, event_id, payload }),
            Err(rejection) => errors.push(RowError {
                row: household.first_row,
                column: String::new(),
                message: format!("the household_register payload is not valid: {}", rejection.message),
            }),
        }
    }
    prepared
}

/// Villages must be village offices; a household already registered must
/// have been registered with exactly these bytes (then it is a repeat).
fn check_against_ledger(ledger: &Ledger, prepared: &[Prepared], errors: &mut Vec<RowError>) -> Result<(), String> {
    let state = ledger.state();
    for p in prepared {
        let h = &p.household;
        let problem = |message: String| RowError { row: h.first_row, column: String::new(), message };
        let village = state.offices.get(&h.village);
        if village.is_none_or(|o| o.level != crate::payload::Level::Village) {
            errors.push(problem(format!("{} is not a village office in the ledger", h.village)));
        }
        if state.households.contains_key(h.id.as_str()) {
            let existing = ledger.store().event(&p.event_id).map_err(|e| e.to_string())?;
            if existing.is_none_or(|e| e.payload_digest != crate::encoding::sha256(&p.payload)) {
                errors.push(problem(format!(
                    "household {} is already registered with other data: changes go through household_update",
                    h.id
                )));
            }
        }
    }
    Ok(())
}

/// `sunledger households import`.
pub fn import(args: &ImportArgs) -> Result<i32, String> {
    super::check_sink(&args.sink)?;
    super::parse_common(&args.ledger, &args.office, &args.at)?;
    if let Some(village) = &args.village {
        if !super::is_id(village) {
            return Err(format!("--village {village:?} is not an office id"));
        }
    }
    let pepper = Pepper::read(&args.pepper)?;
    let keys = super::signing_keys(std::slice::from_ref(&args.key))?;
    let required = [Field::Household, Field::Name, Field::IdNumber, Field::Card];
    let roster = roster::read(&args.roster, &required)?;
    let mut ledger = match &args.sink.data {
        Some(data) => {
            let ledger = super::open_ledger(data)?;
            super::check_keys_in_ledger(&ledger, &args.ledger, &args.office, &keys, Role::Registrar)?;
            Some(ledger)
        }
        None => None,
    };
    let (households, mut errors) = read_households(&roster, args, &pepper);
    let mut prepared = prepare(households, args, &mut errors);
    if let Some(ledger) = &ledger {
        check_against_ledger(ledger, &prepared, &mut errors)?;
    }
    errors.sort_by_key(|e| e.row);
    let persons: usize = prepared.iter().map(|p| p.household.members.len()).sum();
    eprintln!(
        "household roster {} ({}): {} rows, {} households ({persons} persons) ready",
        args.roster.display(),
        roster.format,
        roster.rows.len(),
        prepared.len()
    );
    let error_count = super::report_problems(&errors, &[]);
    if error_count > 0 && !args.sink.skip_bad_rows {
        eprintln!("nothing was imported: {error_count} errors (fix the roster, or pass --skip-bad-rows)");
        return Ok(EXIT_REJECTED);
    }
    let bad_rows: std::collections::HashSet<usize> = errors.iter().map(|e| e.row).collect();
    prepared.retain(|p| !bad_rows.contains(&p.household.first_row));
    if args.sink.dry_run {
        return Ok(EXIT_OK);
    }
    let events: Vec<Signed> = prepared
        .into_iter()
        .map(|p| Signed {
            row: p.household.first_row,
            envelope_json: super::sign(p.payload, &keys),
            event_id: p.event_id,
        })
        .collect();
    super::deliver(&args.sink, ledger.as_mut(), &events, "household_register")
}
