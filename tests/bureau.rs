//! Bureau tools through the real binary: household and payout rosters in
//! UTF-8 CSV, GBK CSV and .xlsx (tests/fixtures/bureau, made by
//! tools/make_bureau_fixtures.py with synthetic ID numbers), row/column error
//! reports, idempotent payouts, dual control, and a scan of everything the
//! commands wrote or printed for raw identifiers.

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::*;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bureau").join(name).to_string_lossy().into_owned()
}

/// A temp dir with the vectors' keys as key files, a pepper, and a record of
/// every command's output (for the leak scan).
struct Bureau {
    dir: tempfile::TempDir,
    outputs: Vec<Output>,
}

impl Bureau {
    fn new() -> Bureau {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<Value> = serde_json::from_str(&read_vector("keys.json")).unwrap();
        for key in &keys {
            let name = key["key_id"].as_str().unwrap().replace('/', "_");
            std::fs::write(dir.path().join(format!("{name}.json")), key.to_string()).unwrap();
        }
        let mut bureau = Bureau { dir, outputs: Vec::new() };
        let pepper = bureau.path("pepper.bin");
        bureau.ok(&["pepper", "new", "--out", &pepper]);
        bureau
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn key(&self, key_id: &str) -> String {
        self.path(&format!("{}.json", key_id.replace('/', "_")))
    }

    fn run(&mut self, args: &[&str]) -> Output {
        let output = Command::new(bin())
            .args(args)
            .env_remove("SUNLEDGER_PASSPHRASE")
            .stdin(Stdio::null())
            .output()
            .expect("the binary runs");
        self.outputs.push(output.clone());
        output
    }

    fn ok(&mut self, args: &[&str]) -> Output {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {}\n{}", stdout(&output), stderr(&output));
        output
    }

    /// The vectors' ledger in `data`.
    fn ledger(&mut self) -> String {
        let data = self.path("data");
        self.ok(&["import", "--data", &data, &vectors().join("envelopes.jsonl").to_string_lossy()]);
        data
    }

    fn household_args(&self, roster: &str) -> Vec<String> {
        [
            "households",
            "import",
            "--pepper",
            &self.path("pepper.bin"),
            "--key",
            &self.key("422822-fpb/k1"),
            "--ledger",
            LEDGER,
            "--office",
            "422822-fpb",
            "--at",
            "2019-01-02",
            "--no-luhn-bank",
            "农信",
            &fixture(roster),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn payout_args(&self, roster: &str, keys: &[&str]) -> Vec<String> {
        let mut args: Vec<String> =
            ["payouts", "import", "--pepper", &self.path("pepper.bin")].iter().map(|s| s.to_string()).collect();
        for key in keys {
            args.extend(["--key".to_string(), self.key(key)]);
        }
        let rest = [
            "--ledger",
            LEDGER,
            "--office",
            "422822",
            "--program",
            "dibao",
            "--period",
            "2019-01",
            "--at",
            "2019-02-05",
            "--no-luhn-bank",
            "农信",
            &fixture(roster),
        ];
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    }

    fn run_with(&mut self, base: Vec<String>, extra: &[&str]) -> Output {
        let mut args = base;
        let roster = args.pop().unwrap();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(roster);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&refs)
    }

    /// Signs a payload with vector keys and appends it to the ledger.
    fn append(&mut self, data: &str, name: &str, payload_json: &str, key_ids: &[&str]) {
        let file = write_lines(self.dir.path(), name, &[sign(payload_json, key_ids)]);
        self.ok(&["import", "--data", data, &file]);
    }

    /// The vectors' ledger with the three fixture households, a monthly
    /// program `dibao` (standard 300 yuan) and 100,000 yuan for 422822.
    fn ledger_with_households(&mut self) -> String {
        let data = self.ledger();
        let args = self.household_args("households.csv");
        let output = self.run_with(args, &["--data", &data]);
        assert!(output.status.success(), "{}", stderr(&output));
        let program = json!({"program_id": "dibao", "name": "农村低保", "earmarked": true, "payee": "household",
            "standard_fen": 30000, "period": "month"});
        self.append(
            &data,
            "program.jsonl",
            &payload("dibao", "program_define", "root", "2019-01-02", program),
            &["root/k1"],
        );
        let money =
            json!({"program": "dibao", "amount_fen": 10_000_000, "budget_ref": "建财〔2019〕1号", "fiscal_year": 2019});
        self.append(
            &data,
            "money.jsonl",
            &payload("a-dibao", "appropriate", "422822", "2019-01-03", money),
            &["422822/k1"],
        );
        data
    }
}

/// The payload JSON of every envelope line of a file or export.
fn payloads(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            let envelope = if value.get("envelope").is_some() { &value["envelope"] } else { &value };
            let bytes = sunledger::encoding::base64_decode(envelope["payload"].as_str().unwrap()).unwrap();
            serde_json::from_slice(&bytes).unwrap()
        })
        .collect()
}

fn export_payloads(data: &str) -> Vec<Value> {
    payloads(&String::from_utf8(export_bytes(Path::new(data))).unwrap())
}

/// (row, column letter) of each `error: row N, column … (X): …` line.
fn error_cells(stderr_text: &str) -> Vec<(u64, String)> {
    stderr_text
        .lines()
        .filter_map(|line| line.strip_prefix("error: row "))
        .map(|rest| {
            let (row, rest) = rest.split_once(", column ").unwrap();
            let letter = rest.split_once(" (").unwrap().1.split_once(')').unwrap().0;
            (row.parse().unwrap(), letter.to_string())
        })
        .collect()
}

#[test]
fn household_rosters_in_utf8_gbk_and_xlsx_give_the_same_signed_events() {
    // Goal: the three encodings of one roster (spaces, full-width digits, lowercase x, grouped card
    // numbers) give byte-identical envelopes, with masked names and digests only.
    let mut bureau = Bureau::new();
    let mut files = Vec::new();
    for (roster, out) in
        [("households.csv", "h1.jsonl"), ("households_gbk.csv", "h2.jsonl"), ("households.xlsx", "h3.jsonl")]
    {
        let out = bureau.path(out);
        let args = bureau.household_args(roster);
        let output = bureau.run_with(args, &["--out", &out]);
        assert!(output.status.success(), "{roster}: {}", stderr(&output));
        files.push(std::fs::read_to_string(&out).unwrap());
    }
    assert_eq!(files[0], files[1], "GBK differs from UTF-8");
    assert_eq!(files[0], files[2], "xlsx differs from CSV");
    let events = payloads(&files[0]);
    let heads: Vec<&str> = events.iter().map(|p| p["body"]["head_name_masked"].as_str().unwrap()).collect();
    assert_eq!(heads, ["张*丰", "欧**明", "王*"]);
    assert_eq!(events[0]["id"], "hh-422822101201-0101");
    assert_eq!(events[0]["body"]["members"][1]["name_masked"], "张*明");
    assert_eq!(events[1]["body"]["card"]["card_masked"], "6299***********0121");
    assert_eq!(events[1]["body"]["card"]["bank"], "湖北农信建始支行");
}

#[test]
fn household_import_into_a_ledger_is_idempotent() {
    // Goal: importing the roster into a data directory appends three registrations; again, nothing.
    let mut bureau = Bureau::new();
    let data = bureau.ledger();
    let args = bureau.household_args("households.xlsx");
    let first = bureau.run_with(args.clone(), &["--data", &data]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).starts_with("3 household_register events appended, 0 already present"),
        "{}",
        stdout(&first)
    );
    let before = export_bytes(Path::new(&data));
    let again = bureau.run_with(args, &["--data", &data]);
    assert!(
        stdout(&again).starts_with("0 household_register events appended, 3 already present"),
        "{}",
        stdout(&again)
    );
    assert_eq!(export_bytes(Path::new(&data)), before);
}

#[test]
fn bad_household_rows_are_reported_by_row_and_column_and_nothing_is_imported() {
    // Goal: a wrong check digit, a card failing Luhn, a duplicate row and an impossible birth date are each
    // reported at their cell; nothing is imported unless --skip-bad-rows, which imports only the good household.
    let mut bureau = Bureau::new();
    let data = bureau.ledger();
    let before = export_bytes(Path::new(&data));
    let args = bureau.household_args("households_bad.csv");
    let output = bureau.run_with(args.clone(), &["--data", &data]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        error_cells(&stderr(&output)),
        [(2, "C".to_string()), (4, "E".to_string()), (6, "C".to_string()), (8, "C".to_string())]
    );
    assert!(stderr(&output).contains("row 6, column 身份证号 (C): the same ID number as row 5"));
    assert!(stderr(&output).contains("nothing was imported"));
    assert_eq!(export_bytes(Path::new(&data)), before, "a roster with errors changed the ledger");
    let skipped = bureau.run_with(args, &["--data", &data, "--skip-bad-rows"]);
    assert!(skipped.status.success(), "{}", stderr(&skipped));
    let registered: Vec<Value> = export_payloads(&data)
        .into_iter()
        .filter(|p| p["kind"] == "household_register")
        .map(|p| p["body"]["household_id"].clone())
        .collect();
    assert_eq!(registered, [json!("422822101201-0001"), json!("422822101201-0002"), json!("422822101201-0204")]);
}

#[test]
fn a_card_without_luhn_needs_its_bank_exempted() {
    // Goal: Luhn is checked by default; the rural credit card passes only with --no-luhn-bank naming its bank.
    let mut bureau = Bureau::new();
    let mut args = bureau.household_args("households.csv");
    let roster = args.pop().unwrap();
    args.truncate(args.len() - 2);
    args.extend(["--dry-run".to_string(), roster]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = bureau.run(&refs);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(error_cells(&stderr(&output)), [(4, "E".to_string())]);
    assert!(stderr(&output).contains("--no-luhn-bank"));
}

fn payout_ids(data: &str) -> Vec<String> {
    export_payloads(data)
        .into_iter()
        .filter(|p| p["kind"] == "payout" && p["id"].as_str().unwrap().starts_with("po-"))
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn importing_the_same_payout_roster_twice_pays_each_household_once() {
    // Goal: deterministic ids and payload bytes make a second import (GBK CSV, then the same roster as .xlsx)
    // an idempotent repeat: the ledger holds each payout once.
    let mut bureau = Bureau::new();
    let data = bureau.ledger_with_households();
    let args = bureau.payout_args("payouts_gbk.csv", &["422822/k1"]);
    let first = bureau.run_with(args.clone(), &["--data", &data]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).starts_with("3 payout events appended"), "{}", stdout(&first));
    assert!(stderr(&first).contains("total 1800.50 yuan (180050 fen)"), "{}", stderr(&first));
    assert!(stderr(&first).contains("warning: row 4, column 发放金额（元） (G): above the program standard"));
    let after_first = export_bytes(Path::new(&data));
    let second = bureau.run_with(args, &["--data", &data]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stdout(&second).starts_with("0 payout events appended, 3 already present"), "{}", stdout(&second));
    let xlsx = bureau.payout_args("payouts.xlsx", &["422822/k1"]);
    let third = bureau.run_with(xlsx, &["--data", &data]);
    assert!(third.status.success(), "{}", stderr(&third));
    assert_eq!(export_bytes(Path::new(&data)), after_first, "a repeated roster changed the ledger");
    let ids = payout_ids(&data);
    assert_eq!(
        ids,
        [
            "po-422822-dibao-2019-01-422822101201-0101",
            "po-422822-dibao-2019-01-422822101201-0102",
            "po-422822-dibao-2019-01-422822101201-0103"
        ]
    );
    let amounts: Vec<u64> = export_payloads(&data)
        .iter()
        .filter(|p| p["id"].as_str().unwrap().starts_with("po-"))
        .map(|p| p["body"]["amount_fen"].as_u64().unwrap())
        .collect();
    assert_eq!(amounts, [30000, 120050, 30000]);
    // The household found from the ID number alone (row without 户编号) carries that person's digest.
    let digest = bureau.ok(&["digest", "--pepper", &bureau.path("pepper.bin"), "--id", " 990101194910011059 "]);
    let third_payout = export_payloads(&data).into_iter().find(|p| p["id"] == ids[2]).unwrap();
    assert_eq!(third_payout["body"]["person_digest"].as_str().unwrap(), stdout(&digest).trim());
}

#[test]
fn bad_payout_rows_are_reported_by_row_and_column() {
    // Goal: a third decimal place, a card that is not the bound card, a wrong check digit and a duplicate
    // row are reported at their cells and nothing is paid; --skip-bad-rows pays only the good row.
    let mut bureau = Bureau::new();
    let data = bureau.ledger_with_households();
    let before = export_bytes(Path::new(&data));
    let args = bureau.payout_args("payouts_bad.csv", &["422822/k1"]);
    let output = bureau.run_with(args.clone(), &["--data", &data]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        error_cells(&stderr(&output)),
        [(2, "D".to_string()), (3, "C".to_string()), (4, "B".to_string()), (6, "A".to_string())]
    );
    assert!(stderr(&output).contains("row 2, column 金额 (D): an amount in yuan has at most two decimal places"));
    assert!(stderr(&output).contains("row 3, column 银行卡号 (C): not the card bound to household 422822101201-0102"));
    assert_eq!(export_bytes(Path::new(&data)), before);
    let skipped = bureau.run_with(args.clone(), &["--data", &data, "--skip-bad-rows"]);
    assert!(skipped.status.success(), "{}", stderr(&skipped));
    assert_eq!(payout_ids(&data), ["po-422822-dibao-2019-01-422822101201-0103"]);
    // Recording the card mismatch on purpose: the bank paid it, the ledger records it (and flags it).
    let recorded = bureau.run_with(args, &["--data", &data, "--skip-bad-rows", "--record-suspicious"]);
    assert!(recorded.status.success(), "{}", stderr(&recorded));
    assert!(stderr(&recorded).contains("(recorded; the ledger will flag it)"));
    assert_eq!(payout_ids(&data).len(), 2);
}

#[test]
fn payouts_at_the_dual_control_threshold_carry_two_signatures() {
    // Goal: with two finance keys, rows at or above DUAL_CONTROL_FEN are signed by both and the rest by the
    // first; with one key such a row is an error before anything is signed.
    let mut bureau = Bureau::new();
    let data = bureau.ledger_with_households();
    let second = sunledger::keys::generate("422822/k2");
    std::fs::write(bureau.key("422822/k2"), sunledger::keys::to_json(&second)).unwrap();
    let key_add = json!({"office_id": "422822", "key_id": "422822/k2", "roles": ["finance"],
        "public_key": sunledger::encoding::base64_encode(&second.public_key)});
    bureau.append(&data, "k2.jsonl", &payload("k2", "key_add", "422822", "2019-01-03", key_add), &["422822/k1"]);
    let big =
        json!({"program": "dibao", "amount_fen": 100_000_000u64, "budget_ref": "建财〔2019〕2号", "fiscal_year": 2019});
    let line = {
        let mut keys = keys();
        keys.insert("422822/k2".into(), second.signing_key().unwrap().clone());
        let signers: Vec<(String, ed25519_dalek::SigningKey)> =
            ["422822/k1", "422822/k2"].iter().map(|k| (k.to_string(), keys[*k].clone())).collect();
        let bytes = payload("a-big", "appropriate", "422822", "2019-01-03", big).into_bytes();
        sunledger::envelope::Envelope::sign(bytes, &signers).to_json()
    };
    let file = write_lines(bureau.dir.path(), "big.jsonl", &[line]);
    bureau.ok(&["import", "--data", &data, &file]);
    let roster = bureau.path("large.csv");
    std::fs::write(
        &roster,
        "户编号,银行卡号,金额\n422822101201-0101,6299001234567894,\"¥500,000.00\"\n422822101201-0103,6299005555666672,300\n",
    )
    .unwrap();
    let with_roster = |mut args: Vec<String>| {
        args.pop();
        args.push(roster.clone());
        args
    };
    let one_key = with_roster(bureau.payout_args("x", &["422822/k1"]));
    let refused = bureau.run_with(one_key, &["--data", &data]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(error_cells(&stderr(&refused)), [(2, "C".to_string())]);
    assert!(stderr(&refused).contains("needs dual control"));
    let two_keys = with_roster(bureau.payout_args("x", &["422822/k1", "422822/k2"]));
    let out = bureau.path("dual.jsonl");
    let written = bureau.run_with(two_keys.clone(), &["--data", &data, "--out", &out]);
    assert!(written.status.success(), "{}", stderr(&written));
    let signers: Vec<Vec<String>> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["signatures"].as_array().unwrap().iter().map(|s| s["keyid"].as_str().unwrap().to_string()).collect()
        })
        .collect();
    assert_eq!(signers, [vec!["422822/k1", "422822/k2"], vec!["422822/k1"]]);
    let appended = bureau.run_with(two_keys, &["--data", &data]);
    assert!(appended.status.success(), "{}", stderr(&appended));
    assert_eq!(payout_ids(&data).len(), 2);
}

#[test]
fn household_roster_goes_to_a_server() {
    // Goal: --server posts the signed registrations to a running service; again, they are repeats; a dead server is an error.
    let mut bureau = Bureau::new();
    let data = bureau.ledger();
    let server = support::http::TestServer::start(Path::new(&data), None);
    let url = format!("http://{}", server.addr);
    let args = bureau.household_args("households.csv");
    let first = bureau.run_with(args.clone(), &["--server", &url]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).starts_with("3 household_register events accepted"), "{}", stdout(&first));
    let again = bureau.run_with(args.clone(), &["--server", &url]);
    assert!(again.status.success(), "{}", stderr(&again));
    let export = support::http::get(server.addr, "/v1/export").text();
    assert_eq!(export.lines().count(), 30, "27 vector events and three households, once each");
    drop(server);
    let dead = bureau.run_with(args, &["--server", "http://127.0.0.1:9"]);
    assert_eq!(dead.status.code(), Some(2));
}

/// Every file under a directory, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn no_raw_identifier_or_full_name_leaves_the_process() {
    // Goal: after every command path (good rosters, bad rosters, dry runs, --out files, a ledger, digests of
    // bad input), no raw ID number, card number or full name of the fixtures appears in any output file, in the
    // decoded payloads, in the ledger's files, or in captured stdout/stderr.
    let mut bureau = Bureau::new();
    let data = bureau.ledger_with_households();
    for roster in ["households.csv", "households_gbk.csv", "households.xlsx", "households_bad.csv"] {
        let out = bureau.path(&format!("{roster}.jsonl"));
        let args = bureau.household_args(roster);
        bureau.run_with(args.clone(), &["--out", &out, "--skip-bad-rows"]);
        bureau.run_with(args.clone(), &["--dry-run"]);
        bureau.run_with(args, &["--data", &data]);
    }
    for roster in ["payouts_gbk.csv", "payouts.xlsx", "payouts_bad.csv"] {
        let out = bureau.path(&format!("{roster}.jsonl"));
        let args = bureau.payout_args(roster, &["422822/k1"]);
        bureau.run_with(args.clone(), &["--data", &data, "--dry-run"]);
        bureau.run_with(args.clone(), &["--data", &data, "--out", &out, "--skip-bad-rows"]);
        bureau.run_with(args.clone(), &["--out", &bureau.path(&format!("{roster}.nodata.jsonl"))]);
        bureau.run_with(args, &["--data", &data]);
    }
    let pepper = bureau.path("pepper.bin");
    bureau.run(&["digest", "--pepper", &pepper, "--id", "990101194910011050"]);
    bureau.run(&["digest", "--pepper", &pepper, "--card", "6299001111222234"]);
    let identifiers: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("identifiers.json")).unwrap()).unwrap();
    let secrets: Vec<String> = ["id_numbers", "card_numbers", "names"]
        .iter()
        .flat_map(|k| identifiers[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()))
        .collect();
    assert!(secrets.len() > 20);
    let mut texts: Vec<(String, String)> = Vec::new();
    for (i, output) in bureau.outputs.iter().enumerate() {
        texts.push((format!("stdout of command {i}"), String::from_utf8_lossy(&output.stdout).into_owned()));
        texts.push((format!("stderr of command {i}"), String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    let mut envelope_files = 0;
    for path in files_under(bureau.dir.path()) {
        let name = path.display().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if name.ends_with(".jsonl") {
            envelope_files += 1;
            let decoded: Vec<String> = payloads(&text).iter().map(Value::to_string).collect();
            texts.push((format!("payloads of {name}"), decoded.join("\n")));
        }
        texts.push((name, text));
    }
    assert!(envelope_files >= 6, "the commands wrote their files");
    let exported: Vec<String> = export_payloads(&data).iter().map(Value::to_string).collect();
    assert!(exported.len() > 27 + 3 + 3);
    texts.push(("export payloads".into(), exported.join("\n")));
    for (what, text) in &texts {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{what} contains a raw identifier or name");
        }
    }
}

#[test]
fn new_prints_a_valid_payload_of_every_kind() {
    // Goal: `sunledger new` builds each of the 16 kinds from FIELD=VALUE pairs, accepted by the payload parser,
    // with yuan amounts converted exactly; an appropriation it printed signs and imports.
    let digest = "a".repeat(64);
    let public_key = sunledger::encoding::base64_encode(&sunledger::keys::generate("x").public_key);
    let d = |field: &str| format!("{field}={digest}");
    let kinds: Vec<(&str, Vec<String>)> = vec![
        (
            "genesis",
            vec![
                "name=账本".into(),
                "root_keys.0.key_id=root/k1".into(),
                format!("root_keys.0.public_key={public_key}"),
                "log_key.key_id=log/k1".into(),
                format!("log_key.public_key={public_key}"),
                "currency=CNY".into(),
            ],
        ),
        (
            "office_register",
            vec![
                "office_id=o1".into(),
                "name=某村".into(),
                "level=village".into(),
                "parent=422822".into(),
                "region_code=422822101201".into(),
                "keys.0.key_id=o1/k1".into(),
                format!("keys.0.public_key={public_key}"),
                "keys.0.roles=registrar".into(),
            ],
        ),
        (
            "key_add",
            vec![
                "office_id=o1".into(),
                "key_id=o1/k2".into(),
                format!("public_key={public_key}"),
                "roles=admin,finance".into(),
            ],
        ),
        ("key_revoke", vec!["office_id=o1".into(), "key_id=o1/k2".into(), "reason=丢失".into()]),
        (
            "program_define",
            vec![
                "program_id=p".into(),
                "name=低保".into(),
                "earmarked=true".into(),
                "payee=household".into(),
                "standard=300".into(),
                "cap_per_year=3,600".into(),
                "period=month".into(),
            ],
        ),
        (
            "appropriate",
            vec!["program=p".into(), "amount=1200.50".into(), "budget_ref=b".into(), "fiscal_year=2019".into()],
        ),
        ("transfer", vec!["to_office=o2".into(), "program=p".into(), "amount=¥1,000".into(), "doc_ref=d".into()]),
        ("reallocate", vec!["from_program=p".into(), "to_program=q".into(), "amount=1".into(), "doc_ref=d".into()]),
        (
            "household_register",
            vec![
                "household_id=h".into(),
                "village=v".into(),
                "head_name_masked=张*".into(),
                d("members.0.person_digest"),
                "members.0.name_masked=张*".into(),
                d("card.card_digest"),
                "card.card_masked=6228********1234".into(),
                "card.bank=湖北农信".into(),
            ],
        ),
        ("household_update", vec!["household_id=h".into(), "status=exited".into(), format!("deceased={digest}")]),
        (
            "payout",
            vec![
                "household_id=h".into(),
                "program=p".into(),
                "amount=300".into(),
                "period=2019-01".into(),
                d("card_digest"),
            ],
        ),
        (
            "project_register",
            vec!["project_id=pr".into(), "program=p".into(), "name=茶园".into(), "budget=30,000".into()],
        ),
        (
            "expenditure",
            vec![
                "program=p".into(),
                "project_id=null".into(),
                "payee_id=x".into(),
                "payee_name=合作社".into(),
                "category=goods".into(),
                "amount=15000".into(),
                "doc_ref=d".into(),
            ],
        ),
        ("refund", vec!["ref_event=e1".into(), "amount=0.01".into(), "reason=退票".into()]),
        (
            "notice_publish",
            vec![
                "notice_id=n".into(),
                "scope=payout_roster".into(),
                "program=p".into(),
                "period=2019-01".into(),
                "households=h1,h2".into(),
                "from=2019-01-01".into(),
                "to=2019-01-07".into(),
                d("document_digest"),
            ],
        ),
        ("flag_review", vec!["flag_id=0123456789abcdef".into(), "status=confirmed".into(), "note=已核实".into()]),
    ];
    assert_eq!(kinds.len(), 16);
    for (kind, fields) in &kinds {
        let mut args = vec!["new", kind, "--ledger", LEDGER, "--office", "422822", "--at", "2019-01-05"];
        args.extend(fields.iter().map(String::as_str));
        let output = run(&args);
        assert!(output.status.success(), "{kind}: {}", stderr(&output));
        assert!(!output.stdout.ends_with(b"\n"), "the payload bytes end with the JSON");
        let parsed = sunledger::payload::parse_payload(&output.stdout).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(parsed.kind(), *kind);
    }
    let dir = tempfile::tempdir().unwrap();
    let data = vector_ledger(dir.path());
    let output = run(&[
        "new",
        "appropriate",
        "--ledger",
        LEDGER,
        "--office",
        "422822",
        "--at",
        "2019-01-05",
        "--id",
        "a1",
        "program=ranger",
        "amount=1200.50",
        "budget_ref=建财〔2019〕3号",
        "fiscal_year=2019",
    ]);
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["body"]["amount_fen"], 120050);
    let file =
        write_lines(dir.path(), "a1.jsonl", &[sign(std::str::from_utf8(&output.stdout).unwrap(), &["422822/k1"])]);
    let imported = run(&["import", "--data", data.to_str().unwrap(), &file]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let refused =
        run(&["new", "appropriate", "--ledger", LEDGER, "--office", "o", "--at", "2019-01-05", "amount=1.005"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("two decimal places"));
    let help = run(&["new", "--help"]);
    assert!(stdout(&help).contains("members.0.person_digest"), "the syntax is documented in --help");
}

#[test]
fn an_id_number_used_as_household_id_is_refused() {
    // Goal: a roster that numbers households by the head's ID number cannot put that number on the chain.
    let mut bureau = Bureau::new();
    let roster = bureau.path("by_id.csv");
    let id = "990101195603121017";
    std::fs::write(
        &roster,
        format!("户编号,姓名,身份证号,银行卡号,开户行,村\n{id},张三丰,{id},6299001234567894,邮储,422822101201\n"),
    )
    .unwrap();
    let mut args = bureau.household_args("x");
    args.pop();
    args.extend(["--dry-run".to_string(), roster]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = bureau.run(&refs);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(error_cells(&stderr(&output)), [(2, "A".to_string())]);
    assert!(!stderr(&output).contains(id) && !stdout(&output).contains(id));
}
