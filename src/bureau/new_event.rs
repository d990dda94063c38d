//! `sunledger new KIND`: any of the 16 payload kinds from FIELD=VALUE pairs,
//! checked with the ledger's own parser before it is printed.
//!
//! Owns: the FIELD=VALUE syntax (below, and in `--help`). Never: prints a
//! payload that `payload::parse_payload` refuses.

use super::amount::parse_yuan;
use clap::Args;
use serde_json::{Map, Value};
use std::io::{IsTerminal, Write};

/// Every kind of SPEC §3.
pub const KINDS: [&str; 16] = [
    "genesis",
    "office_register",
    "key_add",
    "key_revoke",
    "program_define",
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
/// Fields given in yuan, and the fen field each becomes.
const YUAN_FIELDS: &[(&str, &str)] = &[
    ("amount", "amount_fen"),
    ("budget", "budget_fen"),
    ("standard", "standard_fen"),
    ("cap_per_year", "cap_fen_per_year"),
];
const INTEGER_FIELDS: &[&str] = &["amount_fen", "budget_fen", "standard_fen", "cap_fen_per_year", "fiscal_year"];
const BOOLEAN_FIELDS: &[&str] = &["earmarked"];
const LIST_FIELDS: &[&str] = &["roles", "households", "projects", "deceased", "remove_members"];
/// Fields per command line, and the depth of a dotted path.
pub const FIELDS_MAX: usize = 1024;
pub const PATH_SEGMENTS_MAX: usize = 4;
/// The highest list index accepted in a dotted path (the largest lists a
/// payload may hold are 64 members or 16 keys; notices take `a,b,c` lists).
pub const LIST_INDEX_MAX: usize = 64;

pub const SYNTAX_HELP: &str = "\
Body fields:
  FIELD=VALUE        a string, or typed by the field's name:
                       amount=1200.50, budget=…, standard=…, cap_per_year=…  yuan → amount_fen, budget_fen,
                                         standard_fen, cap_fen_per_year (exact, at most two decimals, ¥ and , accepted)
                       amount_fen=120050, fiscal_year=2019                   integers
                       earmarked=true                                         true / false
                       roles=admin,finance   (also households, projects, deceased, remove_members)  comma lists
                       parent=null                                            JSON null (any field)
                       public_key=@FILE                                       the public key of a key file
  FIELD:=JSON        a raw JSON value, e.g. 'keys:=[]' or 'note:=\"null\"'
  a.b=VALUE          nested objects: card.bank=湖北农信, log_key.key_id=log/k1
  a.0.b=VALUE        lists of objects by index from 0: members.0.person_digest=…, keys.1.roles=finance
Examples:
  sunledger new appropriate --ledger L --office 420000 --at 2019-01-02 program=dibao amount=1200.50 \\
      budget_ref='鄂财农发〔2019〕1号' fiscal_year=2019 > p.json && sunledger sign --key k.json p.json
  sunledger new key_add --ledger L --office 422822 --at 2019-01-02 office_id=422822 key_id=422822/k2 \\
      public_key=@k2.json roles=finance
The payload is printed exactly as it should be signed (compact JSON, keys sorted, no trailing newline \
unless stdout is a terminal). Without --id the event id is KIND-<first 16 hex of SHA-256 of the payload \
without id>: the same command gives the same id, so a retried import is a harmless repeat.";

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The event kind (genesis, office_register, key_add, key_revoke, program_define, appropriate, transfer,
    /// reallocate, household_register, household_update, payout, project_register, expenditure, refund,
    /// notice_publish, flag_review).
    pub kind: String,
    /// The ledger id (from its genesis).
    #[arg(long)]
    pub ledger: String,
    /// The acting office (`root` for root acts).
    #[arg(long)]
    pub office: String,
    /// Business date YYYY-MM-DD.
    #[arg(long)]
    pub at: String,
    /// The event id (default: derived from the payload, see below).
    #[arg(long)]
    pub id: Option<String>,
    #[arg(long)]
    pub memo: Option<String>,
    /// Body fields, FIELD=VALUE (see below).
    pub fields: Vec<String>,
}

/// Parses one FIELD=VALUE into its path and JSON value.
pub fn parse_field(text: &str) -> Result<(Vec<String>, Value), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("{text:?} is not FIELD=VALUE"))?;
    if let Some(key) = key.strip_suffix(':') {
        let value: Value = serde_json::from_str(value).map_err(|e| format!("{key}:= is not JSON: {e}"))?;
        return Ok((split_path(key)?, value));
    }
    let mut path = split_path(key)?;
    let last = path.last().expect("split_path returns at least one segment").clone();
    if value == "null" {
        return Ok((path, Value::Null));
    }
    if let Some((_, fen_field)) = YUAN_FIELDS.iter().find(|(yuan_field, _)| *yuan_field == last) {
        let fen = parse_yuan(value).map_err(|e| format!("{key}={value}: {e}"))?;
        *path.last_mut().expect("non-empty") = fen_field.to_string();
        return Ok((path, Value::from(fen)));
    }
    if INTEGER_FIELDS.contains(&last.as_str()) {
        let number: u64 = value.parse().map_err(|_| format!("{key}={value}: not a whole number"))?;
        return Ok((path, Value::from(number)));
    }
    if BOOLEAN_FIELDS.contains(&last.as_str()) {
        return match value {
            "true" => Ok((path, Value::Bool(true))),
            "false" => Ok((path, Value::Bool(false))),
            _ => Err(format!("{key}={value}: true or false")),
        };
    }
    if LIST_FIELDS.contains(&last.as_str()) {
        let items: Vec<Value> =
            value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::from(s.to_string())).collect();
        return Ok((path, Value::Array(items)));
    }
    if last == "public_key" {
        if let Some(file) = value.strip_prefix('@') {
            let key = crate::keys::read_public(std::path::Path::new(file))?;
            return Ok((path, Value::from(crate::encoding::base64_encode(&key.public_key))));
        }
    }
    Ok((path, Value::from(value.to_string())))
}

fn split_path(key: &str) -> Result<Vec<String>, String> {
    let path: Vec<String> = key.split('.').map(str::to_string).collect();
    if path.iter().any(String::is_empty) || path.len() > PATH_SEGMENTS_MAX {
        return Err(format!("{key:?} is not a field path like name, card.bank or members.0.name_masked"));
    }
    if path[0].parse::<usize>().is_ok() {
        return Err(format!("{key:?}: a path starts with a field name"));
    }
    Ok(path)
}

fn placeholder(rest: &[String]) -> Value {
    match rest.first() {
        Some(segment) if segment.parse::<usize>().is_ok() => Value::Array(Vec::new()),
        _ => Value::Object(Map::new()),
    }
}

/// Puts `leaf` at `path` inside `target`, creating objects and lists.
pub fn insert(target: &mut Value, path: &[String], leaf: Value) -> Result<(), String> {
    let (head, rest) = path.split_first().expect("paths are non-empty");
    let slot: &mut Value = if let Ok(index) = head.parse::<usize>() {
        let list = target.as_array_mut().ok_or_else(|| format!("{head}: a list index where a field name belongs"))?;
        if index > list.len() || index > LIST_INDEX_MAX {
            return Err(format!("list index {index} skips index {}: number list items from 0", list.len()));
        }
        if index == list.len() {
            list.push(if rest.is_empty() { Value::Null } else { placeholder(rest) });
        }
        &mut list[index]
    } else {
        let object =
            target.as_object_mut().ok_or_else(|| format!("{head}: a field name where a list index belongs"))?;
        object.entry(head.clone()).or_insert_with(|| if rest.is_empty() { Value::Null } else { placeholder(rest) })
    };
    if rest.is_empty() {
        if !slot.is_null() {
            return Err(format!("{head} is given twice"));
        }
        *slot = leaf;
        return Ok(());
    }
    insert(slot, rest, leaf)
}

/// Builds the payload bytes; checked by `parse_payload`.
pub fn build(args: &NewArgs) -> Result<Vec<u8>, String> {
    if !KINDS.contains(&args.kind.as_str()) {
        return Err(format!("unknown kind {:?}; one of: {}", args.kind, KINDS.join(", ")));
    }
    if args.fields.len() > FIELDS_MAX {
        return Err(format!("at most {FIELDS_MAX} fields"));
    }
    let mut body = Value::Object(Map::new());
    for field in &args.fields {
        let (path, value) = parse_field(field)?;
        insert(&mut body, &path, value)?;
    }
    let mut payload = serde_json::json!({
        "v": 1, "ledger": args.ledger, "kind": args.kind, "office": args.office, "at": args.at, "body": body,
    });
    if let Some(memo) = &args.memo {
        payload["memo"] = Value::from(memo.clone());
    }
    let id = match &args.id {
        Some(id) => id.clone(),
        None => {
            let digest = crate::encoding::sha256(payload.to_string().as_bytes());
            format!("{}-{}", args.kind, &crate::encoding::hex(&digest)[..16])
        }
    };
    payload["id"] = Value::from(id);
    if holds_id_number(&payload) {
        return Err(format!("a field {}", super::NOT_AN_ID_NUMBER));
    }
    let bytes = payload.to_string().into_bytes();
    crate::payload::parse_payload(&bytes).map_err(|rejection| format!("not a valid payload: {rejection}"))?;
    Ok(bytes)
}

/// Whether any string in the payload holds a valid ID number.
fn holds_id_number(value: &Value) -> bool {
    match value {
        Value::String(text) => super::identity::contains_id_number(text),
        Value::Array(items) => items.iter().any(holds_id_number),
        Value::Object(map) => map.values().any(holds_id_number),
        _ => false,
    }
}

/// `sunledger new`.
pub fn run(args: &NewArgs) -> Result<i32, String> {
    let bytes = build(args)?;
    let mut stdout = std::io::stdout().lock();
    let terminal = stdout.is_terminal();
    stdout
        .write_all(&bytes)
        .and_then(|_| if terminal { stdout.write_all(b"\n") } else { Ok(()) })
        .and_then(|_| stdout.flush())
        .map_err(|e| format!("cannot write the payload: {e}"))?;
    Ok(super::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kind: &str, fields: &[&str]) -> NewArgs {
        NewArgs {
            kind: kind.into(),
            ledger: "L".into(),
            office: "422822".into(),
            at: "2019-01-05".into(),
            id: None,
            memo: None,
            fields: fields.iter().map(|f| f.to_string()).collect(),
        }
    }

    fn body(kind: &str, fields: &[&str]) -> Result<Value, String> {
        let bytes = build(&args(kind, fields))?;
        Ok(serde_json::from_slice::<Value>(&bytes).unwrap()["body"].clone())
    }

    #[test]
    fn fields_become_typed_json() {
        // Goal: yuan, integers, lists, nested and indexed paths produce the payload the schema wants.
        let appropriate =
            body("appropriate", &["program=dibao", "amount=1200.50", "budget_ref=b1", "fiscal_year=2019"]);
        assert_eq!(
            appropriate.unwrap(),
            serde_json::json!({"program": "dibao", "amount_fen": 120050, "budget_ref": "b1", "fiscal_year": 2019})
        );
        let digest = "a".repeat(64);
        let household = body(
            "household_register",
            &[
                "household_id=h1",
                "village=422822101201",
                "head_name_masked=张*",
                &format!("members.0.person_digest={digest}"),
                "members.0.name_masked=张*",
                &format!("card.card_digest={digest}"),
                "card.card_masked=6228********1234",
                "card.bank=湖北农信",
            ],
        )
        .unwrap();
        assert_eq!(household["members"][0]["name_masked"], "张*");
        assert_eq!(household["card"]["bank"], "湖北农信");
        let program = body(
            "program_define",
            &["program_id=p", "name=低保", "earmarked=true", "payee=household", "standard=300", "period=month"],
        )
        .unwrap();
        assert_eq!(program["standard_fen"], 30000);
        let expenditure = body(
            "expenditure",
            &["program=p", "project_id=null", "payee_id=x", "payee_name=y", "category=goods", "amount=1", "doc_ref=d"],
        )
        .unwrap();
        assert!(expenditure["project_id"].is_null());
        assert_eq!(body("notice_publish", &["households=a,b"]).err().map(|e| e.contains("schema")), Some(true));
    }

    #[test]
    fn bad_fields_are_refused() {
        // Goal: a third decimal, a skipped index, a repeated field and a schema violation are all errors.
        assert!(body("appropriate", &["amount=1.005"]).unwrap_err().contains("two decimal"));
        assert!(body("household_register", &["members.1.name_masked=张*"]).unwrap_err().contains("skips"));
        assert!(body("refund", &["reason=a", "reason=b"]).unwrap_err().contains("twice"));
        assert!(body("refund", &["ref_event=p1", "amount_fen=5", "reason=x", "extra=1"])
            .unwrap_err()
            .contains("schema"));
        assert!(body("nope", &[]).unwrap_err().contains("unknown kind"));
        let leak = body("household_update", &["household_id=h", "reason=户主11010519491231002X已迁出"]);
        assert!(leak.unwrap_err().contains("holds an ID number"));
    }

    #[test]
    fn generated_ids_are_stable() {
        // Goal: the same fields give the same id and bytes; other fields another id.
        let a = build(&args("refund", &["ref_event=p1", "amount=5", "reason=x"])).unwrap();
        let b = build(&args("refund", &["ref_event=p1", "amount=5", "reason=x"])).unwrap();
        let c = build(&args("refund", &["ref_event=p1", "amount=6", "reason=x"])).unwrap();
        assert_eq!(a, b);
        let id = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap()["id"].as_str().unwrap().to_string();
        assert!(id(&a).starts_with("refund-"));
        assert_ne!(id(&a), id(&c));
    }
}
