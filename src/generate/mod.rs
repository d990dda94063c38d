//! Deterministic synthetic ledgers (合成账本) for tests, the demo server and
//! the benchmarks.
//!
//! [`county_year`] builds a realistic county-year — 湖北省 → 恩施州 → 建始县
//! with its poverty office (扶贫办, registrar) and audit office (审计局),
//! townships, villages, a few hundred registered households, five programs
//! (低保, 教育资助, 生态护林员, 产业扶贫, 以工代赈), monthly funding passed
//! down within days, roster notices before every payout, projects in the
//! project library, refunds and household changes — and with `misuse` plants
//! one clear case of each SPEC §7 rule, listed in [`Generated::planted`].
//! [`province`] streams a province of many such counties, sealing envelopes
//! on all cores and writing them in chain order with flat memory.
//!
//! Owns: the synthetic data. Invariant: the same seed and options give
//! byte-identical lines and keys; every line is an envelope the validator
//! accepts in order (SPEC §4); clean data raises no SPEC §7 flag and misuse
//! data raises exactly the planted ones (tools/generate.md argues each rule).
//! Never: reads the clock or OS randomness, or writes raw ID or card numbers
//! (persons and cards are HMAC-SHA256 digests under a seed-derived pepper).

mod cli;
mod draft;
mod engine;
mod names;
mod plan;
mod random;
mod world;

pub use cli::{run_cli, GenerateCommand};
pub use world::{COUNTIES_MAX, PROGRAMS, VILLAGES_PER_COUNTY_MAX};

use ed25519_dalek::SigningKey;
use engine::LineSink;
use plan::World;
use std::io::{self, Write};
use world::{Calendar, Layout, PROGRAM_COUNT};

/// A county-year needs this many households for its guaranteed cases
/// (`plan::SLOTS` of them have a fixed fate) to be a small minority.
pub const COUNTY_HOUSEHOLDS_MIN: usize = 4 * plan::SLOTS;
/// A province run spans at most five years (the exit transition period).
pub const MONTHS_MAX: u32 = 60;
/// Start year of a province run.
pub const PROVINCE_START_YEAR: i32 = 2019;

/// Options of [`county_year`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountyOptions {
    pub villages: usize,
    pub households_per_village: usize,
    /// The calendar year; setup events are dated the December before.
    pub year: i32,
    /// Plant one case of each SPEC §7 rule.
    pub misuse: bool,
}

impl Default for CountyOptions {
    fn default() -> Self {
        CountyOptions { villages: 8, households_per_village: 40, year: 2019, misuse: false }
    }
}

impl CountyOptions {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=VILLAGES_PER_COUNTY_MAX).contains(&self.villages) {
            return Err(format!("villages must be 1..={VILLAGES_PER_COUNTY_MAX}"));
        }
        if !(1..=plan::HOUSEHOLDS_PER_VILLAGE_MAX).contains(&self.households_per_village) {
            return Err(format!("households per village must be 1..={}", plan::HOUSEHOLDS_PER_VILLAGE_MAX));
        }
        if self.villages * self.households_per_village < COUNTY_HOUSEHOLDS_MIN {
            return Err(format!("a county-year needs at least {COUNTY_HOUSEHOLDS_MIN} households"));
        }
        if !(2000..=9000).contains(&self.year) {
            return Err("year must be 2000..=9000".into());
        }
        Ok(())
    }
}

/// Options of [`province`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvinceOptions {
    pub counties: usize,
    pub villages_per_county: usize,
    pub households_per_village: usize,
    /// Months from January 2019, 1..=60.
    pub months: u32,
    /// The first `programs` of 低保, 教育资助, 生态护林员, 产业扶贫, 以工代赈 (1..=5).
    pub programs: usize,
}

impl Default for ProvinceOptions {
    fn default() -> Self {
        ProvinceOptions { counties: 10, villages_per_county: 8, households_per_village: 40, months: 12, programs: 5 }
    }
}

impl ProvinceOptions {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=COUNTIES_MAX).contains(&self.counties) {
            return Err(format!("counties must be 1..={COUNTIES_MAX}"));
        }
        if !(1..=VILLAGES_PER_COUNTY_MAX).contains(&self.villages_per_county) {
            return Err(format!("villages must be 1..={VILLAGES_PER_COUNTY_MAX}"));
        }
        if !(1..=plan::HOUSEHOLDS_PER_VILLAGE_MAX).contains(&self.households_per_village) {
            return Err(format!("households per village must be 1..={}", plan::HOUSEHOLDS_PER_VILLAGE_MAX));
        }
        if !(1..=MONTHS_MAX).contains(&self.months) {
            return Err(format!("months must be 1..={MONTHS_MAX}"));
        }
        if !(1..=PROGRAM_COUNT).contains(&self.programs) {
            return Err(format!("programs must be 1..={PROGRAM_COUNT}"));
        }
        Ok(())
    }
}

/// One planted misuse case: the flag SPEC §7 must raise for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planted {
    pub rule: &'static str,
    /// SPEC §7 subject kind: account, office, household, person, card, payee, project, event.
    pub subject_kind: &'static str,
    pub subject_id: String,
    /// What was planted, for people.
    pub what: String,
}

/// A generated county-year.
pub struct Generated {
    /// DSSE envelope lines in chain order, genesis first.
    pub lines: Vec<String>,
    /// Every key (root, log, each office's), derived from the seed and key id.
    pub keys: Vec<(String, SigningKey)>,
    /// The planted cases (empty without misuse).
    pub planted: Vec<Planted>,
    pub ledger_id: String,
    pub province: String,
    pub prefecture: String,
    /// The county finance bureau (财政局): receives funds, pays, spends.
    pub county: String,
    /// The poverty-alleviation office (扶贫办): registers households.
    pub poverty_office: String,
    /// The audit office (审计局): holds the auditor key.
    pub audit_office: String,
    pub townships: Vec<String>,
    pub villages: Vec<String>,
    pub programs: Vec<String>,
    pub households: usize,
}

/// What a province run wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvinceSummary {
    pub ledger_id: String,
    pub events: u64,
    pub households: u64,
    /// Every key the run used, with its derivation (seed, key id).
    pub keys: Vec<(String, SigningKey)>,
}

struct Collect(Vec<String>);

impl LineSink for Collect {
    fn accept(&mut self, lines: Vec<String>) -> io::Result<()> {
        self.0.extend(lines);
        Ok(())
    }
}

struct Stream<'a> {
    writer: io::BufWriter<&'a mut dyn Write>,
}

impl LineSink for Stream<'_> {
    fn accept(&mut self, lines: Vec<String>) -> io::Result<()> {
        for line in lines {
            self.writer.write_all(line.as_bytes())?;
            self.writer.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// A county-year for `seed`. Panics if the options fail [`CountyOptions::check`].
pub fn county_year(seed: u64, options: CountyOptions) -> Generated {
    if let Err(problem) = options.check() {
        panic!("county_year options: {problem}");
    }
    let world = World {
        seed,
        pepper: random::pepper(seed),
        ledger_id: format!("gen-county-{seed}"),
        layout: Layout::county_year(seed, options.villages),
        calendar: Calendar { start_year: options.year, months: 12 },
        households_per_village: options.households_per_village,
        programs: PROGRAM_COUNT,
        guaranteed_cases: true,
        misuse: options.misuse,
    };
    let mut sink = Collect(Vec::new());
    let (events, keyring) = engine::run(&world, &mut sink).expect("collecting lines cannot fail");
    assert_eq!(events as usize, sink.0.len());
    let county = &world.layout.counties[0];
    Generated {
        lines: sink.0,
        keys: keyring.into_list(),
        planted: world.planted(),
        ledger_id: world.ledger_id.clone(),
        province: world.layout.province.id.clone(),
        prefecture: world.layout.prefectures[0].id.clone(),
        county: county.finance.id.clone(),
        poverty_office: county.poverty.id.clone(),
        audit_office: county.audit.id.clone(),
        townships: county.townships.iter().map(|t| t.id.clone()).collect(),
        villages: county.villages.iter().map(|(v, _)| v.id.clone()).collect(),
        programs: PROGRAMS.iter().map(|p| p.id.to_string()).collect(),
        households: options.villages * options.households_per_village,
    }
}

/// Streams a province-scale ledger to `sink` in chain order.
pub fn province(seed: u64, options: ProvinceOptions, sink: &mut dyn Write) -> io::Result<ProvinceSummary> {
    options.check().map_err(|problem| io::Error::new(io::ErrorKind::InvalidInput, problem))?;
    let world = World {
        seed,
        pepper: random::pepper(seed),
        ledger_id: format!("gen-province-{seed}"),
        layout: Layout::province(seed, options.counties, options.villages_per_county),
        calendar: Calendar { start_year: PROVINCE_START_YEAR, months: options.months },
        households_per_village: options.households_per_village,
        programs: options.programs,
        guaranteed_cases: false,
        misuse: false,
    };
    let mut stream = Stream { writer: io::BufWriter::with_capacity(1 << 20, sink) };
    let (events, keyring) = engine::run(&world, &mut stream)?;
    stream.writer.flush()?;
    Ok(ProvinceSummary {
        ledger_id: world.ledger_id,
        events,
        households: (options.counties * options.villages_per_county * options.households_per_village) as u64,
        keys: keyring.into_list(),
    })
}

/// Keys in the format of vectors/keys.json: a JSON array of
/// `{"key_id","public_key","secret_key"}` (base64; the secret is the seed).
pub fn keys_json(keys: &[(String, SigningKey)]) -> String {
    let list: Vec<serde_json::Value> = keys
        .iter()
        .map(|(key_id, key)| {
            serde_json::json!({
                "key_id": key_id,
                "public_key": crate::encoding::base64_encode(key.verifying_key().as_bytes()),
                "secret_key": crate::encoding::base64_encode(key.as_bytes()),
            })
        })
        .collect();
    serde_json::to_string_pretty(&list).expect("keys serialise") + "\n"
}
