//! The misuse rules (SPEC §7): the known answers of vectors/rules/, one
//! positive and one near-miss case at each rule's boundary, review
//! attachment, and the policy file.
//!
//! Each case builds a small ledger on top of `world::World` (genesis, a
//! province → prefecture → county → village tree, programs, households
//! H1–H8), imports it (every event must be accepted) and compares the
//! complete set of flags — rule, subject and evidence (by event id) — so a
//! case also fails when some other rule fires by accident.

mod world;

use serde_json::{json, Value};
use sunledger::encoding::flag_id;
use sunledger::payload::ReviewStatus;
use sunledger::policy::{Policy, Thresholds, PARAMETERS};
use sunledger::rules::{Flag, Rule, Severity};
use world::{card, person, World, AUDITOR, BASE_DATE, BASE_HOUSEHOLDS, COUNTY, OTHER_COUNTY, PREFECTURE, PROVINCE};

/// A flag expected: rule, subject (`card:L` / `person:L` name test digests),
/// evidence as event ids.
type Expected<'a> = (&'a str, &'a str, &'a [&'a str]);

fn subject_id(label: &str) -> String {
    if let Some(label) = label.strip_prefix("card:") {
        return card(label);
    }
    if let Some(label) = label.strip_prefix("person:") {
        return person(label);
    }
    label.to_string()
}

/// Imports `world` and requires exactly the `expected` flags; checks every
/// flag's id against SPEC §7 and that its evidence ascends.
fn check_with(case: &str, world: &World, policy: &Policy, expected: &[Expected<'_>]) -> Vec<Flag> {
    let imported = world.import();
    let flags = imported.flags(policy);
    for flag in &flags {
        assert!(flag.evidence.windows(2).all(|w| w[0] < w[1]), "{case}: evidence not ascending: {flag:?}");
        let id = flag_id(flag.rule.name(), flag.subject.kind.name(), &flag.subject.id, flag.evidence[0]);
        assert_eq!(flag.flag_id, id, "{case}");
        assert!(flag.message.starts_with(&format!("{} {}: ", flag.rule.chinese(), flag.rule.name())), "{case}");
    }
    let got: Vec<(String, String, Vec<u64>)> =
        flags.iter().map(|f| (f.rule.name().to_string(), f.subject.id.clone(), f.evidence.clone())).collect();
    let mut want: Vec<(String, String, Vec<u64>)> = expected
        .iter()
        .map(|(rule, subject, ids)| {
            let mut seqs: Vec<u64> = ids.iter().map(|id| imported.seq(id)).collect();
            seqs.sort_unstable();
            (rule.to_string(), subject_id(subject), seqs)
        })
        .collect();
    want.sort();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want, "{case}: flags differ (got {got:?})");
    flags
}

fn check(case: &str, world: &World, expected: &[Expected<'_>]) -> Vec<Flag> {
    check_with(case, world, &Policy::default(), expected)
}

/// `base` plus `days` calendar days.
fn day(base: &str, days: i32) -> String {
    sunledger::date::Date::parse(base).expect("date").add_days(days).to_string()
}

/// The base world with money at the county for every household program on
/// `fund_on`, and (if `notices`) a 9-day roster notice per program listing
/// H1–H8 with no period, so payouts from `fund_on` + 9 days are covered.
fn payout_world(fund_on: &str, notices: bool) -> World {
    let mut world = World::new();
    for program in ["dibao", "ranger", "edu", "grant"] {
        world.fund(&format!("f-{program}"), COUNTY, program, 10_000_000, fund_on);
        if notices {
            let id = format!("n-{program}");
            world.notice(&id, COUNTY, program, None, &BASE_HOUSEHOLDS, fund_on, &day(fund_on, 8));
        }
    }
    world
}

#[test]
fn rule_vector_files() {
    // Goal: each vectors/rules/<rule>.jsonl imports with zero rejections and
    // raises exactly the flags of <rule>.flags.json (rule, subject, evidence,
    // flag_id) — the positive case fires, the near miss stays quiet, and no
    // other flag appears.
    let directory = world::vectors().join("rules");
    let mut files = 0;
    for rule in Rule::ALL {
        let path = directory.join(format!("{}.jsonl", rule.name()));
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(directory.join(format!("{}.flags.json", rule.name()))).unwrap(),
        )
        .unwrap();
        let (ledger, _directory) = world::import_file(&path);
        let flags = sunledger::rules::evaluate(ledger.projections(), ledger.state(), &Policy::default());
        let got: Vec<Value> =
            serde_json::to_value(&flags).unwrap().as_array().unwrap().iter().map(world::vector_view).collect();
        assert_eq!(Value::Array(got), expected, "{}", rule.name());
        assert!(flags.iter().any(|f| f.rule == rule), "{} does not fire in its own file", rule.name());
        files += 1;
    }
    assert_eq!(files, 17);
}

#[test]
fn idle_funds() {
    // Goal: a lot still held 365 days is idle (364 is not); from 730 days the
    // flag is high; only lots still held count, as of the ledger clock.
    let case = |clock: &str| {
        let mut world = World::new();
        world.fund("f", COUNTY, "industry", 1_000, "2019-01-02");
        world.clock(clock);
        world
    };
    let flags = check("365 days", &case("2020-01-02"), &[("idle_funds", "422822/industry", &["f-2"])]);
    assert_eq!((flags[0].severity, flags[0].amount_fen), (Severity::Medium, 1_000));
    check("364 days", &case("2020-01-01"), &[]);
    let flags = check("730 days", &case("2021-01-01"), &[("idle_funds", "422822/industry", &["f-2"])]);
    assert_eq!(flags[0].severity, Severity::High);
    let flags = check("729 days", &case("2020-12-31"), &[("idle_funds", "422822/industry", &["f-2"])]);
    assert_eq!(flags[0].severity, Severity::Medium);
    // The older lot is spent (FIFO), so only the newer one is idle.
    let mut world = World::new();
    world.fund("old", COUNTY, "industry", 1_000, "2019-01-02");
    world.fund("new", COUNTY, "industry", 700, "2019-01-05");
    world.project("pr", COUNTY, "P1", "industry", 10_000, "2019-01-05");
    world.expenditure("x", "2019-01-06", "industry", Some("P1"), "X1", "construction", 1_200);
    world.clock("2020-01-05");
    let flags = check("FIFO", &world, &[("idle_funds", "422822/industry", &["new-2"])]);
    assert_eq!(flags[0].amount_fen, 500);
}

#[test]
fn stalled_pass_through() {
    // Goal: at province/prefecture level, a lot held more than 30 days before
    // moving on is flagged with [credit, debit]; one still held more than 30
    // days with [credit]; 30 days is fine; county level is not checked.
    let moved = |on: &str| {
        let mut world = World::new();
        world.appropriate("a", PROVINCE, "industry", 200, "2019-01-01");
        world.transfer("t", PROVINCE, PREFECTURE, "industry", 200, on);
        world.transfer("t2", PREFECTURE, COUNTY, "industry", 200, on);
        world
    };
    check("moved after 31 days", &moved("2019-02-01"), &[("stalled_pass_through", "420000/industry", &["a", "t"])]);
    check("moved after 30 days", &moved("2019-01-31"), &[]);
    let held = |clock: &str| {
        let mut world = World::new();
        world.fund("f", PREFECTURE, "edu", 100, "2019-01-01");
        world.clock(clock);
        world
    };
    check("held 31 days", &held("2019-02-01"), &[("stalled_pass_through", "422800/edu", &["f-1"])]);
    check("held 30 days", &held("2019-01-31"), &[]);
    let mut world = World::new();
    world.fund("f", COUNTY, "edu", 100, "2019-01-01");
    world.clock("2019-06-01");
    check("county level", &world, &[]);
    // Part moved late and the rest still held join one flag.
    let mut world = moved("2019-02-01");
    world.appropriate("b", PROVINCE, "industry", 50, "2019-02-01");
    world.clock("2019-03-05");
    let flags = check("joined", &world, &[("stalled_pass_through", "420000/industry", &["a", "t", "b"])]);
    assert_eq!(flags[0].amount_fen, 250);
}

#[test]
fn off_tree_transfer() {
    // Goal: a transfer to a sibling is off the tree; up to a parent or down
    // past a level is not.
    let mut world = World::new();
    world.fund("f", COUNTY, "industry", 1_000, "2019-01-02");
    world.appropriate("a", PROVINCE, "industry", 100, "2019-01-02");
    world.transfer("skip", PROVINCE, COUNTY, "industry", 100, "2019-01-02");
    world.transfer("side", COUNTY, OTHER_COUNTY, "industry", 100, "2019-01-05");
    world.transfer("up", COUNTY, PREFECTURE, "industry", 100, "2019-01-05");
    let flags = check("tree", &world, &[("off_tree_transfer", "side", &["side"])]);
    assert_eq!(flags[0].amount_fen, 100);
}

#[test]
fn cross_program_diversion() {
    // Goal: reallocating from an earmarked program, or by an office above
    // county level, is diversion; a county integrating a non-earmarked
    // program (into an earmarked one) is not.
    let mut world = World::new();
    world.fund("fd", COUNTY, "dibao", 1_000, "2019-01-02");
    world.fund("fi", COUNTY, "industry", 1_000, "2019-01-02");
    world.fund("fp", PREFECTURE, "industry", 1_000, "2019-01-02");
    world.reallocate("from-earmarked", COUNTY, "dibao", "industry", 100, "2019-01-05");
    world.reallocate("integration", COUNTY, "industry", "edu", 100, "2019-01-05");
    world.reallocate("prefecture", PREFECTURE, "industry", "edu", 100, "2019-01-05");
    world.transfer("on", PREFECTURE, COUNTY, "edu", 100, "2019-01-05");
    world.transfer("on2", PREFECTURE, COUNTY, "industry", 900, "2019-01-05");
    check(
        "reallocations",
        &world,
        &[
            ("cross_program_diversion", "from-earmarked", &["from-earmarked"]),
            ("cross_program_diversion", "prefecture", &["prefecture"]),
        ],
    );
}

#[test]
fn forbidden_expenditure() {
    // Goal: exactly the six forbidden categories are flagged, one flag per expenditure.
    const CATEGORIES: [(&str, bool); 13] = [
        ("construction", false),
        ("goods", false),
        ("services", false),
        ("work_relief", false),
        ("insurance", false),
        ("interest_subsidy", false),
        ("admin", true),
        ("salary", true),
        ("vehicle", true),
        ("building", true),
        ("hospitality", true),
        ("lending", true),
        ("other", false),
    ];
    let mut world = World::new();
    world.fund("f", COUNTY, "industry", 10_000, "2019-01-02");
    world.project("pr", COUNTY, "P1", "industry", 10_000, "2019-01-03");
    let ids: Vec<String> = CATEGORIES.iter().map(|(c, _)| format!("x-{c}")).collect();
    for ((category, _), id) in CATEGORIES.iter().zip(&ids) {
        world.expenditure(id, "2019-01-04", "industry", Some("P1"), "X1", category, 100);
    }
    let evidence: Vec<[&str; 1]> = ids.iter().map(|id| [id.as_str()]).collect();
    let expected: Vec<Expected<'_>> = CATEGORIES
        .iter()
        .zip(&ids)
        .zip(&evidence)
        .filter(|(((_, forbidden), _), _)| *forbidden)
        .map(|((_, id), evidence)| ("forbidden_expenditure", id.as_str(), &evidence[..]))
        .collect();
    check("categories", &world, &expected);
}

#[test]
fn unlisted_project() {
    // Goal: no project, an unregistered one, another office's or program's,
    // or beyond the budget is flagged; exactly the budget is not, and budget
    // use is net of refunds.
    let mut world = World::new();
    world.fund("f", COUNTY, "industry", 10_000, "2019-01-02");
    world.project("pr1", COUNTY, "P1", "industry", 1_000, "2019-01-03");
    world.project("pr2", OTHER_COUNTY, "P2", "industry", 1_000, "2019-01-03");
    world.project("pr3", COUNTY, "P3", "edu", 1_000, "2019-01-03");
    world.expenditure("none", "2019-01-04", "industry", None, "X1", "construction", 100);
    world.expenditure("unknown", "2019-01-04", "industry", Some("P9"), "X1", "construction", 100);
    world.expenditure("other-county", "2019-01-04", "industry", Some("P2"), "X1", "construction", 100);
    world.expenditure("other-program", "2019-01-04", "industry", Some("P3"), "X1", "construction", 100);
    world.expenditure("within", "2019-01-04", "industry", Some("P1"), "X1", "construction", 1_000);
    check(
        "library",
        &world,
        &[
            ("unlisted_project", "none", &["none"]),
            ("unlisted_project", "unknown", &["unknown"]),
            ("unlisted_project", "other-county", &["other-county"]),
            ("unlisted_project", "other-program", &["other-program"]),
        ],
    );
    world.expenditure("over", "2019-01-04", "industry", Some("P1"), "X1", "construction", 1);
    let flags = check(
        "one fen over",
        &world,
        &[
            ("unlisted_project", "none", &["none"]),
            ("unlisted_project", "unknown", &["unknown"]),
            ("unlisted_project", "other-county", &["other-county"]),
            ("unlisted_project", "other-program", &["other-program"]),
            ("unlisted_project", "over", &["over"]),
        ],
    );
    assert_eq!(flags.iter().find(|f| f.subject.id == "over").unwrap().amount_fen, 1);
    let refunded = |second: u64| {
        let mut world = World::new();
        world.fund("f", COUNTY, "industry", 10_000, "2019-01-02");
        world.project("pr1", COUNTY, "P1", "industry", 1_000, "2019-01-03");
        world.expenditure("s1", "2019-01-04", "industry", Some("P1"), "X1", "construction", 1_000);
        world.refund("r1", "2019-01-05", "s1", 500);
        world.expenditure("s2", "2019-01-06", "industry", Some("P1"), "X1", "construction", second);
        world
    };
    check("refund frees budget", &refunded(500), &[]);
    check("beyond net budget", &refunded(501), &[("unlisted_project", "s2", &["s2"])]);
}

#[test]
fn ineligible_household() {
    // Goal: payouts to a household removed on or before the payout date, or
    // registered after it, or exited more than 1,825 days before, are
    // flagged; a removal dated later, an exit inside the transition period
    // and a re-enrolment are not. Status is a dated fact: the timeline of the
    // whole chain counts, so a removal recorded after the payout but dated
    // before it flags the payout too.
    let mut world = payout_world("2019-01-02", true);
    world.update("rm1", "H1", "2019-01-05", json!({"status": "removed", "reason": "清退"}));
    world.update("rm2", "H2", "2019-01-25", json!({"status": "removed", "reason": "清退"}));
    world.update("ex3", "H3", "2019-01-05", json!({"status": "exited"}));
    world.update("rm4", "H4", "2019-01-05", json!({"status": "removed"}));
    world.update("en4", "H4", "2019-01-10", json!({"status": "enrolled"}));
    world.register("reg-H9", "H9", "2019-02-01", &["H9"], "H9");
    world.notice("n9", COUNTY, "dibao", None, &["H9"], "2019-01-02", "2019-01-10");
    for household in ["H1", "H2", "H3", "H4", "H9"] {
        world.payout(&format!("p-{household}"), "2019-01-20", household, "dibao", "2019-01", 30_000);
    }
    check("statuses", &world, &[("ineligible_household", "H1", &["p-H1"]), ("ineligible_household", "H9", &["p-H9"])]);
    world.payout("p-H5", "2019-01-20", "H5", "dibao", "2019-01", 30_000);
    world.update("rm5-late", "H5", "2019-01-15", json!({"status": "removed", "reason": "补录清退"}));
    check(
        "backdated removal",
        &world,
        &[
            ("ineligible_household", "H1", &["p-H1"]),
            ("ineligible_household", "H5", &["p-H5"]),
            ("ineligible_household", "H9", &["p-H9"]),
        ],
    );
    let transition = |paid_on: &str| {
        let mut world = World::new();
        world.update("ex", "H1", "2019-01-01", json!({"status": "exited"}));
        world.fund("f", COUNTY, "dibao", 100_000, "2023-12-01");
        world.notice("n", COUNTY, "dibao", None, &["H1"], "2023-12-01", "2023-12-09");
        world.payout("p", paid_on, "H1", "dibao", "2023-12", 30_000);
        world
    };
    check("1,826 days after exit", &transition("2024-01-01"), &[("ineligible_household", "H1", &["p"])]);
    check("1,825 days after exit", &transition("2023-12-31"), &[]);
}

#[test]
fn deceased_payee() {
    // Goal: a payout for a period starting after the paid person's death, or
    // after every member's, is flagged; a death on or after the period start,
    // or of one member of two when no person is named, is not.
    let case = |died_on: &str| {
        let mut world = payout_world("2019-01-02", true);
        world.update("d", "H1", died_on, json!({"deceased": [person("H1")]}));
        world.payout("p", "2019-03-20", "H1", "dibao", "2019-03", 30_000);
        world
    };
    check("died before the period", &case("2019-02-10"), &[("deceased_payee", "H1", &["p"])]);
    check("died on the first day", &case("2019-03-01"), &[]);
    check("died after the start", &case("2019-03-15"), &[]);
    let mut world = payout_world("2019-01-02", true);
    world.register("reg-H9", "H9", "2019-01-02", &["a9", "b9"], "H9");
    world.notice("n9", COUNTY, "dibao", None, &["H9"], "2019-01-02", "2019-01-10");
    world.update("d", "H9", "2019-02-10", json!({"deceased": [person("a9")]}));
    world.payout("anyone", "2019-03-20", "H9", "dibao", "2019-03", 30_000);
    check("one of two members", &world, &[]);
    let card9 = card("H9");
    world.payout_to("named", "2019-04-20", "H9", "dibao", "2019-04", 30_000, &card9, Some(&person("a9")));
    check("the named person", &world, &[("deceased_payee", "H9", &["named"])]);
    world.update("d2", "H9", "2019-04-10", json!({"deceased": [person("b9")]}));
    world.payout("all", "2019-05-20", "H9", "dibao", "2019-05", 30_000);
    check("every member", &world, &[("deceased_payee", "H9", &["named", "all"])]);
    // Membership is as of the payout's place in ledger order; a death is a
    // dated fact, counted even when recorded after the payout.
    let mut world = payout_world("2019-01-02", true);
    world.register("reg-H9", "H9", "2019-01-02", &["a9", "b9"], "H9");
    world.notice("n9", COUNTY, "dibao", None, &["H9"], "2019-01-02", "2019-01-10");
    world.update("leave", "H9", "2019-02-01", json!({"remove_members": [person("b9")]}));
    world.payout("p", "2019-03-20", "H9", "dibao", "2019-03", 30_000);
    world.update(
        "back",
        "H9",
        "2019-03-25",
        json!({"add_members": [{"person_digest": person("b9"), "name_masked": "李*"}]}),
    );
    world.payout("p2", "2019-04-20", "H9", "dibao", "2019-04", 30_000);
    check("members before the payout", &world, &[]);
    world.update("d", "H9", "2019-02-10", json!({"deceased": [person("a9")]}));
    check("death recorded later", &world, &[("deceased_payee", "H9", &["p"])]);
}

#[test]
fn duplicate_payout() {
    // Goal: one household, program and period paid twice is flagged with both
    // payouts; a payout refunded in full does not count, a partly refunded
    // one does; other periods or programs are not duplicates.
    let mut world = payout_world("2019-01-02", true);
    world.payout("p1", "2019-01-20", "H1", "dibao", "2019-01", 30_000);
    world.payout("p2", "2019-01-21", "H1", "dibao", "2019-01", 30_000);
    world.payout("p3", "2019-01-20", "H2", "dibao", "2019-01", 30_000);
    world.refund("r3", "2019-01-22", "p3", 30_000);
    world.payout("p4", "2019-01-23", "H2", "dibao", "2019-01", 30_000);
    world.payout("p5", "2019-01-20", "H3", "dibao", "2019-01", 30_000);
    world.refund("r5", "2019-01-22", "p5", 29_999);
    world.payout("p6", "2019-01-23", "H3", "dibao", "2019-01", 30_000);
    world.payout("p7", "2019-01-20", "H4", "dibao", "2019-01", 30_000);
    world.payout("p8", "2019-02-20", "H4", "dibao", "2019-02", 30_000);
    world.payout("p9", "2019-01-20", "H5", "edu", "2019", 1_000);
    world.payout("p10", "2019-01-20", "H5", "ranger", "2019", 1_000);
    let flags = check(
        "duplicates",
        &world,
        &[("duplicate_payout", "H1", &["p1", "p2"]), ("duplicate_payout", "H3", &["p5", "p6"])],
    );
    assert_eq!(flags.iter().map(|f| f.amount_fen).collect::<Vec<_>>(), [30_000, 30_000]);
}

#[test]
fn over_standard() {
    // Goal: a payout above the program's standard, or a year's total net of
    // refunds above the cap, is flagged; exactly the standard or the cap is not.
    let mut world = payout_world("2019-01-02", true);
    world.payout("above", "2019-01-20", "H1", "dibao", "2019-01", 30_001);
    world.payout("exact", "2019-01-20", "H2", "dibao", "2019-01", 30_000);
    let quarters = [("Q1", "2019-03-20"), ("Q2", "2019-06-20"), ("Q3", "2019-09-20"), ("Q4", "2019-12-20")];
    for (household, last) in [("H3", 25_001), ("H4", 25_000)] {
        for (i, (quarter, on)) in quarters.iter().enumerate() {
            let amount = if i == 3 { last } else { 25_000 };
            world.payout(&format!("{household}-{quarter}"), on, household, "grant", &format!("2019-{quarter}"), amount);
        }
    }
    // Net of refunds: 30,000 − 5,000 + 3 × 25,000 = the cap.
    world.payout("H5-Q1", "2019-03-20", "H5", "grant", "2019-Q1", 30_000);
    world.refund("H5-r", "2019-03-25", "H5-Q1", 5_000);
    for (quarter, on) in &quarters[1..] {
        world.payout(&format!("H5-{quarter}"), on, "H5", "grant", &format!("2019-{quarter}"), 25_000);
    }
    let flags = check(
        "standard and cap",
        &world,
        &[("over_standard", "H1", &["above"]), ("over_standard", "H3", &["H3-Q1", "H3-Q2", "H3-Q3", "H3-Q4"])],
    );
    assert_eq!(flags.iter().map(|f| f.amount_fen).collect::<Vec<_>>(), [1, 1]);
}

#[test]
fn shared_card() {
    // Goal: one card bound at once to two households not removed is flagged
    // with their binding events; a card reused after its household's removal
    // is not — until that household is enrolled again.
    let mut world = World::new();
    world.register("reg-H9", "H9", "2019-01-02", &["H9"], "H1");
    world.update("rm2", "H2", "2019-01-03", json!({"status": "removed"}));
    world.register("reg-H10", "H10", "2019-01-04", &["H10"], "H2");
    world.update("card3", "H3", "2019-01-05", json!({"card": World::card_body("H4")}));
    world.update("rm5", "H5", "2019-01-03", json!({"status": "removed"}));
    world.register("reg-H11", "H11", "2019-01-04", &["H11"], "H5");
    let expected: [Expected<'_>; 2] =
        [("shared_card", "card:H1", &["reg-H1", "reg-H9"]), ("shared_card", "card:H4", &["reg-H4", "card3"])];
    check("bindings", &world, &expected);
    world.update("en5", "H5", "2019-01-06", json!({"status": "enrolled"}));
    check("re-enrolled", &world, &[expected[0], expected[1], ("shared_card", "card:H5", &["reg-H5", "reg-H11"])]);
}

#[test]
fn card_mismatch() {
    // Goal: a payout to a card other than the one bound at its place in
    // ledger order is flagged; a card change recorded before the payout is
    // respected, one recorded after it (even if dated before) is not.
    let mut world = payout_world("2019-01-02", true);
    world.payout_to("p1", "2019-01-20", "H1", "dibao", "2019-01", 30_000, &card("stranger"), None);
    world.update("c2", "H2", "2019-01-15", json!({"card": World::card_body("new2")}));
    world.payout("p2", "2019-01-20", "H2", "dibao", "2019-01", 30_000);
    world.update("c3", "H3", "2019-01-15", json!({"card": World::card_body("new3")}));
    world.payout_to("p3", "2019-01-20", "H3", "dibao", "2019-01", 30_000, &card("H3"), None);
    world.payout_to("p4", "2019-01-20", "H4", "dibao", "2019-01", 30_000, &card("new4"), None);
    world.update("c4", "H4", "2019-01-15", json!({"card": World::card_body("new4")}));
    check(
        "bindings",
        &world,
        &[("card_mismatch", "H1", &["p1"]), ("card_mismatch", "H3", &["p3"]), ("card_mismatch", "H4", &["p4"])],
    );
}

#[test]
fn duplicate_person() {
    // Goal: one person in two households not removed is flagged with the
    // events that listed them; a person who moved, or whose first household
    // was removed, is not.
    let mut world = World::new();
    world.register("reg-H9", "H9", "2019-01-02", &["H1"], "H9");
    world.update("rm-p2", "H2", "2019-01-03", json!({"remove_members": [person("H2")]}));
    world.update(
        "add-p2",
        "H3",
        "2019-01-04",
        json!({"add_members": [{"person_digest": person("H2"), "name_masked": "李*"}]}),
    );
    world.update(
        "add-p4",
        "H5",
        "2019-01-04",
        json!({"add_members": [{"person_digest": person("H4"), "name_masked": "李*"}]}),
    );
    world.update("rm6", "H6", "2019-01-03", json!({"status": "removed"}));
    world.register("reg-H10", "H10", "2019-01-04", &["H6"], "H10");
    check(
        "members",
        &world,
        &[
            ("duplicate_person", "person:H1", &["reg-H1", "reg-H9"]),
            ("duplicate_person", "person:H4", &["reg-H4", "add-p4"]),
        ],
    );
}

#[test]
fn outlier_payout() {
    // Goal: a payout above 5 × the median of at least 5 payouts by the same
    // office, program and period is flagged; exactly 5 × is not, and 4
    // payouts are too few for a median.
    let case = |amounts: &[u64]| {
        let mut world = payout_world("2019-01-02", true);
        for (household, amount) in BASE_HOUSEHOLDS.iter().zip(amounts) {
            world.payout(&format!("p-{household}"), "2019-01-20", household, "edu", "2019", *amount);
        }
        world
    };
    let eight = [100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 500_001, 500_000];
    check("eight payouts", &case(&eight), &[("outlier_payout", "H7", &["p-H7"])]);
    check("four payouts", &case(&[100_000, 100_000, 100_000, 600_000]), &[]);
    check(
        "five payouts",
        &case(&[100_000, 100_000, 100_000, 100_000, 600_000]),
        &[("outlier_payout", "H5", &["p-H5"])],
    );
    // An even count takes the mean of the two middle payouts: median 150,000.
    check("even median", &case(&[100_000, 100_000, 100_000, 200_000, 200_000, 750_000]), &[]);
    check(
        "even median, above",
        &case(&[100_000, 100_000, 100_000, 200_000, 200_000, 750_001]),
        &[("outlier_payout", "H6", &["p-H6"])],
    );
}

#[test]
fn structuring() {
    // Goal: three or more expenditures to one payee within 30 days, each in
    // [90%, 100%) of its category's tender threshold, are flagged together;
    // a 31-day spread, one at 89.9%, or one at the threshold breaks it.
    let mut world = World::new();
    world.fund("f", COUNTY, "industry", 4_000_000_000, "2019-01-02");
    world.project("pr", COUNTY, "P1", "industry", 9_000_000_000, "2019-01-03");
    let spend = |world: &mut World, payee: &str, category: &str, spends: &[(&str, u64)]| {
        for (i, (on, amount)) in spends.iter().enumerate() {
            world.expenditure(&format!("{payee}-{i}"), on, "industry", Some("P1"), payee, category, *amount);
        }
    };
    spend(
        &mut world,
        "SPLIT",
        "services",
        &[("2019-02-01", 90_000_000), ("2019-02-15", 99_999_999), ("2019-03-03", 95_000_000)],
    );
    spend(
        &mut world,
        "SPREAD",
        "services",
        &[("2019-04-01", 95_000_000), ("2019-04-20", 95_000_000), ("2019-05-02", 95_000_000)],
    );
    spend(
        &mut world,
        "NEAR",
        "services",
        &[("2019-02-01", 89_900_000), ("2019-02-05", 95_000_000), ("2019-02-09", 95_000_000)],
    );
    spend(
        &mut world,
        "EXACT",
        "goods",
        &[("2019-02-01", 200_000_000), ("2019-02-05", 190_000_000), ("2019-02-09", 190_000_000)],
    );
    spend(
        &mut world,
        "BUILD",
        "construction",
        &[("2019-02-01", 360_000_000), ("2019-02-05", 399_999_999), ("2019-02-09", 360_000_000)],
    );
    spend(
        &mut world,
        "OTHERS",
        "work_relief",
        &[("2019-02-01", 95_000_000), ("2019-02-05", 95_000_000), ("2019-02-09", 95_000_000)],
    );
    spend(
        &mut world,
        "GOODS",
        "goods",
        &[("2019-02-01", 179_999_999), ("2019-02-05", 190_000_000), ("2019-02-09", 190_000_000)],
    );
    check(
        "payees",
        &world,
        &[
            ("structuring", "BUILD", &["BUILD-0", "BUILD-1", "BUILD-2"]),
            ("structuring", "OTHERS", &["OTHERS-0", "OTHERS-1", "OTHERS-2"]),
            ("structuring", "SPLIT", &["SPLIT-0", "SPLIT-1", "SPLIT-2"]),
        ],
    );
}

#[test]
fn late_payout() {
    // Goal: a payout more than 30 days after its period ends is late; 30 days
    // is not (months and quarters alike).
    let mut world = payout_world("2019-01-02", true);
    world.payout("p1", "2019-03-03", "H1", "dibao", "2019-01", 30_000);
    world.payout("p2", "2019-03-02", "H2", "dibao", "2019-01", 30_000);
    world.payout("p3", "2019-05-01", "H3", "grant", "2019-Q1", 25_000);
    world.payout("p4", "2019-04-30", "H4", "grant", "2019-Q1", 25_000);
    check("days after the period", &world, &[("late_payout", "H1", &["p1"]), ("late_payout", "H3", &["p3"])]);
}

#[test]
fn paid_before_notice() {
    // Goal: a payout needs an earlier-recorded roster notice of the paying
    // office or an ancestor, for its program (and period if named), listing
    // the household, lasting ≥ 7 days and ending before the payout.
    let mut world = payout_world("2019-01-02", false);
    world.register("reg-H9", "H9", BASE_DATE, &["H9"], "H9");
    world.register("reg-H10", "H10", BASE_DATE, &["H10"], "H10");
    let notice =
        |world: &mut World, id: &str, office: &str, program: &str, period: Option<&str>, household: &str, to: &str| {
            world.notice(id, office, program, period, &[household], "2019-01-03", to);
        };
    notice(&mut world, "six-days", COUNTY, "dibao", None, "H1", "2019-01-08");
    notice(&mut world, "seven-days", COUNTY, "dibao", None, "H2", "2019-01-09");
    notice(&mut world, "ends-on-payday", COUNTY, "dibao", None, "H3", "2019-01-20");
    notice(&mut world, "other-period", COUNTY, "dibao", Some("2019-02"), "H4", "2019-01-12");
    notice(&mut world, "by-ancestor", PREFECTURE, "dibao", None, "H5", "2019-01-12");
    notice(&mut world, "by-sibling", OTHER_COUNTY, "dibao", None, "H7", "2019-01-12");
    notice(&mut world, "other-program", COUNTY, "edu", None, "H9", "2019-01-12");
    notice(&mut world, "same-period", COUNTY, "dibao", Some("2019-01"), "H10", "2019-01-12");
    for household in ["H1", "H2", "H3", "H4", "H5", "H6", "H7", "H8", "H9", "H10"] {
        world.payout(&format!("p-{household}"), "2019-01-20", household, "dibao", "2019-01", 30_000);
    }
    // Dated before the payout but recorded after it: too late.
    notice(&mut world, "recorded-late", COUNTY, "dibao", None, "H8", "2019-01-12");
    check(
        "notices",
        &world,
        &[
            ("paid_before_notice", "H1", &["p-H1"]),
            ("paid_before_notice", "H3", &["p-H3"]),
            ("paid_before_notice", "H4", &["p-H4"]),
            ("paid_before_notice", "H6", &["p-H6"]),
            ("paid_before_notice", "H7", &["p-H7"]),
            ("paid_before_notice", "H8", &["p-H8"]),
            ("paid_before_notice", "H9", &["p-H9"]),
        ],
    );
}

#[test]
fn latest_review_is_attached() {
    // Goal: a flag shows the latest flag_review of its id (status, note,
    // seq); reviews of other ids change nothing.
    let mut world = payout_world("2019-01-02", true);
    world.payout("p1", "2019-03-03", "H1", "dibao", "2019-01", 30_000);
    let first = world.import();
    let flag = &first.flags(&Policy::default())[0];
    assert_eq!(flag.review, None);
    let id = flag.flag_id.clone();
    world.review("rv1", "2019-03-04", &id, "under_review", "核查中");
    world.review("rv2", "2019-03-05", &id, "confirmed", "确认迟发");
    world.review("rv3", "2019-03-05", "ffffffffffffffff", "dismissed", "另一条");
    let flags = check("reviewed", &world, &[("late_payout", "H1", &["p1"])]);
    let imported = world.import();
    assert_eq!(flags[0].flag_id, id);
    assert_eq!(flags[0].review, Some(ReviewStatus::Confirmed));
    assert_eq!(flags[0].review_note.as_deref(), Some("确认迟发"));
    assert_eq!(flags[0].review_seq, Some(imported.seq("rv2")));
    let json = serde_json::to_value(&flags[0]).unwrap();
    assert_eq!(json["review"], "confirmed");
}

#[test]
fn flags_json_shape() {
    // Goal: a flag serialises with the SPEC §7 fields, in fen, with a message
    // carrying the Chinese rule name and no digest.
    let mut world = World::new();
    world.register("reg-H9", "H9", "2019-01-02", &["H9"], "H1");
    let flags = check("shared", &world, &[("shared_card", "card:H1", &["reg-H1", "reg-H9"])]);
    let json = serde_json::to_value(&flags[0]).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["amount_fen", "evidence", "flag_id", "message", "rule", "severity", "subject"]);
    assert_eq!(json["subject"], json!({"kind": "card", "id": card("H1")}));
    assert_eq!(json["severity"], "high");
    let message = json["message"].as_str().unwrap();
    assert!(message.starts_with("一卡多户 shared_card: card 6228********1234"), "{message}");
    assert!(!message.contains(&card("H1")[..16]), "{message}");
}

// ---------------------------------------------------------------- policy

fn policy(text: &str) -> Policy {
    Policy::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn refused(text: &str, needle: &str) {
    match Policy::parse(text) {
        Ok(_) => panic!("{text:?} was accepted"),
        Err(e) => assert!(e.0.contains(needle), "{text:?}: {e} does not mention {needle:?}"),
    }
}

#[test]
fn policy_defaults() {
    // Goal: an empty file is the SPEC §7 defaults, each with its source; the
    // example file parses.
    assert_eq!(policy(""), Policy::default());
    let t = Policy::default().resolve(&[COUNTY], "dibao");
    assert_eq!(t, Thresholds::default());
    let expected = [
        ("pass_through_days", 30),
        ("idle_days", 365),
        ("idle_severe_days", 730),
        ("roster_notice_days_min", 7),
        ("project_notice_days_min", 10),
        ("tender_construction_fen", 400_000_000),
        ("tender_goods_fen", 200_000_000),
        ("tender_services_fen", 100_000_000),
        ("structuring_band_low_percent", 90),
        ("structuring_band_high_percent", 100),
        ("structuring_window_days", 30),
        ("structuring_count_min", 3),
        ("outlier_median_multiple", 5),
        ("outlier_payouts_min", 5),
        ("late_payout_days", 30),
        ("transition_days", 1_825),
    ];
    let table: Vec<(&str, u64)> = PARAMETERS.iter().map(|p| (p.name, p.default)).collect();
    assert_eq!(table, expected);
    assert!(PARAMETERS.iter().all(|p| !p.source.is_empty()));
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/policy.example.toml")).unwrap();
    let example = policy(&example);
    assert_eq!(example.resolve(&[COUNTY, PREFECTURE, PROVINCE], "dibao").idle_days, 180);
    assert_eq!(example.resolve(&[COUNTY, PREFECTURE, PROVINCE], "edu").late_payout_days, 270);
    assert_eq!(example.resolve(&[PREFECTURE, PROVINCE], "edu").pass_through_days, 20);
}

#[test]
fn policy_resolution_order() {
    // Goal: default < [defaults] < [program.P] < ancestor offices (top down)
    // < the office itself.
    let p = policy(
        "[defaults]\nlate_payout_days = 10\n[program.dibao]\nlate_payout_days = 40\nidle_days = 100\n\
         [office.420000]\nidle_days = 200\npass_through_days = 5\n[office.422800]\nidle_days = 300\n",
    );
    let chain = [COUNTY, PREFECTURE, PROVINCE];
    assert_eq!(p.resolve(&chain, "edu").late_payout_days, 10);
    assert_eq!(p.resolve(&chain, "dibao").late_payout_days, 40);
    assert_eq!(p.resolve(&chain, "dibao").idle_days, 300);
    assert_eq!(p.resolve(&[PROVINCE], "dibao").idle_days, 200);
    assert_eq!(p.resolve(&[OTHER_COUNTY], "dibao").idle_days, 100);
    assert_eq!(p.resolve(&chain, "edu").pass_through_days, 5);
    assert_eq!(p.resolve(&[AUDITOR], "edu"), Thresholds { late_payout_days: 10, ..Thresholds::default() });
}

#[test]
fn policy_overrides_take_effect() {
    // Goal: per-program and per-office overrides change which flags fire.
    let mut world = payout_world("2019-01-02", true);
    world.payout("late", "2019-03-03", "H1", "dibao", "2019-01", 30_000);
    world.payout("late-edu", "2019-03-03", "H2", "edu", "2018", 1_000);
    world.clock("2019-05-01");
    let expected_late: [Expected<'_>; 2] = [("late_payout", "H1", &["late"]), ("late_payout", "H2", &["late-edu"])];
    check("defaults", &world, &expected_late);
    let program = policy("[program.dibao]\nlate_payout_days = 31\n");
    check_with("program override", &world, &program, &[expected_late[1]]);
    // The county's idle threshold, not its neighbours'.
    let office = policy("[office.422822]\nidle_days = 100\nidle_severe_days = 200\n");
    let programs = ["dibao", "ranger", "edu", "grant"];
    let accounts: Vec<String> = programs.iter().map(|p| format!("422822/{p}")).collect();
    let lots: Vec<[String; 1]> = programs.iter().map(|p| [format!("f-{p}-2")]).collect();
    let lot_ids: Vec<Vec<&str>> = lots.iter().map(|l| l.iter().map(String::as_str).collect()).collect();
    let mut expected = expected_late.to_vec();
    expected.extend(accounts.iter().zip(&lot_ids).map(|(a, l)| -> Expected<'_> { ("idle_funds", a, l) }));
    check_with("office override", &world, &office, &expected);
    let province = policy("[office.420000]\nidle_days = 100\n[office.422822]\nidle_days = 365\n");
    check_with("nearest office wins", &world, &province, &expected_late);
}

#[test]
fn policy_refuses_what_it_does_not_understand() {
    // Goal: unknown tables and keys, non-integers and impossible values are
    // errors that name the place.
    refused("[defaults]\nidel_days = 3\n", "unknown key `idel_days`");
    refused("[defualts]\nidle_days = 3\n", "unknown top-level key `defualts`");
    refused("idle_days = 3\n", "unknown top-level key `idle_days`");
    refused("program = 3\n", "`program` must be a table");
    refused("[program.dibao]\nlate_days = 3\n", "[program.dibao]: unknown key `late_days`");
    refused("[office.422822]\nidle_days = -1\n", "[office.422822]: `idle_days` = -1 is impossible");
    refused("[defaults]\nstructuring_band_low_percent = 101\n", "is impossible");
    refused("[defaults]\nstructuring_band_high_percent = 120\n", "is impossible");
    refused("[defaults]\nlate_payout_days = 1.5\n", "must be an integer");
    refused("[defaults]\nlate_payout_days = \"30\"\n", "must be an integer");
    refused("[defaults]\ntender_goods_fen = 0\n", "is impossible");
    refused("[defaults]\nstructuring_count_min = 0\n", "is impossible");
    refused("[defaults]\ntransition_days = 100000\n", "is impossible");
    refused("[defaults]\nidle_days = 800\n", "idle_severe_days (730) is below idle_days (800)");
    refused("[office.422822]\nidle_severe_days = 300\n", "[office.422822]: idle_severe_days");
    refused("[defaults]\nstructuring_band_low_percent = 100\n", "band [100%, 100%) is empty");
    refused("[office.\"a b\"]\nidle_days = 3\n", "is not an id");
    refused("[defaults]\nidle_days = 3\nidle_days = 4\n", "not valid TOML");
    // The boundaries themselves are allowed.
    policy("[defaults]\npass_through_days = 0\nstructuring_band_low_percent = 0\nstructuring_band_high_percent = 1\n");
}
