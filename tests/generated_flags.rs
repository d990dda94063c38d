//! The generated county-year against the rules: the clean one raises zero
//! flags, the one with planted misuse raises exactly the planted flags.

use std::collections::BTreeSet;
use sunledger::generate::{county_year, CountyOptions};
use sunledger::ledger::{Ledger, OnRejection, Outcome};
use sunledger::policy::Policy;

fn flags_of(lines: &[String]) -> BTreeSet<(String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("data")).unwrap();
    for chunk in lines.chunks(1000) {
        let slices: Vec<&[u8]> = chunk.iter().map(|l| l.as_bytes()).collect();
        let outcomes = ledger.append_group(&slices, OnRejection::Stop).unwrap();
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Appended { .. })), "{:?}", outcomes.last());
    }
    sunledger::rules::evaluate(ledger.projections(), ledger.state(), &Policy::default())
        .into_iter()
        .map(|f| (f.rule.name().to_string(), f.subject.kind.name().to_string(), f.subject.id))
        .collect()
}

#[test]
fn clean_county_year_raises_no_flag() {
    // Goal: a realistic county-year that follows every rule raises zero flags (two seeds).
    for seed in [1, 42] {
        let generated = county_year(seed, CountyOptions::default());
        assert!(generated.planted.is_empty());
        let flags = flags_of(&generated.lines);
        assert!(flags.is_empty(), "seed {seed}: {flags:?}");
    }
}

#[test]
fn planted_misuse_raises_exactly_the_planted_flags() {
    // Goal: each planted case raises its flag, and nothing else fires.
    let generated = county_year(7, CountyOptions { misuse: true, ..CountyOptions::default() });
    let planted: BTreeSet<(String, String, String)> = generated
        .planted
        .iter()
        .map(|p| (p.rule.to_string(), p.subject_kind.to_string(), p.subject_id.clone()))
        .collect();
    assert_eq!(planted.len(), 17, "one case per rule");
    assert_eq!(flags_of(&generated.lines), planted);
}
