//! Projections against the known answers (vectors/flags.json,
//! vectors/balances.json), and the property that incremental projections
//! always equal a full rebuild from the chain.

mod support;
mod world;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use sunledger::ledger::{Ledger, OnRejection, Outcome};
use sunledger::payload::parse_payload;
use sunledger::policy::Policy;
use sunledger::projection::{Projections, Replay};
use sunledger::rules::evaluate;
use support::Prng;
use world::{card, person, vector_view, World, COUNTY, OTHER_COUNTY, PREFECTURE, PROVINCE};

fn read_json(name: &str) -> Value {
    let path = world::vectors().join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file")).expect("vector JSON")
}

/// The shape of vectors/balances.json, computed from the projections only.
fn balances_from_projections(projections: &Projections) -> Value {
    let sum = |f: fn(&sunledger::projection::Flows) -> u64| -> u64 {
        projections.accounts.values().map(|a| f(&a.flows)).sum()
    };
    let fund_accounts: BTreeMap<&String, u64> =
        projections.accounts.iter().map(|(id, account)| (id, account.lots_fen())).collect();
    json!({
        "appropriated_fen": sum(|f| f.appropriated_fen),
        "fund_accounts": fund_accounts,
        "paid_out_fen": sum(|f| f.paid_out_fen),
        "refunded_fen": sum(|f| f.refunds_in_fen),
        "spent_fen": sum(|f| f.spent_fen),
    })
}

fn vector_flags(projections: &Projections, state: &sunledger::state::State) -> Value {
    let flags = serde_json::to_value(evaluate(projections, state, &Policy::default())).expect("flags serialise");
    Value::Array(flags.as_array().expect("array").iter().map(vector_view).collect())
}

#[test]
fn envelopes_reproduce_flags_and_balances() {
    // Goal: importing vectors/envelopes.jsonl (all accepted) gives exactly the
    // flags of vectors/flags.json (rule, subject, evidence, flag_id, review)
    // and the balances of vectors/balances.json, computed from the lots.
    let (ledger, _directory) = world::import_file(&world::vectors().join("envelopes.jsonl"));
    assert_eq!(vector_flags(ledger.projections(), ledger.state()), read_json("flags.json"));
    assert_eq!(balances_from_projections(ledger.projections()), read_json("balances.json"));
    assert!(ledger.projections().balances_match(ledger.state()));
}

#[test]
fn chain_records_replay_to_the_same_projections() {
    // Goal: a pure fold of vectors/chain.jsonl (records, no validation, no
    // event index) gives the flags and balances of the known answers and the
    // very projections the ledger built while importing the envelopes.
    let text = std::fs::read_to_string(world::vectors().join("chain.jsonl")).expect("chain.jsonl");
    let mut replay = Replay::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let record = sunledger::chain::parse_export_line(line.as_bytes()).expect("chain record");
        let payload = parse_payload(&record.envelope.payload).expect("payload");
        replay.push(record.seq, &payload, sunledger::encoding::sha256(&record.envelope.payload));
    }
    assert_eq!(vector_flags(&replay.projections, &replay.state), read_json("flags.json"));
    assert_eq!(balances_from_projections(&replay.projections), read_json("balances.json"));
    let (ledger, _directory) = world::import_file(&world::vectors().join("envelopes.jsonl"));
    assert_eq!(&replay.projections, ledger.projections());
}

const PROGRAMS: [&str; 5] = ["dibao", "ranger", "edu", "grant", "industry"];
const MONEY_OFFICES: [&str; 4] = [PROVINCE, PREFECTURE, COUNTY, OTHER_COUNTY];
const CATEGORIES: [&str; 6] = ["construction", "goods", "services", "admin", "vehicle", "work_relief"];

/// What the generator remembers of events it made (to refund them later).
#[derive(Default)]
struct Memory {
    spends: Vec<(String, String, u64)>, // id, office, amount
    households: Vec<String>,
    projects: Vec<String>,
    day: i32,
}

fn date(day: i32) -> String {
    sunledger::date::Date::parse("2019-01-01").expect("date").add_days(day).to_string()
}

/// One random event, mostly valid against the ledger's current state.
fn random_event(rng: &mut Prng, world: &mut World, ledger: &Ledger, memory: &mut Memory) {
    // Dates mostly advance, sometimes step back (business dates need not be monotonic).
    memory.day = (memory.day + rng.below(20) as i32 - 3).max(0);
    let at = date(memory.day);
    let balance = |office: &str, program: &str| ledger.state().balance(&format!("{office}/{program}"));
    let program = *rng.pick(&PROGRAMS);
    let household = rng.pick(&memory.households).clone();
    match rng.below(14) {
        0 | 1 => {
            let id = world.next_id();
            world.appropriate(&id, PROVINCE, program, 1 + rng.below(5_000_000), &at);
        }
        2 | 3 => {
            let from = *rng.pick(&MONEY_OFFICES[..3]);
            let to = *rng.pick(&MONEY_OFFICES);
            let held = balance(from, program);
            if from != to && held > 0 {
                let id = world.next_id();
                world.transfer(&id, from, to, program, 1 + rng.below(held), &at);
            }
        }
        4 => {
            let office = *rng.pick(&MONEY_OFFICES);
            let to = *rng.pick(&PROGRAMS);
            let held = balance(office, program);
            if to != program && held > 0 {
                let id = world.next_id();
                world.reallocate(&id, office, program, to, 1 + rng.below(held), &at);
            }
        }
        5..=7 => {
            let held = balance(COUNTY, program);
            if held > 0 {
                let id = world.next_id();
                let period = format!("2019-{:02}", 1 + rng.below(12));
                let period = if rng.below(3) == 0 { "2019".to_string() } else { period };
                let amount = (1 + rng.below(held)).min(40_000 + rng.below(3) * 200_000);
                if rng.below(8) == 0 {
                    let other = card(&format!("stray{}", rng.below(3)));
                    let paid = Some(person(&format!("p{}", rng.below(12))));
                    world.payout_to(&id, &at, &household, program, &period, amount, &other, paid.as_deref());
                } else {
                    world.payout(&id, &at, &household, program, &period, amount);
                }
                memory.spends.push((id, COUNTY.to_string(), amount));
            }
        }
        8 => {
            if let Some((id, _, amount)) = memory.spends.get(rng.below(memory.spends.len().max(1) as u64) as usize) {
                let (id, amount) = (id.clone(), *amount);
                let refunded = ledger.state().refunded_by_event.get(&id).copied().unwrap_or(0);
                if refunded < amount {
                    let refund_id = world.next_id();
                    world.refund(&refund_id, &at, &id, 1 + rng.below(amount - refunded));
                }
            }
        }
        9 => {
            let held = balance(COUNTY, program);
            if held > 0 {
                // Sometimes a project registered only later: unlisted now, and
                // its refund must not be charged to it once it exists.
                let project = match rng.below(5) {
                    0 => None,
                    1 => Some(format!("J{}", memory.projects.len())),
                    _ => memory.projects.first().cloned(),
                };
                let id = world.next_id();
                let amount = 1 + rng.below(held);
                let category = *rng.pick(&CATEGORIES);
                let payee = format!("P{}", rng.below(3));
                world.expenditure(&id, &at, program, project.as_deref(), &payee, category, amount);
                memory.spends.push((id, COUNTY.to_string(), amount));
            }
        }
        10 => {
            let body = match rng.below(5) {
                0 => json!({"status": *rng.pick(&["enrolled", "exited", "removed"]), "reason": "核查"}),
                1 => json!({"deceased": [person(&format!("p{}", rng.below(12)))]}),
                2 => json!({"card": World::card_body(&format!("shared{}", rng.below(4)))}),
                3 => {
                    json!({"add_members": [{"person_digest": person(&format!("p{}", rng.below(12))), "name_masked": "李*"}]})
                }
                _ => json!({"remove_members": [person(&format!("p{}", rng.below(12)))]}),
            };
            let id = world.next_id();
            world.update(&id, &household, &at, body);
        }
        11 => {
            let id = world.next_id();
            let office = *rng.pick(&[COUNTY, PREFECTURE, OTHER_COUNTY]);
            let listed: Vec<&str> =
                memory.households.iter().take(1 + rng.below(4) as usize).map(String::as_str).collect();
            let from = date(memory.day - rng.below(15) as i32);
            let to = date(memory.day - rng.below(10) as i32 + 5);
            let (from, to) = if from <= to { (from, to) } else { (to, from) };
            let period = (rng.below(2) == 0).then(|| format!("2019-{:02}", 1 + rng.below(12)));
            world.notice(&id, office, program, period.as_deref(), &listed, &from, &to);
        }
        12 => {
            let id = world.next_id();
            let number = memory.households.len();
            let household = format!("R{number}");
            world.register(&id, &household, &at, &[&format!("p{}", rng.below(12))], &format!("shared{}", rng.below(4)));
            memory.households.push(household);
        }
        _ => {
            let id = world.next_id();
            if rng.below(2) == 0 {
                let project = format!("J{}", memory.projects.len());
                world.project(&id, COUNTY, &project, program, 1 + rng.below(10_000_000), &at);
                memory.projects.push(project);
            } else {
                world.review(&id, &at, &format!("{:016x}", rng.next()), "confirmed", "抽查");
            }
        }
    }
}

/// The projections and the serialised flags of a fresh replay of the store.
fn rebuilt(ledger: &Ledger) -> (Projections, String) {
    let replay = sunledger::report::replay_store(ledger.store()).expect("replay");
    let flags = serde_json::to_string(&evaluate(&replay.projections, &replay.state, &Policy::default())).expect("json");
    assert!(replay.projections.balances_match(&replay.state));
    (replay.projections, flags)
}

/// SPEC §1 conservation per account: received − passed on − paid − spent = held.
fn accounts_conserve(projections: &Projections) {
    for (id, account) in &projections.accounts {
        let f = &account.flows;
        assert_eq!(f.received_fen() - f.passed_on_fen() - f.paid_out_fen - f.spent_fen, account.lots_fen(), "{id}");
    }
}

#[test]
fn incremental_projections_equal_a_full_rebuild_after_every_step() {
    // Goal: for random streams of events appended in random group sizes, the
    // ledger's incremental projections equal (and serialise byte-identically
    // to) a fresh replay of the stored chain after every step, also across a
    // snapshot and reopen; flags agree; and accounts conserve money.
    const SEEDS: [u64; 4] = [1, 2, 3, 4];
    const STEPS: usize = 80;
    let mut rules_seen = std::collections::BTreeSet::new();
    for seed in SEEDS {
        let mut rng = Prng(seed);
        let mut world = World::new();
        let base = world.envelopes.len();
        let mut memory = Memory { households: world::BASE_HOUSEHOLDS.map(String::from).to_vec(), ..Memory::default() };
        let directory = tempfile::tempdir().expect("temporary directory");
        let mut ledger = Ledger::open(directory.path()).expect("open");
        let lines: Vec<&[u8]> = world.envelopes.iter().map(|(_, b)| b.as_slice()).collect();
        ledger.append_group(&lines, OnRejection::Stop).expect("append base world");
        let (mut offered, mut accepted) = (0usize, 0usize);
        for step in 0..STEPS {
            let before = world.envelopes.len();
            for _ in 0..1 + rng.below(4) {
                random_event(&mut rng, &mut world, &ledger, &mut memory);
            }
            let group: Vec<&[u8]> = world.envelopes[before..].iter().map(|(_, b)| b.as_slice()).collect();
            let outcomes = ledger.append_group(&group, OnRejection::KeepGoing).expect("append");
            offered += outcomes.len();
            accepted += outcomes.iter().filter(|o| matches!(o, Outcome::Appended { .. })).count();
            if step % 10 == 9 {
                ledger.save_snapshot().expect("snapshot");
                drop(ledger);
                ledger = world::reopen(directory.path());
            }
            let (projections, flags) = rebuilt(&ledger);
            assert_eq!(&projections, ledger.projections(), "seed {seed} step {step}");
            assert_eq!(
                serde_json::to_vec(&projections).expect("json"),
                serde_json::to_vec(ledger.projections()).expect("json"),
                "seed {seed} step {step}"
            );
            let incremental = evaluate(ledger.projections(), ledger.state(), &Policy::default());
            assert_eq!(serde_json::to_string(&incremental).expect("json"), flags, "seed {seed} step {step}");
            accounts_conserve(ledger.projections());
        }
        // The stream must exercise the ledger, not just be refused.
        assert!(accepted * 10 >= offered * 8, "seed {seed}: only {accepted} of {offered} accepted");
        assert!(world.envelopes.len() - base > STEPS, "seed {seed}: too few events");
        let flags = evaluate(ledger.projections(), ledger.state(), &Policy::default());
        assert!(flags.len() >= 5, "seed {seed}: the stream raised only {} flags", flags.len());
        rules_seen.extend(flags.iter().map(|f| f.rule));
        // Two independent replays give byte-identical output.
        let (first, first_flags) = rebuilt(&ledger);
        let (second, second_flags) = rebuilt(&ledger);
        assert_eq!(serde_json::to_vec(&first).expect("json"), serde_json::to_vec(&second).expect("json"));
        assert_eq!(first_flags, second_flags);
    }
    // Across the seeds the streams reach most rules, so the comparison covers their state.
    assert!(rules_seen.len() >= 12, "only {rules_seen:?} were exercised");
}

#[test]
fn rebuild_command_reports_a_match() {
    // Goal: `rebuild` on an intact ledger (after snapshot and reopen) matches.
    let (mut ledger, directory) = world::import_file(&world::vectors().join("envelopes.jsonl"));
    ledger.save_snapshot().expect("snapshot");
    drop(ledger);
    let ledger = world::reopen(directory.path());
    assert_eq!(sunledger::report::rebuild(&ledger), Ok(0));
}

/// Runs the real binary; returns (exit code, stdout, stderr).
fn sunledger(args: &[&str]) -> (i32, String, String) {
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_sunledger")).args(args).output().expect("run sunledger");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    (output.status.code().expect("exit code"), text(output.stdout), text(output.stderr))
}

fn json_out(args: &[&str]) -> Value {
    let (code, stdout, stderr) = sunledger(args);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

#[test]
fn cli_reports_over_the_vector_ledger() {
    // Goal: the report commands honour their contract on the vector ledger:
    // flags (filters, policy file, errors), account, household (no digests
    // in the human view), summary, rebuild, and their exit codes.
    let directory = tempfile::tempdir().expect("temporary directory");
    let data = directory.path().join("data");
    let data = data.to_str().expect("UTF-8 path");
    let envelopes = world::vectors().join("envelopes.jsonl");
    let (code, _, stderr) = sunledger(&["import", "--data", data, envelopes.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");

    let flags = json_out(&["flags", "--data", data, "--json"]);
    let view: Vec<Value> = flags.as_array().unwrap().iter().map(vector_view).collect();
    assert_eq!(Value::Array(view), read_json("flags.json"));
    let subjects = |args: &[&str]| -> Vec<String> {
        let flags = json_out(args);
        flags.as_array().unwrap().iter().map(|f| f["subject"]["id"].as_str().unwrap().to_string()).collect()
    };
    // 422800/ranger was credited by a transfer of 420000: it belongs to both.
    assert_eq!(subjects(&["flags", "--data", data, "--json", "--office", "422800"]), ["422800/ranger"]);
    assert_eq!(
        subjects(&["flags", "--data", data, "--json", "--office", "420000"]),
        ["420000/ranger", "422800/ranger"]
    );
    assert!(subjects(&["flags", "--data", data, "--json", "--office", "422822"]).is_empty());
    assert!(subjects(&["flags", "--data", data, "--json", "--rule", "idle_funds"]).is_empty());
    assert_eq!(sunledger(&["flags", "--data", data, "--rule", "nope"]).0, 2);
    assert_eq!(sunledger(&["flags", "--data", data, "--office", "nowhere"]).0, 2);
    let (code, stdout, _) = sunledger(&["flags", "--data", data]);
    assert_eq!(code, 0);
    assert!(stdout.contains("层层截留 stalled_pass_through") && stdout.contains("980000.00 yuan"), "{stdout}");

    // A policy file: --policy, then policy.toml in the data directory by default.
    let lenient = directory.path().join("lenient.toml");
    std::fs::write(&lenient, "[defaults]\npass_through_days = 60\n").unwrap();
    assert!(subjects(&["flags", "--data", data, "--json", "--policy", lenient.to_str().unwrap()]).is_empty());
    let broken = directory.path().join("broken.toml");
    std::fs::write(&broken, "[defaults]\npass_through_dayz = 60\n").unwrap();
    let (code, _, stderr) = sunledger(&["flags", "--data", data, "--policy", broken.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown key `pass_through_dayz`"), "{stderr}");
    std::fs::copy(&lenient, std::path::Path::new(data).join("policy.toml")).unwrap();
    assert!(subjects(&["flags", "--data", data, "--json"]).is_empty());
    std::fs::remove_file(std::path::Path::new(data).join("policy.toml")).unwrap();

    let account = json_out(&["account", "--data", data, "--json", "420000/ranger"]);
    assert_eq!(account["balance_fen"], 98_000_000);
    assert_eq!(account["lots"], json!([{"seq": 9, "at": "2018-11-02", "amount_fen": 98_000_000, "age_days": 49}]));
    assert_eq!(account["flows"]["passed_on_fen"], 2_000_000);
    assert_eq!(sunledger(&["account", "--data", data, "420000/nothing"]).0, 1);

    let household = json_out(&["household", "--data", data, "--json", "422822101201-0002"]);
    assert_eq!(household["card"]["card_masked"], "6217********4321");
    assert_eq!(
        household["payouts_by_program_period"],
        json!([{"program": "ranger", "period": "2018", "net_fen": 400_000}])
    );
    let (code, stdout, _) = sunledger(&["household", "--data", data, "422822101201-0001"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("张*三") && stdout.contains("6228********1234"), "{stdout}");
    for digest in ["1111111111111111", "2222222222222222", "aaaaaaaaaaaaaaaa"] {
        assert!(!stdout.contains(digest), "the human view shows a digest: {stdout}");
    }
    assert_eq!(sunledger(&["household", "--data", data, "nobody"]).0, 1);

    let summary = json_out(&["summary", "--data", data, "--json", "--office", "422800"]);
    let rows: Vec<(&str, u64, u64)> = summary
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["office"].as_str().unwrap(), r["received_fen"].as_u64().unwrap(), r["held_fen"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        rows,
        [("422800", 2_000_000, 800_000), ("422822", 5_000_000, 3_500_000), ("422822", 1_600_000, 400_000)]
    );
    let (code, stdout, _) = sunledger(&["rebuild", "--data", data]);
    assert_eq!((code, stdout.starts_with("match")), (0, true), "{stdout}");
}

#[test]
fn rebuild_detects_a_tampered_snapshot() {
    // Goal: when the stored projections differ from the chain (a snapshot
    // edited behind the ledger's back: a review removed), `rebuild` reports a
    // mismatch naming the part, with exit code 1.
    let (mut ledger, directory) = world::import_file(&world::vectors().join("envelopes.jsonl"));
    ledger.save_snapshot().expect("snapshot");
    let stored = ledger.store().snapshot().unwrap().unwrap();
    let mut snapshot = sunledger::ledger::Snapshot::decode(&stored).expect("the snapshot decodes");
    assert_eq!(snapshot.projections.reviews.len(), 1);
    snapshot.projections.reviews.clear();
    let tampered = sunledger::ledger::Snapshot::encode(&snapshot.last_hash, &snapshot.state, &snapshot.projections);
    let group = sunledger::store::CommitGroup {
        snapshot: Some(tampered.unwrap()),
        head: Some(ledger.head().clone()),
        ..Default::default()
    };
    ledger.store().commit(group).expect("commit");
    drop(ledger);
    let ledger = world::reopen(directory.path());
    assert!(ledger.projections().reviews.is_empty());
    assert_eq!(sunledger::report::rebuild(&ledger), Ok(1));
}

#[test]
fn refund_lands_where_its_expenditure_was_charged() {
    // Goal: the writer finds where a refund lands from the refunded event
    // itself (no map of every expenditure), and that agrees with what was
    // decided when the expenditure was folded in: an expenditure naming a
    // project registered only later was not charged to it, so its refund is
    // not either; one naming a registered project of its office and program
    // was, and so is its refund. Both in one commit group, in separate
    // groups, and across a snapshot and reopen, and equal to a replay.
    for same_group in [true, false] {
        let mut world = World::new();
        world.appropriate("ap", PROVINCE, "industry", 10_000_000, "2019-01-02");
        world.transfer("tr1", PROVINCE, PREFECTURE, "industry", 10_000_000, "2019-01-03");
        world.transfer("tr2", PREFECTURE, COUNTY, "industry", 10_000_000, "2019-01-04");
        world.project("pj-early", COUNTY, "EARLY", "industry", 5_000_000, "2019-01-05");
        world.expenditure("ex-early", "2019-01-06", "industry", Some("EARLY"), "P1", "construction", 300_000);
        world.expenditure("ex-late", "2019-01-06", "industry", Some("LATE"), "P1", "construction", 200_000);
        world.project("pj-late", COUNTY, "LATE", "industry", 5_000_000, "2019-01-07");
        let split = world.envelopes.len();
        world.refund("rf-early", "2019-01-08", "ex-early", 100_000);
        world.refund("rf-late", "2019-01-08", "ex-late", 50_000);
        let directory = tempfile::tempdir().expect("temporary directory");
        let mut ledger = Ledger::open(directory.path()).expect("open");
        let lines: Vec<&[u8]> = world.envelopes.iter().map(|(_, b)| b.as_slice()).collect();
        let groups = if same_group { vec![&lines[..]] } else { vec![&lines[..split], &lines[split..]] };
        for group in groups {
            let outcomes = ledger.append_group(group, OnRejection::Stop).expect("append");
            assert!(outcomes.iter().all(|o| matches!(o, Outcome::Appended { .. })), "{outcomes:?}");
        }
        let check = |projections: &Projections, what: &str| {
            let (early, late) = (&projections.projects["EARLY"], &projections.projects["LATE"]);
            assert_eq!((early.spent_fen, early.refunded_fen), (300_000, 100_000), "{what}");
            assert_eq!((late.spent_fen, late.refunded_fen), (0, 0), "{what}");
            assert_eq!(projections.accounts[&format!("{COUNTY}/industry")].flows.refunds_in_fen, 150_000, "{what}");
        };
        check(ledger.projections(), "writer");
        let (rebuilt, _) = rebuilt(&ledger);
        check(&rebuilt, "replay");
        assert_eq!(&rebuilt, ledger.projections());
        ledger.save_snapshot().expect("snapshot");
        drop(ledger);
        check(world::reopen(directory.path()).projections(), "reopened");
    }
}
