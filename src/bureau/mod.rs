//! Bureau tools (issue 8): what county finance bureaus and poverty
//! alleviation offices need to feed the ledger from their spreadsheets
//! without writing JSON, keeping personal data out of the chain by
//! construction.
//!
//! - `pepper`: the registrar's secret HMAC key; `identity`: ID and card
//!   numbers (normalise, check, digest, mask); `amount`: yuan text to fen.
//! - `roster` (+ `xlsx`): CSV/GBK/xlsx rosters, headers, row/column locations.
//! - `households`, `payouts`: roster → signed `household_register` and
//!   `payout` envelopes; `new_event`: any payload from FIELD=VALUE pairs.
//! - `ledger_view`: the household facts a payout roster is checked against.
//!
//! Boundary: raw ID and card numbers and full names exist only inside this
//! process. They are never written to an output, a log line or an error
//! message: errors name the row and the column, never the value.

pub mod amount;
pub mod households;
pub mod identity;
pub mod ledger_view;
pub mod new_event;
pub mod payouts;
pub mod pepper;
pub mod roster;
pub mod xlsx;

use crate::envelope::Envelope;
use crate::ledger::{Ledger, OnRejection, Outcome, GROUP_EVENTS_MAX};
use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};

pub const EXIT_OK: i32 = 0;
/// The roster had errors (nothing imported) or the ledger rejected an event.
pub const EXIT_REJECTED: i32 = 1;

/// The bureau commands, flattened into the top-level `sunledger` commands.
#[derive(Subcommand)]
pub enum BureauCommand {
    /// The registrar's secret pepper for person and card digests.
    Pepper {
        #[command(subcommand)]
        command: PepperCommand,
    },
    /// Print the digest (HMAC-SHA256 under the pepper) of one ID or card number.
    ///
    /// For one-off checks. The number is normalised and checked first. A number
    /// given on the command line stays in the shell history: give `-` to read
    /// it from standard input instead.
    Digest {
        #[arg(long)]
        pepper: PathBuf,
        /// An 18-character ID number (GB 11643), or `-` to read it from stdin.
        #[arg(long, required_unless_present = "card", conflicts_with = "card")]
        id: Option<String>,
        /// A bank card number, or `-` to read it from stdin.
        #[arg(long)]
        card: Option<String>,
        /// Do not require a valid Luhn check digit on the card.
        #[arg(long)]
        no_luhn: bool,
    },
    /// Household rosters (建档立卡花名册) → signed household_register events.
    Households {
        #[command(subcommand)]
        command: HouseholdsCommand,
    },
    /// Bank payout rosters (发放清册) → signed payout events.
    Payouts {
        #[command(subcommand)]
        command: PayoutsCommand,
    },
    /// Print a valid payload of any kind from FIELD=VALUE pairs, ready for `sunledger sign`.
    #[command(after_help = new_event::SYNTAX_HELP)]
    New(new_event::NewArgs),
}

#[derive(Subcommand)]
pub enum PepperCommand {
    /// Make a new pepper file: 32 random bytes, mode 0600. Never overwrites.
    New {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum HouseholdsCommand {
    /// Import a household roster (one row per person) as household_register events.
    #[command(after_help = households::COLUMNS_HELP)]
    Import(households::ImportArgs),
}

#[derive(Subcommand)]
pub enum PayoutsCommand {
    /// Import a bank payout roster as payout events (deterministic ids: importing twice pays nothing twice).
    #[command(after_help = payouts::COLUMNS_HELP)]
    Import(payouts::ImportArgs),
}

/// The error for an id or text that holds an ID number.
pub const NOT_AN_ID_NUMBER: &str =
    "holds an ID number: personal data may not become an id or text on the chain (use a household number)";

/// Where signed events go, and what to do with bad rows.
#[derive(Args, Clone, Debug)]
pub struct SinkArgs {
    /// Write the signed envelopes (JSON Lines, ready for `sunledger import`) to this new file.
    #[arg(long, conflicts_with = "server")]
    pub out: Option<PathBuf>,
    /// A ledger data directory: rows are checked against it, and the events appended to it unless --out is given.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A sunledger server URL (http://host:port); events are posted to /v1/events.
    #[arg(long)]
    pub server: Option<String>,
    /// Only check and preview: sign and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import the good rows of a roster that has bad ones (by default nothing is imported).
    #[arg(long)]
    pub skip_bad_rows: bool,
}

/// Which cards must pass the Luhn check.
///
/// Decision: Luhn is checked by default for every card, since UnionPay cards
/// (including most 一卡通 cards issued since 2010) carry a Luhn digit and a
/// typo then stops the import instead of paying a stranger. Older rural
/// credit cooperative (农信社) account numbers may not: exempt them by bank
/// name (`--no-luhn-bank 农信`), or all cards (`--no-luhn`).
#[derive(Args, Clone, Debug, Default)]
pub struct LuhnArgs {
    /// Do not check any card number with Luhn.
    #[arg(long)]
    pub no_luhn: bool,
    /// Skip the Luhn check for cards whose bank (开户行) contains this text; repeatable (e.g. 农信, 信用社).
    #[arg(long = "no-luhn-bank", value_name = "BANK")]
    pub no_luhn_banks: Vec<String>,
}

impl LuhnArgs {
    pub fn applies(&self, bank: Option<&str>) -> bool {
        if self.no_luhn {
            return false;
        }
        let bank = bank.unwrap_or("");
        !self.no_luhn_banks.iter().any(|exempt| !exempt.is_empty() && bank.contains(exempt.as_str()))
    }
}

/// Runs a bureau command; the exit code, or an error message for exit 2.
pub fn run(command: BureauCommand) -> Result<i32, String> {
    match command {
        BureauCommand::Pepper { command: PepperCommand::New { out } } => {
            pepper::Pepper::generate().write_new(&out)?;
            println!("wrote {} (32 random bytes, mode 0600): keep it secret and keep an offline copy", out.display());
            Ok(EXIT_OK)
        }
        BureauCommand::Digest { pepper, id, card, no_luhn } => digest(&pepper, id, card, no_luhn),
        BureauCommand::Households { command: HouseholdsCommand::Import(args) } => households::import(&args),
        BureauCommand::Payouts { command: PayoutsCommand::Import(args) } => payouts::import(&args),
        BureauCommand::New(args) => new_event::run(&args),
    }
}

fn read_secret_argument(value: String) -> Result<String, String> {
    if value != "-" {
        return Ok(value);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(line)
}

fn digest(pepper_path: &Path, id: Option<String>, card: Option<String>, no_luhn: bool) -> Result<i32, String> {
    let pepper = pepper::Pepper::read(pepper_path)?;
    let digest = match (id, card) {
        (Some(id), None) => identity::check_id(&read_secret_argument(id)?).map_err(|e| e.to_string())?.digest(&pepper),
        (None, Some(card)) => {
            identity::check_card(&read_secret_argument(card)?, !no_luhn).map_err(|e| e.to_string())?.digest(&pepper)
        }
        _ => return Err("give --id NUMBER or --card NUMBER".into()),
    };
    println!("{digest}");
    Ok(EXIT_OK)
}

/// An event id from its parts, `PREFIX-part-part…`; when that is not a valid
/// id (over 64 characters), `PREFIX-` and the first 32 hex of
/// SHA-256(parts joined by 0x00) in four dot-separated groups of 8.
/// Deterministic: the same parts give the same id.
pub fn event_id(prefix: &str, parts: &[&str]) -> String {
    let readable = format!("{prefix}-{}", parts.join("-"));
    let valid = readable.len() <= crate::payload::ID_CHARS_MAX
        && readable.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if valid {
        return readable;
    }
    // Groups of 8 hex digits: a digit run can never reach the 16 that
    // `personal::find_in_id` would take for a card number.
    let digest = crate::encoding::hex(&crate::encoding::sha256(parts.join("\0").as_bytes()));
    let groups: Vec<&str> = (0..4).map(|i| &digest[i * 8..i * 8 + 8]).collect();
    format!("{prefix}-{}", groups.join("."))
}

/// Whether a text is a valid object id `[A-Za-z0-9._:-]{1,64}`.
pub fn is_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= crate::payload::ID_CHARS_MAX
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// Reads signing keys (plain or passphrase-protected) with distinct key ids.
pub fn signing_keys(paths: &[PathBuf]) -> Result<Vec<(String, SigningKey)>, String> {
    let mut keys: Vec<(String, SigningKey)> = Vec::with_capacity(paths.len());
    for path in paths {
        let key = crate::keys::read(path)?;
        let secret = key.signing_key()?.clone();
        if keys.iter().any(|(id, _)| *id == key.key_id) {
            return Err(format!("key {} is given twice: dual control needs two different keys", key.key_id));
        }
        keys.push((key.key_id, secret));
    }
    Ok(keys)
}

/// Opens an existing ledger (never creates an empty one by mistake).
pub fn open_ledger(data: &Path) -> Result<Ledger, String> {
    if !data.exists() {
        return Err(format!("no ledger at {}", data.display()));
    }
    Ledger::open(data).map_err(|e| e.to_string())
}

/// Checks, against the ledger, that each key is a current key of `office`
/// with `role`, and that the ledger is the one named.
pub fn check_keys_in_ledger(
    ledger: &Ledger,
    ledger_id: &str,
    office: &str,
    keys: &[(String, SigningKey)],
    role: crate::payload::Role,
) -> Result<(), String> {
    let state = ledger.state();
    match state.ledger_id.as_deref() {
        Some(id) if id == ledger_id => {}
        Some(id) => return Err(format!("the data directory holds ledger {id}, not {ledger_id}")),
        None => return Err("the data directory holds no ledger (no genesis)".into()),
    }
    if !state.offices.contains_key(office) {
        return Err(format!("office {office} is not registered in the ledger"));
    }
    for (key_id, secret) in keys {
        let Some(key) = state.keys.get(key_id) else { return Err(format!("key {key_id} is not registered")) };
        if key.office != office || !key.has_role(role) || key.revoked_at_seq.is_some() {
            return Err(format!("key {key_id} is not a current {role:?} key of office {office}"));
        }
        if key.public_key != secret.verifying_key().to_bytes() {
            return Err(format!("the key file for {key_id} does not hold the registered key"));
        }
    }
    Ok(())
}

/// A signed event ready to deliver, with the roster row it came from.
pub struct Signed {
    pub row: usize,
    pub event_id: String,
    pub envelope_json: String,
}

/// Signs payload bytes exactly as given.
pub fn sign(payload: Vec<u8>, keys: &[(String, SigningKey)]) -> String {
    Envelope::sign(payload, keys).to_json()
}

/// Refuses a missing destination.
pub fn check_sink(sink: &SinkArgs) -> Result<(), String> {
    if let Some(url) = &sink.server {
        crate::http_client::split_url(url)?;
    }
    if !sink.dry_run && sink.out.is_none() && sink.data.is_none() && sink.server.is_none() {
        return Err(
            "say where the events go: --out FILE, --data DIR or --server URL (or --dry-run to only check)".into()
        );
    }
    Ok(())
}

/// Posts the events to a sunledger server in batches (per-event results,
/// in order); stops at the first rejected event.
fn deliver_to_server(url: &str, events: &[Signed], what: &str) -> Result<i32, String> {
    let (authority, base) = crate::http_client::split_url(url)?;
    let mut accepted = 0usize;
    for chunk in events.chunks(crate::server::BATCH_ENVELOPES_MAX) {
        let envelopes: Vec<serde_json::Value> = chunk
            .iter()
            .map(|e| serde_json::from_str(&e.envelope_json))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let body = serde_json::json!({"envelopes": envelopes, "atomic": false}).to_string();
        let path = format!("{base}/v1/events");
        let response = crate::http_client::request(
            &authority,
            "POST",
            &path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )?;
        if response.status != 200 {
            return Err(format!("{url}: HTTP {}: {}", response.status, response.text()));
        }
        let answer: serde_json::Value = serde_json::from_slice(&response.body).map_err(|e| format!("{url}: {e}"))?;
        let results = answer["results"].as_array().ok_or_else(|| format!("{url}: no results in the answer"))?;
        for (result, event) in results.iter().zip(chunk) {
            if let Some(code) = result["error"].as_str() {
                eprintln!(
                    "{}",
                    serde_json::json!({"row": event.row, "id": event.event_id, "error": code, "message": result["message"]})
                );
                println!("{accepted} {what} events accepted (repeats included); stopped at row {}", event.row);
                return Ok(EXIT_REJECTED);
            }
            let seq = result["seq"].as_u64().unwrap_or(u64::MAX);
            if seq == u64::MAX {
                return Err(format!("{url}: malformed result {result}"));
            }
            accepted += 1;
        }
    }
    println!("{accepted} {what} events accepted by {url} (repeats included)");
    Ok(EXIT_OK)
}

/// Writes the events to `--out` (a new file), or appends them to the ledger.
/// Returns the exit code.
pub fn deliver(sink: &SinkArgs, ledger: Option<&mut Ledger>, events: &[Signed], what: &str) -> Result<i32, String> {
    if let Some(out) = &sink.out {
        write_new_file(out, events)?;
        println!("wrote {} {what} events to {}", events.len(), out.display());
        return Ok(EXIT_OK);
    }
    if let Some(url) = &sink.server {
        return deliver_to_server(url, events, what);
    }
    let ledger = ledger.ok_or("no destination")?;
    let (mut appended, mut repeated) = (0usize, 0usize);
    for chunk in events.chunks(GROUP_EVENTS_MAX) {
        let bytes: Vec<&[u8]> = chunk.iter().map(|e| e.envelope_json.as_bytes()).collect();
        let outcomes = ledger.append_group(&bytes, OnRejection::Stop).map_err(|e| e.to_string())?;
        for (outcome, event) in outcomes.iter().zip(chunk) {
            match outcome {
                Outcome::Appended { .. } => appended += 1,
                Outcome::Repeated { .. } => repeated += 1,
                Outcome::Skipped => {}
                Outcome::Rejected(rejection) => {
                    ledger.save_snapshot().map_err(|e| e.to_string())?;
                    eprintln!(
                        "{}",
                        serde_json::json!({"row": event.row, "id": event.event_id, "error": rejection.code.as_str(), "message": rejection.message})
                    );
                    println!(
                        "{appended} {what} events appended, {repeated} already present; stopped at row {}",
                        event.row
                    );
                    return Ok(EXIT_REJECTED);
                }
            }
        }
    }
    ledger.save_snapshot().map_err(|e| e.to_string())?;
    println!(
        "{appended} {what} events appended, {repeated} already present; the ledger holds {} events",
        ledger.head().size
    );
    Ok(EXIT_OK)
}

fn write_new_file(path: &Path, events: &[Signed]) -> Result<(), String> {
    use std::io::Write;
    let mut text = String::with_capacity(events.iter().map(|e| e.envelope_json.len() + 1).sum());
    for event in events {
        text.push_str(&event.envelope_json);
        text.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("cannot create {} (it must not exist yet): {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Prints row errors and warnings on stderr; returns how many errors.
pub fn report_problems(errors: &[roster::RowError], warnings: &[roster::RowError]) -> usize {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    for error in errors {
        eprintln!("error: {error}");
    }
    errors.len()
}

/// Parses the flags every import shares.
pub fn parse_common(ledger_id: &str, office: &str, at: &str) -> Result<crate::date::Date, String> {
    if !is_id(ledger_id) {
        return Err(format!("--ledger {ledger_id:?} is not an id [A-Za-z0-9._:-]{{1,64}}"));
    }
    if !is_id(office) {
        return Err(format!("--office {office:?} is not an id [A-Za-z0-9._:-]{{1,64}}"));
    }
    crate::date::Date::parse(at).ok_or_else(|| format!("--at {at:?} is not a date YYYY-MM-DD that exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_readable_or_hashed() {
        // Goal: ids stay readable when they fit the id pattern and become a stable hash otherwise.
        assert_eq!(event_id("po", &["422822", "dibao", "2019-01", "h1"]), "po-422822-dibao-2019-01-h1");
        let long = "h".repeat(60);
        let id = event_id("po", &["422822", "dibao", "2019-01", &long]);
        assert_eq!(id.len(), 38);
        assert!(is_id(&id));
        assert_eq!(id, event_id("po", &["422822", "dibao", "2019-01", &long]));
        assert_ne!(id, event_id("po", &["422822", "dibao", "2019-02", &long]));
    }

    #[test]
    fn luhn_exemptions_by_bank() {
        // Goal: Luhn applies unless turned off, or the bank name contains an exempted text.
        let args = LuhnArgs { no_luhn: false, no_luhn_banks: vec!["农信".into()] };
        assert!(args.applies(Some("邮储银行")));
        assert!(args.applies(None));
        assert!(!args.applies(Some("湖北农信建始支行")));
        assert!(!LuhnArgs { no_luhn: true, no_luhn_banks: vec![] }.applies(Some("邮储银行")));
    }
}
