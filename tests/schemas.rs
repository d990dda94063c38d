//! The JSON Schemas in `schemas/` and the Rust payload parser give the same
//! verdicts.
//!
//! The schemas are the contract published to the bureaus that write events and
//! to auditors who check exports with their own tools; the parser is what the
//! ledger enforces. If the two drift, a bureau can build an event that its
//! validator accepts and the ledger refuses, or worse, an auditor's tool can
//! pass an export the ledger would never have written. These tests hold both
//! to the known-answer vectors in `../shared/vectors` and to the table of
//! near-miss payloads in `tests/data/payload_cases.jsonl`.
//!
//! The schema side runs `tools/schema_check.py`, which needs `python3` with
//! the `jsonschema` package (`python3 -m pip install jsonschema`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;
use sunledger::payload::parse_payload;

/// The cases table must stay large enough to cover SPEC §3 rule by rule.
const CASES_COUNT_MIN: usize = 60;

/// SPEC §3: every kind must have at least one valid example in the table.
const KINDS: [&str; 16] = [
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

/// SPEC §4 codes a payload can earn from `parse_payload`: schema before amount
/// bounds, nothing later (ledger id, keys and references need the chain).
const CASE_CODES: [&str; 2] = ["schema", "invalid_amount"];

/// `schema_check.py` exit status for a usage or environment error (for
/// example a missing `jsonschema`), as opposed to 1 for "records failed".
const SCHEMA_CHECK_ENVIRONMENT_ERROR: i32 = 2;

/// One row of `tests/data/payload_cases.jsonl`.
struct Case {
    name: String,
    /// The exact payload text, so duplicate keys and float literals survive.
    payload: String,
    valid: bool,
    /// The SPEC §4 code when `valid` is false.
    code: Option<String>,
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn vectors_dir() -> PathBuf {
    manifest_dir().join("..").join("shared").join("vectors")
}

fn cases_path() -> PathBuf {
    manifest_dir().join("tests").join("data").join("payload_cases.jsonl")
}

/// Non-empty lines of a JSON Lines file.
fn read_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    text.lines().filter(|line| !line.trim().is_empty()).map(str::to_owned).collect()
}

fn parse_json_line(path: &Path, line_number: usize, line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|error| panic!("{}:{line_number}: not JSON: {error}", path.display()))
}

fn load_cases() -> Vec<Case> {
    let path = cases_path();
    read_lines(&path)
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let line_number = index + 1;
            let case = parse_json_line(&path, line_number, line);
            let field = |name: &str| -> &Value {
                case.get(name).unwrap_or_else(|| panic!("{}:{line_number}: case has no {name:?}", path.display()))
            };
            let text = |name: &str| -> String {
                field(name)
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| panic!("{}:{line_number}: {name:?} is not a string", path.display()))
            };
            Case {
                name: text("name"),
                payload: text("payload"),
                valid: field("valid")
                    .as_bool()
                    .unwrap_or_else(|| panic!("{}:{line_number}: \"valid\" is not a boolean", path.display())),
                code: case.get("code").and_then(Value::as_str).map(str::to_owned),
            }
        })
        .collect()
}

/// The payload bytes of a DSSE envelope (SPEC §2).
fn envelope_payload(envelope: &Value, origin: &str) -> Vec<u8> {
    let encoded = envelope
        .get("payload")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{origin}: envelope has no string payload"));
    BASE64.decode(encoded).unwrap_or_else(|error| panic!("{origin}: payload is not base64: {error}"))
}

/// Every payload in the vectors, named `file:line`: the submitted envelopes,
/// the records of the known chain, and the envelopes of every rule file.
fn vector_payloads() -> Vec<(String, Vec<u8>)> {
    let vectors = vectors_dir();
    let rules = vectors.join("rules");
    let mut envelope_files = vec![vectors.join("envelopes.jsonl")];
    let mut rule_files: Vec<PathBuf> = std::fs::read_dir(&rules)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", rules.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "jsonl"))
        .collect();
    rule_files.sort();
    assert!(!rule_files.is_empty(), "no rule vectors under {}", rules.display());
    envelope_files.extend(rule_files);

    let mut payloads = Vec::new();
    for path in &envelope_files {
        for (index, line) in read_lines(path).iter().enumerate() {
            let origin = format!("{}:{}", path.display(), index + 1);
            let envelope = parse_json_line(path, index + 1, line);
            payloads.push((origin.clone(), envelope_payload(&envelope, &origin)));
        }
    }
    let chain = vectors.join("chain.jsonl");
    for (index, line) in read_lines(&chain).iter().enumerate() {
        let origin = format!("{}:{}", chain.display(), index + 1);
        let record = parse_json_line(&chain, index + 1, line);
        let envelope = record.get("envelope").unwrap_or_else(|| panic!("{origin}: record has no envelope"));
        payloads.push((origin.clone(), envelope_payload(envelope, &origin)));
    }
    payloads
}

/// Runs `python3 tools/schema_check.py schemas ARGS…` from the crate root.
/// Panics with a clear message when Python or `jsonschema` is missing.
fn run_schema_check(arguments: &[&OsStr]) -> Output {
    let output = Command::new("python3")
        .arg(manifest_dir().join("tools").join("schema_check.py"))
        .arg(manifest_dir().join("schemas"))
        .args(arguments)
        .current_dir(manifest_dir())
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run python3 ({error}); the schema tests need Python 3 with the \
                 jsonschema package: python3 -m pip install jsonschema"
            )
        });
    assert_ne!(
        output.status.code(),
        Some(SCHEMA_CHECK_ENVIRONMENT_ERROR),
        "tools/schema_check.py could not run (is jsonschema installed? \
         python3 -m pip install jsonschema):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The schema verdict (true = valid) for each named payload text.
fn schema_verdicts(cases: &[(String, String)]) -> BTreeMap<String, bool> {
    let mut file = tempfile::Builder::new()
        .prefix("sunledger-schema-cases-")
        .suffix(".jsonl")
        .tempfile_in(std::env::temp_dir())
        .expect("create a temporary cases file");
    for (name, payload) in cases {
        let line = serde_json::json!({ "name": name, "payload": payload });
        writeln!(file, "{line}").expect("write the temporary cases file");
    }
    file.flush().expect("flush the temporary cases file");
    parse_verdicts(&run_schema_check(&[file.path().as_os_str()]))
}

/// Parses the `<name>\t<valid|invalid>` lines printed by `schema_check.py`.
fn parse_verdicts(output: &Output) -> BTreeMap<String, bool> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tools/schema_check.py failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut verdicts = BTreeMap::new();
    for line in stdout.lines() {
        let (name, verdict) =
            line.split_once('\t').unwrap_or_else(|| panic!("schema_check.py printed an unexpected line: {line:?}"));
        let valid = match verdict {
            "valid" => true,
            "invalid" => false,
            other => panic!("schema_check.py printed verdict {other:?} for {name}"),
        };
        let earlier = verdicts.insert(name.to_owned(), valid);
        assert!(earlier.is_none(), "schema_check.py named {name} twice");
    }
    verdicts
}

/// The parser's verdict: `Ok(())` or the SPEC §4 code of the rejection.
fn parser_verdict(payload: &[u8]) -> Result<(), &'static str> {
    match parse_payload(payload) {
        Ok(_) => Ok(()),
        Err(rejection) => Err(rejection.code.as_str()),
    }
}

fn describe(verdict: Result<(), &str>) -> String {
    match verdict {
        Ok(()) => "valid".to_owned(),
        Err(code) => format!("invalid ({code})"),
    }
}

#[test]
fn vector_payloads_are_valid_under_the_schema() {
    // Goal: every payload the independent implementation wrote (envelopes,
    // chain records, every rule file) validates against payload.schema.json,
    // so the schemas are no stricter than the known answers.
    let payloads = vector_payloads();
    let cases: Vec<(String, String)> = payloads
        .iter()
        .map(|(origin, bytes)| {
            let text = String::from_utf8(bytes.clone())
                .unwrap_or_else(|error| panic!("{origin}: payload is not UTF-8: {error}"));
            (origin.clone(), text)
        })
        .collect();
    let verdicts = schema_verdicts(&cases);
    assert_eq!(verdicts.len(), cases.len(), "schema_check.py skipped some payloads");
    let rejected: Vec<&String> = verdicts.iter().filter(|(_, valid)| !**valid).map(|(origin, _)| origin).collect();
    assert!(rejected.is_empty(), "schema rejects vector payloads: {rejected:#?}");
}

#[test]
fn vector_payloads_are_accepted_by_the_parser() {
    // Goal: the parser accepts every payload in the vectors, so it is no
    // stricter than the known answers either.
    let rejected: Vec<String> = vector_payloads()
        .iter()
        .filter_map(|(origin, bytes)| match parser_verdict(bytes) {
            Ok(()) => None,
            Err(code) => Some(format!("{origin}: {code}")),
        })
        .collect();
    assert!(rejected.is_empty(), "parser rejects vector payloads: {rejected:#?}");
}

#[test]
fn chain_records_are_valid_under_the_record_schema() {
    // Goal: every record of the known chain export validates against
    // record.schema.json (seq, prev, recorded_at, DSSE envelope, hash) and its
    // decoded payload against payload.schema.json.
    let chain = vectors_dir().join("chain.jsonl");
    let output = run_schema_check(&[OsStr::new("--records"), chain.as_os_str()]);
    assert!(
        output.status.success(),
        "chain.jsonl fails the record schema:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn record_check_fails_on_a_broken_record() {
    // Goal: the record check above can fail: a known record with an unknown
    // field and a date that does not exist is reported and exits 1.
    let chain = vectors_dir().join("chain.jsonl");
    let first = read_lines(&chain).into_iter().next().expect("chain.jsonl has a record");
    let mut record = parse_json_line(&chain, 1, &first);
    let fields = record.as_object_mut().expect("a record is an object");
    fields.insert("note".to_owned(), Value::from("added after signing"));
    fields.insert("recorded_at".to_owned(), Value::from("2018-02-30T00:00:00.000Z"));
    let mut file = tempfile::Builder::new()
        .prefix("sunledger-broken-record-")
        .suffix(".jsonl")
        .tempfile_in(std::env::temp_dir())
        .expect("create a temporary export");
    writeln!(file, "{record}").expect("write the temporary export");
    file.flush().expect("flush the temporary export");
    let output = run_schema_check(&[OsStr::new("--records"), file.path().as_os_str()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "broken record passed:\n{stdout}");
    assert!(stdout.contains("note"), "unknown field not reported:\n{stdout}");
    assert!(stdout.contains("recorded_at"), "bad date not reported:\n{stdout}");
}

#[test]
fn cases_table_covers_every_kind() {
    // Goal: the table is well formed (unique names, a SPEC §4 code on every
    // invalid case and none on valid ones), large enough, and has a valid
    // example of each of the 16 kinds.
    let cases = load_cases();
    assert!(cases.len() >= CASES_COUNT_MIN, "only {} cases; keep at least {CASES_COUNT_MIN}", cases.len());
    let mut names = BTreeSet::new();
    let mut valid_kinds = BTreeSet::new();
    for case in &cases {
        assert!(names.insert(case.name.as_str()), "case name {} repeated", case.name);
        assert!(!case.name.contains(['\t', '\n']), "case name {:?} has a tab or newline", case.name);
        if case.valid {
            assert!(case.code.is_none(), "{}: valid case has a code", case.name);
            let payload: Value = serde_json::from_str(&case.payload)
                .unwrap_or_else(|error| panic!("{}: valid case is not JSON: {error}", case.name));
            if let Some(kind) = payload.get("kind").and_then(Value::as_str) {
                valid_kinds.insert(kind.to_owned());
            }
        } else {
            let code = case.code.as_deref().unwrap_or_else(|| panic!("{}: invalid case has no code", case.name));
            assert!(CASE_CODES.contains(&code), "{}: unexpected code {code}", case.name);
        }
    }
    let missing: Vec<&str> = KINDS.iter().copied().filter(|kind| !valid_kinds.contains(*kind)).collect();
    assert!(missing.is_empty(), "no valid case for kinds {missing:?}");
}

#[test]
fn parser_verdicts_match_the_cases_table() {
    // Goal: for every case the parser accepts exactly the valid payloads and
    // rejects each invalid one with the expected SPEC §4 code.
    let mismatches: Vec<String> = load_cases()
        .iter()
        .filter_map(|case| {
            let expected = if case.valid { Ok(()) } else { Err(case.code.as_deref().unwrap_or("?")) };
            let actual = parser_verdict(case.payload.as_bytes());
            (actual != expected)
                .then(|| format!("{}: expected {}, parser says {}", case.name, describe(expected), describe(actual)))
        })
        .collect();
    assert!(mismatches.is_empty(), "parser disagrees with the table: {mismatches:#?}");
}

#[test]
fn schema_verdicts_match_the_cases_table() {
    // Goal: for every case the JSON Schema (through schema_check.py) says
    // valid exactly when the table does, so schema and parser agree on
    // valid versus invalid.
    let cases = load_cases();
    let output = run_schema_check(&[cases_path().as_os_str()]);
    let verdicts = parse_verdicts(&output);
    let mut mismatches = Vec::new();
    for case in &cases {
        match verdicts.get(&case.name) {
            None => mismatches.push(format!("{}: no verdict from schema_check.py", case.name)),
            Some(&valid) if valid != case.valid => mismatches.push(format!(
                "{}: expected {}, schema says {}",
                case.name,
                if case.valid { "valid" } else { "invalid" },
                if valid { "valid" } else { "invalid" }
            )),
            Some(_) => {}
        }
    }
    assert_eq!(verdicts.len(), cases.len(), "schema_check.py printed extra verdicts");
    assert!(mismatches.is_empty(), "schema disagrees with the table: {mismatches:#?}");
}
