//! The synthetic-ledger generator: its county-years and province runs import
//! into a fresh ledger with zero rejections, conserve money, verify as a
//! chain, are reproducible from the seed, and name planted cases whose
//! subjects exist in the data. Also the `generate` CLI end to end.

mod support;

use std::collections::BTreeSet;
use sunledger::chain::{export_line, parse_export_line, GENESIS_PREV};
use sunledger::encoding::base64_decode;
use sunledger::generate::{county_year, keys_json, province, CountyOptions, Generated, ProvinceOptions};
use sunledger::ledger::{Ledger, OnRejection, Outcome, GROUP_EVENTS_MAX};
use sunledger::verify::Verifier;
use support::*;

/// The 17 rules of SPEC §7.
const RULES: [&str; 17] = [
    "idle_funds",
    "stalled_pass_through",
    "off_tree_transfer",
    "cross_program_diversion",
    "forbidden_expenditure",
    "unlisted_project",
    "ineligible_household",
    "deceased_payee",
    "duplicate_payout",
    "over_standard",
    "shared_card",
    "card_mismatch",
    "duplicate_person",
    "outlier_payout",
    "structuring",
    "late_payout",
    "paid_before_notice",
];

/// The decoded payload of an envelope line.
fn payload_of(line: &str) -> serde_json::Value {
    let envelope: serde_json::Value = serde_json::from_str(line).expect("an envelope line is JSON");
    let bytes = base64_decode(envelope["payload"].as_str().expect("payload")).expect("payload is base64");
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

/// Imports every line into a fresh ledger; panics on the first rejection,
/// showing the rejected line's payload, code and message.
fn import(dir: &std::path::Path, lines: &[String]) -> Ledger {
    let mut ledger = Ledger::open(&dir.join("data")).expect("a fresh ledger opens");
    for (group_index, group) in lines.chunks(GROUP_EVENTS_MAX).enumerate() {
        let slices: Vec<&[u8]> = group.iter().map(|line| line.as_bytes()).collect();
        let outcomes = ledger.append_group(&slices, OnRejection::Stop).expect("no storage error");
        for (i, outcome) in outcomes.iter().enumerate() {
            let number = group_index * GROUP_EVENTS_MAX + i + 1;
            match outcome {
                Outcome::Appended { .. } => {}
                Outcome::Rejected(rejection) => panic!(
                    "line {number} rejected: {} {}\n{}",
                    rejection.code.as_str(),
                    rejection.message,
                    payload_of(&group[i])
                ),
                Outcome::Repeated { seq, .. } => panic!("line {number} repeats seq {seq}"),
                Outcome::Skipped => panic!("line {number} skipped"),
            }
        }
        assert_eq!(outcomes.len(), group.len());
    }
    assert_eq!(ledger.head().size, lines.len() as u64);
    ledger
}

/// Exports the ledger's records (SPEC §5 lines) and replays them through the
/// verifier: links, hashes, signatures, every SPEC §4 rule, conservation.
fn verify_export(ledger: &Ledger) {
    let report = verify_records(&export_records(ledger), sunledger::verify::VERIFY_CHUNK_RECORDS);
    assert!(report.valid(), "verification failed: {:?}", report.failure);
    assert_eq!(report.records, ledger.head().size);
}

/// The export records of a ledger, in order.
fn export_records(ledger: &Ledger) -> Vec<sunledger::chain::ExportRecord> {
    let mut prev = GENESIS_PREV;
    let mut line = Vec::new();
    let mut records = Vec::new();
    for record in ledger.store().records_from(0) {
        let record = record.expect("records read back");
        line.clear();
        export_line(&mut line, record.seq, &prev, record.recorded_at_ms, &record.envelope_bytes, &record.hash);
        records.push(parse_export_line(&line).expect("an export line parses"));
        prev = record.hash;
    }
    records
}

/// Re-links records from `from` on (prev and hash), as a forger who
/// rewrites the rest of the chain would.
fn relink(records: &mut [sunledger::chain::ExportRecord], from: usize) {
    for i in from..records.len() {
        let prev = if i == 0 { GENESIS_PREV } else { records[i - 1].hash };
        let record = &mut records[i];
        record.prev = prev;
        record.hash = sunledger::chain::record_hash(record.seq, &prev, record.recorded_at_ms, &record.envelope);
    }
}

fn verify_records(records: &[sunledger::chain::ExportRecord], chunk: usize) -> sunledger::verify::Report {
    let mut verifier = Verifier::with_chunk_records(chunk);
    for record in records {
        verifier.push(record.clone());
    }
    verifier.finish().0
}

#[test]
fn pipelined_verification_finds_the_first_bad_record_across_chunks() {
    // Goal: the verifier prepares chunk N+1 while it validates chunk N; with
    // chunks of every size it gives the same verdict: a valid chain is valid
    // with the same root, and a bad signature (chain re-linked so only the
    // signature is wrong) or a broken link is reported at its own seq, in
    // the first, a middle or the last chunk. Would fail if pending records
    // were skipped, validated out of order, or linked to the wrong record.
    let generated = county_year(5, CountyOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let ledger = import(dir.path(), &generated.lines);
    let records = export_records(&ledger);
    let last = records.len() - 1;
    let reference = verify_records(&records, 4096);
    assert!(reference.valid(), "{:?}", reference.failure);
    for chunk in [1, 7, 64, 500] {
        let report = verify_records(&records, chunk);
        assert!(report.valid(), "chunk {chunk}: {:?}", report.failure);
        assert_eq!((report.records, report.root), (reference.records, reference.root), "chunk {chunk}");
    }
    for at in [1, 63, 64, 65, 777, last] {
        let mut forged = records.clone();
        forged[at].envelope.signatures[0].signature[10] ^= 1;
        relink(&mut forged, at);
        let mut broken = records.clone();
        broken[at].prev[0] ^= 1;
        for chunk in [7, 64, 4096] {
            let failure = verify_records(&forged, chunk).failure.expect("a forged signature is found");
            assert_eq!(failure.seq, at as u64, "chunk {chunk}: {}", failure.reason);
            assert!(failure.reason.contains("bad_signature"), "{}", failure.reason);
            let failure = verify_records(&broken, chunk).failure.expect("a broken link is found");
            assert_eq!(failure.seq, at as u64, "chunk {chunk}: {}", failure.reason);
        }
    }
}

/// Money checks: conservation, nothing left at province or prefecture level.
fn check_money(ledger: &Ledger, above_county: &[&str]) {
    let state = ledger.state();
    assert!(state.conserves_money());
    assert!(state.totals.paid_out_fen > 0 && state.totals.spent_fen > 0);
    for (account, fen) in &state.balances {
        let office = account.split('/').next().unwrap();
        if above_county.contains(&office) {
            assert_eq!(*fen, 0, "{account} still holds money (stalled_pass_through)");
        }
    }
}

fn kinds(generated: &Generated) -> BTreeSet<String> {
    generated.lines.iter().map(|l| payload_of(l)["kind"].as_str().unwrap().to_string()).collect()
}

#[test]
fn clean_county_year_imports_verifies_and_conserves_money() {
    // Goal: a clean county-year is accepted event by event by a fresh ledger,
    // conserves money, leaves nothing above county level, ends its clock in
    // late December, and replays as a valid chain.
    let generated = county_year(7, CountyOptions::default());
    assert!(generated.planted.is_empty());
    assert_eq!(generated.households, 320);
    assert!(generated.lines.len() > 1500, "{} events", generated.lines.len());
    let dir = tempfile::tempdir().unwrap();
    let ledger = import(dir.path(), &generated.lines);
    check_money(&ledger, &[&generated.province, &generated.prefecture]);
    assert!(ledger.state().totals.refunded_fen > 0);
    assert_eq!(ledger.state().clock.unwrap().to_string(), "2019-12-27");
    verify_export(&ledger);
    let expected: BTreeSet<String> = [
        "genesis",
        "program_define",
        "office_register",
        "household_register",
        "household_update",
        "appropriate",
        "transfer",
        "reallocate",
        "notice_publish",
        "payout",
        "refund",
        "project_register",
        "expenditure",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(kinds(&generated), expected);
}

#[test]
fn misuse_county_year_imports_and_plants_every_rule_once() {
    // Goal: with misuse the county-year is still accepted in full (a misuse
    // is recorded, not refused) and its planted list names each of the 17
    // rules exactly once.
    let generated = county_year(7, CountyOptions { misuse: true, ..CountyOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let ledger = import(dir.path(), &generated.lines);
    assert!(ledger.state().conserves_money());
    verify_export(&ledger);
    let rules: Vec<&str> = generated.planted.iter().map(|p| p.rule).collect();
    let mut sorted = rules.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), rules.len(), "a rule planted twice: {rules:?}");
    let mut all = RULES.to_vec();
    all.sort_unstable();
    assert_eq!(sorted, all);
}

#[test]
fn planted_subjects_exist_in_the_data() {
    // Goal: every planted subject (household, person, card, payee, account,
    // event) occurs in the generated events, so a flag on it can be found.
    let generated = county_year(11, CountyOptions { misuse: true, ..CountyOptions::default() });
    let payloads: Vec<serde_json::Value> = generated.lines.iter().map(|l| payload_of(l)).collect();
    let text: Vec<String> = payloads.iter().map(|p| p.to_string()).collect();
    let has = |needle: &str| text.iter().any(|t| t.contains(needle));
    for planted in &generated.planted {
        let id = planted.subject_id.as_str();
        let found = match planted.subject_kind {
            "household" => {
                payloads.iter().any(|p| p["kind"] == "household_register" && p["body"]["household_id"] == id)
            }
            "event" => payloads.iter().any(|p| p["id"] == id),
            "payee" => payloads.iter().any(|p| p["kind"] == "expenditure" && p["body"]["payee_id"] == id),
            "person" => has(&format!("\"person_digest\":\"{id}\"")),
            "card" => has(&format!("\"card_digest\":\"{id}\"")),
            "account" => {
                let (office, program) = id.split_once('/').expect("an account is office/program");
                payloads.iter().any(|p| {
                    p["kind"] == "transfer" && p["body"]["to_office"] == office && p["body"]["program"] == program
                })
            }
            other => panic!("unexpected subject kind {other}"),
        };
        assert!(found, "planted {} subject {} {} not in the data", planted.rule, planted.subject_kind, id);
    }
    // The clean county-year of the same seed holds none of the planted events.
    let clean = county_year(11, CountyOptions::default());
    for planted in generated.planted.iter().filter(|p| p.subject_kind == "event") {
        assert!(!clean.lines.iter().any(|l| payload_of(l)["id"] == planted.subject_id.as_str()));
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    // Goal: generation is a pure function of the seed and options.
    let options = CountyOptions { villages: 4, households_per_village: 30, ..CountyOptions::default() };
    let first = county_year(3, options.clone());
    let again = county_year(3, options.clone());
    let other = county_year(4, options.clone());
    assert_eq!(first.lines, again.lines);
    assert_eq!(keys_json(&first.keys), keys_json(&again.keys));
    assert_ne!(first.lines, other.lines);
    assert_ne!(keys_json(&first.keys), keys_json(&other.keys));
    let misuse = CountyOptions { misuse: true, ..options };
    let (planted, planted_again) = (county_year(3, misuse.clone()), county_year(3, misuse));
    assert_eq!(planted.lines, planted_again.lines);
    assert_eq!(planted.planted, planted_again.planted);

    let small =
        ProvinceOptions { counties: 2, villages_per_county: 2, households_per_village: 5, months: 2, programs: 5 };
    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut c = Vec::new();
    province(5, small.clone(), &mut a).unwrap();
    province(5, small.clone(), &mut b).unwrap();
    province(6, small, &mut c).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn small_province_imports_with_zero_rejections() {
    // Goal: a province run (2 counties × 3 villages × 10 households × 3
    // months) streams lines that a fresh ledger accepts in full, and reports
    // the number it wrote.
    let options =
        ProvinceOptions { counties: 2, villages_per_county: 3, households_per_village: 10, months: 3, programs: 5 };
    let mut out = Vec::new();
    let summary = province(9, options, &mut out).unwrap();
    let lines: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_string).collect();
    assert_eq!(summary.events, lines.len() as u64);
    assert_eq!(summary.households, 60);
    let dir = tempfile::tempdir().unwrap();
    let ledger = import(dir.path(), &lines);
    assert!(ledger.state().conserves_money());
    let above_county: Vec<String> = lines
        .iter()
        .map(|l| payload_of(l))
        .filter(|p| {
            p["kind"] == "office_register" && ["province", "prefecture"].contains(&p["body"]["level"].as_str().unwrap())
        })
        .map(|p| p["body"]["office_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(above_county.len(), 2);
    let above: Vec<&str> = above_county.iter().map(String::as_str).collect();
    check_money(&ledger, &above);
    verify_export(&ledger);
}

/// A writer that fails once it has taken `limit` bytes (a full disk).
struct FailingWriter {
    written: usize,
    limit: usize,
}

impl std::io::Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() > self.limit {
            return Err(std::io::Error::other("disk full"));
        }
        self.written += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn province_reports_a_failing_writer() {
    // Goal: a write error mid-run comes back as the error (the pipeline
    // stops its sealing stage instead of hanging or panicking); options out
    // of range are refused before anything is written.
    let options =
        ProvinceOptions { counties: 2, villages_per_county: 5, households_per_village: 40, months: 6, programs: 5 };
    let mut sink = FailingWriter { written: 0, limit: 500_000 };
    let error = province(1, options, &mut sink).unwrap_err();
    assert_eq!(error.to_string(), "disk full");
    let bad = ProvinceOptions { months: 0, ..ProvinceOptions::default() };
    let mut empty = Vec::new();
    assert_eq!(province(1, bad, &mut empty).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    assert!(empty.is_empty());
}

#[test]
fn generated_personal_data_is_digested_and_masked() {
    // Goal: no raw ID or card numbers: digests are 64 lowercase hex, cards
    // are masked 4 + 8 stars + 4, names keep only the SPEC §9 characters.
    let generated = county_year(2, CountyOptions::default());
    let mut checked = 0;
    for payload in generated.lines.iter().map(|l| payload_of(l)).filter(|p| p["kind"] == "household_register") {
        let body = &payload["body"];
        let card = body["card"]["card_masked"].as_str().unwrap();
        assert_eq!(card.len(), 16);
        assert!(card[..4].bytes().all(|b| b.is_ascii_digit()) && &card[4..12] == "********");
        for member in body["members"].as_array().unwrap() {
            let digest = member["person_digest"].as_str().unwrap();
            assert!(digest.len() == 64 && digest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            let name: Vec<char> = member["name_masked"].as_str().unwrap().chars().collect();
            assert!(name.len() >= 2 && name[1] == '*');
            assert!(!name.iter().any(char::is_ascii_digit));
        }
        checked += 1;
    }
    assert_eq!(checked, 320);
    // A raw 18-digit ID number or a 19-digit card number would show as a
    // long digit run in some string value other than a hex digest.
    fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut values = Vec::new();
    generated.lines.iter().for_each(|l| strings(&payload_of(l), &mut values));
    let is_hex_digest = |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let longest_digit_run = values
        .iter()
        .filter(|s| !is_hex_digest(s))
        .flat_map(|s| s.split(|c: char| !c.is_ascii_digit()).map(str::len).collect::<Vec<_>>())
        .max()
        .unwrap_or(0);
    assert!(longest_digit_run <= 12, "a digit run of {longest_digit_run}");
}

#[test]
fn clean_data_never_repeats_a_person_or_a_card() {
    // Goal: regression for colliding synthetic ID and card numbers — no
    // person digest and no card digest is ever given to two households or
    // twice to one, in a county-year (with card changes and newborns) and in
    // a province of 1,200 households, so duplicate_person and shared_card
    // stay quiet on clean data.
    let mut out = Vec::new();
    let options =
        ProvinceOptions { counties: 3, villages_per_county: 10, households_per_village: 40, months: 1, programs: 1 };
    province(21, options, &mut out).unwrap();
    let province_lines: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_string).collect();
    for lines in [county_year(21, CountyOptions::default()).lines, province_lines] {
        let mut persons = BTreeSet::new();
        let mut cards = BTreeSet::new();
        let mut households = 0;
        for payload in lines.iter().map(|l| payload_of(l)) {
            let body = &payload["body"];
            let members = body["members"].as_array().into_iter().chain(body["add_members"].as_array()).flatten();
            for member in members {
                assert!(persons.insert(member["person_digest"].as_str().unwrap().to_string()), "person repeated");
            }
            if let Some(card) = body["card"]["card_digest"].as_str() {
                assert!(cards.insert(card.to_string()), "card repeated in {}", payload["id"]);
            }
            households += usize::from(payload["kind"] == "household_register");
        }
        assert!(households >= 320 && persons.len() > 2 * households && cards.len() >= households);
    }
}

#[test]
fn keys_file_matches_the_vectors_format() {
    // Goal: --keys-out writes keys.json's shape: an array of
    // {key_id, public_key, secret_key} whose secrets match their public keys.
    let generated = county_year(1, CountyOptions::default());
    let list: Vec<serde_json::Value> = serde_json::from_str(&keys_json(&generated.keys)).unwrap();
    assert_eq!(list.len(), generated.keys.len());
    for entry in &list {
        let key = sunledger::keys::parse(&entry.to_string()).expect("a key entry parses as a key file");
        assert!(key.secret.is_some());
    }
    let ids: Vec<&str> = list.iter().map(|k| k["key_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"root/k1") && ids.contains(&"log/k1") && ids.contains(&"422822/k2"));
}

#[test]
fn cli_generates_county_and_province_files_that_import() {
    // Goal: `sunledger generate county|province` write files the `import`
    // command accepts in full, and the keys file with mode 0600.
    let dir = tempfile::tempdir().unwrap();
    let county = dir.path().join("county.jsonl");
    let keys = dir.path().join("keys.json");
    let output = run(&[
        "generate",
        "county",
        "--out",
        county.to_str().unwrap(),
        "--seed",
        "5",
        "--misuse",
        "--keys-out",
        keys.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).matches("planted ").count(), 17);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let data = dir.path().join("county-data");
    let output = run(&["import", "--data", data.to_str().unwrap(), county.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(&["verify", "--data", data.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stdout(&output));

    let province_file = dir.path().join("province.jsonl");
    let output = run(&[
        "generate",
        "province",
        "--out",
        province_file.to_str().unwrap(),
        "--counties",
        "2",
        "--villages",
        "2",
        "--households",
        "6",
        "--months",
        "2",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let data = dir.path().join("province-data");
    let output = run(&["import", "--data", data.to_str().unwrap(), province_file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));

    let bad = run(&["generate", "county", "--out", county.to_str().unwrap(), "--villages", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("villages"));
}
