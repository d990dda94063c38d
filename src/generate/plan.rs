//! What happens in a generated ledger: households and their fates, projects,
//! the events of each county-month, and the planted misuse cases.
//!
//! Owns: every business decision of the generator. Invariant: a household,
//! project or event is a pure function of (seed, county, village, index,
//! month), so a province streams month by month without remembering
//! households, and a county-year with `misuse` differs from the clean one only
//! in its planted cases (12 households take planted roles, and a few county
//! and province events are added). Every clean choice stays clear of each SPEC §7 rule's
//! boundary (tools/generate.md gives the reasoning rule by rule).

use super::draft::{Body, Card, Draft, Effect, KeyGrant, Keyring, Member, NamedKey};
use super::names;
use super::random::{hmac_sha256, Rng};
use super::world::{
    Calendar, Layout, Office, AID_AMOUNTS_FEN, DIBAO, DIBAO_TIERS_FEN, EDU, INDUSTRY, PROGRAMS, RANGER, WORKRELIEF,
};
use super::Planted;
use crate::date::{Date, Period};
use crate::encoding::{hex, sha256};
use crate::validate::DUAL_CONTROL_FEN;

// Labels of the random streams (any distinct constants).
pub const TAG_LAYOUT: u64 = 1;
const TAG_HOUSEHOLD: u64 = 2;
const TAG_PERSON: u64 = 3;
const TAG_CARD: u64 = 4;
const TAG_CADRE_CARD: u64 = 5;
const TAG_PROJECT: u64 = 6;
const TAG_PAYEE: u64 = 7;

/// Households per village are numbered with four digits.
pub const HOUSEHOLDS_PER_VILLAGE_MAX: usize = 9999;
/// A roster notice lists at most this many households; larger rosters are
/// published in parts (a payload is at most 64 KiB, SPEC §3).
pub const NOTICE_HOUSEHOLDS_MAX: usize = 1000;

// Days of the month on which things happen. Funds arrive first (2nd–4th);
// rosters are posted 3rd–10th (8 days, SPEC §7 wants ≥ 7 and ending before
// the payout); payouts follow on the 15th–18th; corrections after.
const DAY_APPROPRIATE: u32 = 2;
const DAY_TO_PREFECTURE: u32 = 3;
const DAY_TO_COUNTY: u32 = 4;
const DAY_NOTICE_FROM: u32 = 3;
const DAY_NOTICE_TO: u32 = 10;
const DAY_CARD_CHANGE: u32 = 8;
const DAY_REALLOCATE: u32 = 8;
const DAY_PROJECT_REGISTER: u32 = 10;
/// A project notice runs from its day to 10 days later: 11 calendar days
/// (SPEC §9 asks at least 10 for projects).
const PROJECT_NOTICE_SPAN_DAYS: u32 = 10;
const DAY_MEMBER_CHANGE: u32 = 12;
const DAY_DIBAO: u32 = 15;
const DAY_EDU: u32 = 16;
const DAY_AID: u32 = 17;
const DAY_RANGER: u32 = 18;
const DAY_BOUNCE_REFUND: u32 = 19;
const DAY_BOUNCE_NEW_CARD: u32 = 20;
const DAY_BOUNCE_REPAY: u32 = 22;
const DAY_EXPENDITURE: u32 = 20;
const DAY_STATUS: u32 = 25;
const DAY_PROJECT_REFUND: u32 = 26;
const DAY_YEAR_END_NOTICE: u32 = 27;

/// Month-of-year targets of the once-a-year acts.
const MONTH_OF_YEAR_AID: u32 = 4;
const MONTH_OF_YEAR_RANGER: u32 = 12;
const MONTH_OF_YEAR_REALLOCATE: u32 = 5;
const MONTH_OF_YEAR_PROJECT_REGISTER: u32 = 1;
const MONTH_OF_YEAR_PROJECT_REFUND: u32 = 11;
const MONTH_OF_YEAR_INSTALLMENT_REFUNDED: u32 = 6;
const MONTH_OF_YEAR_YEAR_END: u32 = 12;
/// Share of a payment returned at settlement (工程结算审减).
const SETTLEMENT_REFUND_PERCENT: u64 = 5;
const INSTALLMENT_MONTHS_OF_YEAR: [u32; 3] = [3, 6, 9];
/// 统筹整合: the county moves this much from industry to work relief each May.
const INTEGRATION_FEN: u64 = 2_000_000;
/// Project budgets leave this much room (percent) over the planned spending.
const BUDGET_SLACK_PERCENT: u64 = 10;

/// SPEC §7 structuring thresholds (2018 tender thresholds), in fen. Clean
/// expenditures stay below `CLEAN_SHARE_OF_THRESHOLD_PERCENT` of them, far
/// from the [90%, 100%) band.
fn tender_threshold_fen(category: &str) -> u64 {
    match category {
        "construction" => 400_000_000,
        "goods" => 200_000_000,
        _ => 100_000_000,
    }
}
const CLEAN_SHARE_OF_THRESHOLD_PERCENT: u64 = 80;

// The planted cases of a county-year with misuse. Months are month indexes
// of the run (0 = January).
const INELIGIBLE_REMOVED_MONTH: u32 = 4;
const DECEASED_MONTH: u32 = 6;
const DUPLICATE_PAYOUT_MONTH: u32 = 8;
const DUPLICATE_PAYOUT_DAY: u32 = 25;
const OVER_STANDARD_MONTH: u32 = 6;
const OVER_STANDARD_FEN: u64 = 80_000;
const SHARED_CARD_MONTH: u32 = 2;
const CARD_MISMATCH_MONTH: u32 = 9;
const DUPLICATE_PERSON_MONTH: u32 = 3;
/// Above 5 × the largest possible median of clean aid payouts (5 × 300,000).
const OUTLIER_FEN: u64 = 1_800_000;
const LATE_PERIOD_MONTH: u32 = 2;
const LATE_PAID_MONTH: u32 = 4;
/// 6 May for March: 36 days after the period ends (SPEC §7: > 30).
const LATE_PAID_DAY: u32 = 6;
const UNNOTICED_MONTH: u32 = 10;
const CROSS_PROGRAM_MONTH: u32 = 5;
const CROSS_PROGRAM_FEN: u64 = 10_000_000;
const FORBIDDEN_MONTH: u32 = 6;
const FORBIDDEN_FEN: u64 = 18_000_000;
const FORBIDDEN_DAY: u32 = 21;
const OFF_TREE_MONTH: u32 = 7;
const OFF_TREE_FEN: u64 = 5_000_000;
const OFF_TREE_DAY: u32 = 9;
const UNLISTED_MONTH: u32 = 7;
const UNLISTED_FEN: u64 = 3_000_000;
const UNLISTED_DAY: u32 = 21;
const STRUCTURING_REGISTER_MONTH: u32 = 8;
const STRUCTURING_MONTH: u32 = 9;
/// Each in [90%, 100%) of the services threshold, within 21 days.
const STRUCTURING_PAYMENTS: [(u32, u64); 3] = [(5, 95_000_000), (14, 96_500_000), (26, 98_000_000)];
const STRUCTURING_BUDGET_FEN: u64 = 300_000_000;
const STALLED_MONTH: u32 = 8;
const STALLED_DAY: u32 = 6;
const STALLED_RELEASE_MONTH: u32 = 9;
/// 20 October for money received 7 September: 43 days at the prefecture.
const STALLED_RELEASE_DAY: u32 = 20;
const STALLED_FEN: u64 = 10_000_000;
/// Sent to a township in the December before the year and never used.
const IDLE_FEN: u64 = 20_000_000;

/// What happens to a household during the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Steady,
    /// 脱贫: status exited on the 25th; still paid (transition period).
    Exit(u32),
    /// 清退: status removed on the 25th; neither listed nor paid afterwards.
    Remove(u32),
    /// New card. `bounced`: that month's 低保 payout bounced off the old card
    /// and is refunded in full, then paid again to the new card.
    CardChange {
        month: u32,
        bounced: bool,
    },
    /// A member other than the head dies (the head keeps receiving).
    Death(u32),
    /// A child is born and added.
    Newborn(u32),
    Plant(Plant),
}

/// A planted misuse case (county-year with `misuse` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plant {
    Ineligible,
    Deceased,
    DuplicatePayout,
    OverStandard,
    SharedCardHolder,
    SharedCard,
    CardMismatch,
    DuplicatePersonSource,
    DuplicatePerson,
    Outlier,
    Late,
    Unnoticed,
}

/// Households of county 0 of a county-year whose fate is fixed so that every
/// kind of clean event (and, with misuse, every plant) occurs whatever the seed.
const CLEAN_SLOTS: [Fate; 7] = [
    Fate::CardChange { month: 2, bounced: true },
    Fate::CardChange { month: 5, bounced: false },
    Fate::Exit(5),
    Fate::Exit(8),
    Fate::Remove(3),
    Fate::Death(6),
    Fate::Newborn(4),
];
/// Households guaranteed an aid payout, so outlier_payout has ≥ 5 peers.
const AID_SLOTS: usize = 6;
const PLANT_SLOTS: [Plant; 12] = [
    Plant::Ineligible,
    Plant::Deceased,
    Plant::DuplicatePayout,
    Plant::OverStandard,
    Plant::SharedCardHolder,
    Plant::SharedCard,
    Plant::CardMismatch,
    Plant::DuplicatePersonSource,
    Plant::DuplicatePerson,
    Plant::Outlier,
    Plant::Late,
    Plant::Unnoticed,
];
pub const SLOTS: usize = CLEAN_SLOTS.len() + AID_SLOTS + PLANT_SLOTS.len();

#[derive(Clone, Copy)]
enum Special {
    Clean(Fate),
    Aid,
    Plant(Plant),
}

pub struct Household {
    pub county: usize,
    pub village: usize,
    pub index: usize,
    pub id: String,
    pub members: usize,
    pub dibao_fen: Option<u64>,
    pub edu: bool,
    pub ranger: bool,
    pub aid_fen: Option<u64>,
    pub fate: Fate,
}

impl Household {
    /// The month whose 25th removes the household, if any.
    fn removal_month(&self) -> Option<u32> {
        match self.fate {
            Fate::Remove(month) => Some(month),
            Fate::Plant(Plant::Ineligible) => Some(INELIGIBLE_REMOVED_MONTH),
            Fate::Plant(Plant::Deceased) => Some(DECEASED_MONTH + 1),
            _ => None,
        }
    }

    /// Whether this is the `plant` household and `month` is `planted_month`.
    fn planted(&self, plant: Plant, month: u32, planted_month: u32) -> bool {
        self.fate == Fate::Plant(plant) && month == planted_month
    }

    /// Listed and paid this month (payouts precede a removal on the 25th).
    fn on_roll(&self, month: u32) -> bool {
        match self.removal_month() {
            None => true,
            Some(removed) => month <= removed,
        }
    }
}

/// A project in the county project library (项目库).
pub struct Project {
    pub id: String,
    pub program: usize,
    pub name: String,
    pub village: String,
    pub payee_id: String,
    pub payee_name: String,
    /// (month of year, fen, category).
    pub installments: Vec<(u32, u64, &'static str)>,
    pub budget_fen: u64,
    /// The planted structuring contract (its payments sit in the band on purpose).
    pub planted: bool,
}

/// Everything fixed before the first event: the frame and the options.
pub struct World {
    pub seed: u64,
    pub pepper: [u8; 32],
    pub ledger_id: String,
    pub layout: Layout,
    pub calendar: Calendar,
    pub households_per_village: usize,
    /// The first `programs` of [`PROGRAMS`] take part.
    pub programs: usize,
    /// County 0 gets the guaranteed clean cases (a county-year).
    pub guaranteed_cases: bool,
    pub misuse: bool,
}

fn finance_signers(office: &Office, amount_fen: u64) -> Vec<String> {
    if amount_fen >= DUAL_CONTROL_FEN {
        vec![office.key1(), office.key2()]
    } else {
        vec![office.key1()]
    }
}

fn round_up(fen: u64, step: u64) -> u64 {
    fen.div_ceil(step) * step
}

impl World {
    pub fn has(&self, program: usize) -> bool {
        program < self.programs
    }

    fn slot(&self, county: usize, village: usize, index: usize) -> Option<Special> {
        if !self.guaranteed_cases || county != 0 {
            return None;
        }
        let slot = index * self.layout.counties[0].villages.len() + village;
        if slot < CLEAN_SLOTS.len() {
            return Some(Special::Clean(CLEAN_SLOTS[slot]));
        }
        if slot < CLEAN_SLOTS.len() + AID_SLOTS {
            return Some(Special::Aid);
        }
        let plant = slot - CLEAN_SLOTS.len() - AID_SLOTS;
        (self.misuse && plant < PLANT_SLOTS.len()).then(|| Special::Plant(PLANT_SLOTS[plant]))
    }

    /// (village, index) of a planted household of county 0.
    fn plant_position(&self, plant: Plant) -> (usize, usize) {
        let offset = PLANT_SLOTS.iter().position(|p| *p == plant).expect("every plant has a slot");
        let slot = CLEAN_SLOTS.len() + AID_SLOTS + offset;
        let villages = self.layout.counties[0].villages.len();
        (slot % villages, slot / villages)
    }

    pub fn household_id(&self, county: usize, village: usize, index: usize) -> String {
        format!("{}-{:04}", self.layout.counties[county].villages[village].0.id, index + 1)
    }

    pub fn household(&self, county: usize, village: usize, index: usize) -> Household {
        let mut rng = Rng::new(self.seed, &[TAG_HOUSEHOLD, county as u64, village as u64, index as u64]);
        let members = *rng.pick(&[1, 2, 2, 3, 3, 3, 4, 4, 5]);
        let dibao_fen = if rng.chance(350) { Some(*rng.pick(&DIBAO_TIERS_FEN)) } else { None };
        let edu = members >= 3 && rng.chance(350);
        let ranger = members >= 2 && rng.chance(80);
        let aid_fen = if rng.chance(150) { Some(*rng.pick(&AID_AMOUNTS_FEN)) } else { None };
        let fate = self.random_fate(&mut rng, members, dibao_fen.is_some());
        let mut household = Household {
            county,
            village,
            index,
            id: self.household_id(county, village, index),
            members,
            dibao_fen,
            edu,
            ranger,
            aid_fen,
            fate,
        };
        match self.slot(county, village, index) {
            None => {}
            Some(Special::Clean(fate)) => {
                household.fate = fate;
                household.dibao_fen = household.dibao_fen.or(Some(DIBAO_TIERS_FEN[0]));
                if matches!(fate, Fate::Death(_)) {
                    household.members = household.members.max(3);
                }
            }
            Some(Special::Aid) => {
                household.fate = Fate::Steady;
                household.aid_fen = household.aid_fen.or(Some(AID_AMOUNTS_FEN[2]));
            }
            Some(Special::Plant(plant)) => plant_household(&mut household, plant),
        }
        if !self.has(DIBAO) {
            household.dibao_fen = None;
        }
        household.edu &= self.has(EDU);
        household.ranger &= self.has(RANGER);
        if !self.has(INDUSTRY) {
            household.aid_fen = None;
        }
        household
    }

    fn random_fate(&self, rng: &mut Rng, members: usize, dibao: bool) -> Fate {
        let draw = rng.below(1000);
        let month = rng.between(1, u64::from(self.calendar.months.max(2) - 1)) as u32;
        let bounced = dibao && rng.chance(500);
        if self.calendar.months < 2 {
            return Fate::Steady;
        }
        match draw {
            0..=39 => Fate::Exit(month),
            40..=49 => Fate::Remove(month),
            50..=69 => Fate::CardChange { month, bounced },
            70..=84 if members >= 2 => Fate::Death(month),
            85..=99 => Fate::Newborn(month),
            _ => Fate::Steady,
        }
    }

    /// HMAC-SHA256 under the pepper of a synthetic identity. `owner` names
    /// the person or card slot uniquely, because synthetic numbers drawn at
    /// random can collide (two people born the same day with the same
    /// sequence digits), which would fake duplicate_person or shared_card.
    fn digest(&self, label: &str, owner: &str, number: &str) -> String {
        hex(&hmac_sha256(&self.pepper, format!("{label}:{owner}:{number}").as_bytes()))
    }

    /// Member `member` (0 = head): masked name and person digest.
    pub fn member(&self, household: &Household, member: usize) -> Member {
        let labels = |m: usize| {
            [TAG_PERSON, household.county as u64, household.village as u64, household.index as u64, m as u64]
        };
        let mut head_rng = Rng::new(self.seed, &labels(0));
        let head_name = names::person_name(&mut head_rng, None);
        let mut rng = if member == 0 { head_rng } else { Rng::new(self.seed, &labels(member)) };
        let year = self.calendar.start_year;
        let (name, birth_year) = match member {
            0 => (head_name.clone(), year - rng.between(30, 75) as i32),
            1 => (names::person_name(&mut rng, None), year - rng.between(28, 72) as i32),
            _ => (names::person_name(&mut rng, Some(&names::surname_of(&head_name))), year - rng.between(0, 19) as i32),
        };
        let region = &self.layout.counties[household.county].finance.region;
        let id_number = names::id_number(&mut rng, region, birth_year);
        let owner = format!("{}#{member}", household.id);
        Member { person_digest: self.digest("person", &owner, &id_number), name_masked: names::mask_name(&name) }
    }

    /// Card `version` of a household (0 at registration, 1 after a change).
    fn card_of(&self, county: usize, village: usize, index: usize, version: u64) -> Card {
        let mut rng = Rng::new(self.seed, &[TAG_CARD, county as u64, village as u64, index as u64, version]);
        let (number, bank) = names::card_number(&mut rng);
        let owner = format!("{}#{version}", self.household_id(county, village, index));
        Card {
            card_digest: self.digest("card", &owner, &number),
            card_masked: names::mask_card(&number),
            bank: bank.into(),
        }
    }

    /// A village cadre's own card (card_mismatch plant).
    fn cadre_card(&self, county: usize) -> Card {
        let mut rng = Rng::new(self.seed, &[TAG_CADRE_CARD, county as u64]);
        let (number, bank) = names::card_number(&mut rng);
        let owner = format!("cadre-{}", self.layout.counties[county].finance.id);
        Card {
            card_digest: self.digest("card", &owner, &number),
            card_masked: names::mask_card(&number),
            bank: bank.into(),
        }
    }

    /// The card bound to the household on `day` of `month`.
    fn card_at(&self, household: &Household, month: u32, day: u32) -> Card {
        let (c, v, i) = (household.county, household.village, household.index);
        match household.fate {
            Fate::CardChange { month: changed, bounced } => {
                let change_day = if bounced { DAY_BOUNCE_NEW_CARD } else { DAY_CARD_CHANGE };
                let version = u64::from((month, day) >= (changed, change_day));
                self.card_of(c, v, i, version)
            }
            Fate::Plant(Plant::SharedCard) if (month, day) >= (SHARED_CARD_MONTH, DAY_CARD_CHANGE) => {
                let (village, index) = self.plant_position(Plant::SharedCardHolder);
                self.card_of(0, village, index, 0)
            }
            _ => self.card_of(c, v, i, 0),
        }
    }

    /// County `county`'s projects of `year`, in registration order.
    pub fn projects(&self, county: usize, year: i32) -> Vec<Project> {
        let last = self.calendar.last_month_of_year(year);
        let mut months: Vec<u32> = INSTALLMENT_MONTHS_OF_YEAR.into_iter().filter(|m| *m <= last).collect();
        if months.is_empty() {
            months.push(last);
        }
        let mut projects = Vec::new();
        for (program, count) in [(INDUSTRY, 2), (WORKRELIEF, 2)] {
            if !self.has(program) {
                continue;
            }
            for n in 0..count {
                projects.push(self.project(county, year, program, n, &months));
            }
        }
        let first_year = year == self.calendar.start_year;
        if self.misuse && county == 0 && first_year && self.has(INDUSTRY) {
            // Room in the first industry project for the planted vehicle purchase.
            projects[0].budget_fen += FORBIDDEN_FEN;
        }
        if self.misuse && county == 0 && first_year && self.has(WORKRELIEF) {
            projects.push(self.structuring_project(county, year));
        }
        assert!(projects.iter().all(|p| p.planted
            || p.installments.iter().all(|(_, fen, category)| {
                fen * 100 < tender_threshold_fen(category) * CLEAN_SHARE_OF_THRESHOLD_PERCENT
            })));
        projects
    }

    fn project(&self, county: usize, year: i32, program: usize, n: usize, months: &[u32]) -> Project {
        let c = &self.layout.counties[county];
        let mut rng = Rng::new(self.seed, &[TAG_PROJECT, county as u64, year as u64, program as u64, n as u64]);
        let village = &rng.pick(&c.villages).0;
        // "业州镇茶山村民委员会" → "业州镇茶山村".
        let place = village.name.trim_end_matches("民委员会");
        let industry = program == INDUSTRY;
        let (templates, categories, fen_range): (&[&str], [&str; 3], (u64, u64)) = if industry {
            (
                &["茶叶基地建设", "香菇种植大棚", "中药材种植基地", "生猪代养场", "光伏扶贫电站"],
                ["goods", "construction", "services"],
                (500, 4500),
            )
        } else {
            (
                &["通组公路硬化", "安全饮水巩固提升工程", "农田灌溉渠道整治", "产业路建设"],
                ["construction", "work_relief", "construction"],
                (800, 6000),
            )
        };
        let name = format!("{place}{}", rng.pick(templates));
        let installments: Vec<(u32, u64, &'static str)> = months
            .iter()
            .enumerate()
            .map(|(k, month)| (*month, rng.between(fen_range.0, fen_range.1) * 10_000, categories[k % 3]))
            .collect();
        let planned: u64 = installments.iter().map(|(_, fen, _)| fen).sum();
        let budget_fen = round_up(planned * (100 + BUDGET_SLACK_PERCENT) / 100, 10_000);
        let mut payee_rng = Rng::new(self.seed, &[TAG_PAYEE, county as u64, year as u64, program as u64, n as u64]);
        let (payee_id, payee_name) = if industry {
            let code = names::credit_code(&mut payee_rng, true, &c.finance.region);
            (code, format!("{}{}种养殖专业合作社", c.short_name, names::place_name(&mut payee_rng, "")))
        } else {
            let code = names::credit_code(&mut payee_rng, false, &c.finance.region);
            (code, format!("湖北{}建设工程有限公司", names::place_name(&mut payee_rng, "")))
        };
        Project {
            id: format!("{}-{year}-{}-P{:02}", c.finance.id, PROGRAMS[program].id, n + 1),
            program,
            name,
            village: village.id.clone(),
            payee_id,
            payee_name,
            installments,
            budget_fen,
            planted: false,
        }
    }

    /// The planted consultancy contract split three ways (structuring).
    fn structuring_project(&self, county: usize, year: i32) -> Project {
        let c = &self.layout.counties[county];
        let mut rng = Rng::new(self.seed, &[TAG_PAYEE, county as u64, year as u64, 99]);
        let payee_id = names::credit_code(&mut rng, false, &c.finance.region);
        let month_of_year = self.calendar.month_of_year(STRUCTURING_MONTH);
        Project {
            id: format!("{}-{year}-{}-P09", c.finance.id, PROGRAMS[WORKRELIEF].id),
            program: WORKRELIEF,
            name: format!("{}以工代赈项目勘察设计及监理服务", c.short_name),
            village: c.villages[0].0.id.clone(),
            payee_id,
            payee_name: format!("湖北{}工程咨询有限公司", names::place_name(&mut rng, "")),
            installments: STRUCTURING_PAYMENTS.iter().map(|(_, fen)| (month_of_year, *fen, "services")).collect(),
            budget_fen: STRUCTURING_BUDGET_FEN,
            planted: true,
        }
    }

    /// The planted cases, with their SPEC §7 subjects.
    pub fn planted(&self) -> Vec<Planted> {
        if !self.misuse {
            return Vec::new();
        }
        let c = &self.layout.counties[0];
        let tag = |month: u32| self.calendar.tag(month);
        let year = self.calendar.start_year;
        let household = |plant| {
            let (village, index) = self.plant_position(plant);
            self.household_id(0, village, index)
        };
        let (holder_village, holder_index) = self.plant_position(Plant::SharedCardHolder);
        let (source_village, source_index) = self.plant_position(Plant::DuplicatePersonSource);
        let source = self.household(0, source_village, source_index);
        let structuring = self.structuring_project(0, year);
        let plant = |rule: &'static str, kind: &'static str, id: String, what: &str| Planted {
            rule,
            subject_kind: kind,
            subject_id: id,
            what: what.to_string(),
        };
        vec![
            plant("idle_funds", "account", format!("{}/industry", c.townships[0].id), "a township finance office holds industry money sent the December before, unused for over a year (资金闲置)"),
            plant("stalled_pass_through", "account", format!("{}/ranger", self.layout.prefectures[0].id), "the prefecture holds advance ranger money 43 days before passing it to the county (截留)"),
            plant("off_tree_transfer", "event", format!("xfer-{}-fpb-industry-{}", c.finance.id, tag(OFF_TREE_MONTH)), "the county finance bureau moves industry money to its sibling poverty office (违规转移)"),
            plant("cross_program_diversion", "event", format!("realloc-{}-{}-dibao-industry", c.finance.id, tag(CROSS_PROGRAM_MONTH)), "earmarked minimum-living-allowance money reallocated to industry (挤占挪用)"),
            plant("forbidden_expenditure", "event", format!("exp-{}-{}-vehicle", c.finance.id, tag(FORBIDDEN_MONTH)), "a vehicle bought on an industry project (违规购车)"),
            plant("unlisted_project", "event", format!("exp-{}-{}-noproject", c.finance.id, tag(UNLISTED_MONTH)), "industry money paid to a cooperative with no project in the library (项目库外)"),
            plant("structuring", "payee", structuring.payee_id, "one consultancy contract paid in three parts just under the services tender threshold within 21 days (拆分规避招标)"),
            plant("ineligible_household", "household", household(Plant::Ineligible), "removed (清退) on 25 May, still on the June roster and paid"),
            plant("deceased_payee", "household", household(Plant::Deceased), "the only member dies 12 July; the allowance for August is still paid (死亡冒领)"),
            plant("duplicate_payout", "household", household(Plant::DuplicatePayout), "September allowance paid twice (重复发放)"),
            plant("over_standard", "household", household(Plant::OverStandard), "Q3 education aid of 800 yuan against a 500 yuan standard (超标准)"),
            plant("shared_card", "card", self.card_of(0, holder_village, holder_index, 0).card_digest, "a second household's card replaced by this household's card (一卡多户)"),
            plant("card_mismatch", "household", household(Plant::CardMismatch), "October allowance credited to a village cadre's card (代领)"),
            plant("duplicate_person", "person", self.member(&source, 1).person_digest, "a member of one household added to another (一人多户)"),
            plant("outlier_payout", "household", household(Plant::Outlier), "household industry aid of 18,000 yuan where peers get 1,000–3,000 (异常大额)"),
            plant("late_payout", "household", household(Plant::Late), "March allowance paid on 6 May (发放不及时)"),
            plant("paid_before_notice", "household", household(Plant::Unnoticed), "November allowance paid though left off the November roster (未公示)"),
        ]
    }
}

fn plant_household(household: &mut Household, plant: Plant) {
    household.fate = Fate::Plant(plant);
    household.edu = false;
    household.ranger = false;
    household.aid_fen = None;
    household.dibao_fen = Some(DIBAO_TIERS_FEN[1]);
    match plant {
        Plant::Deceased => household.members = 1,
        Plant::OverStandard => {
            household.edu = true;
            household.members = household.members.max(3);
        }
        Plant::DuplicatePersonSource => household.members = household.members.max(2),
        Plant::Outlier => {
            household.dibao_fen = None;
            household.aid_fen = Some(OUTLIER_FEN);
        }
        _ => {}
    }
}

/// Builds the events of one county in one month, in chain order.
pub struct CountyMonth<'w> {
    world: &'w World,
    county: usize,
    month: u32,
    pub drafts: Vec<Draft>,
}

/// Roster lists of one village: households to be paid this month by program.
#[derive(Default)]
struct Rosters {
    dibao: Vec<String>,
    edu: Vec<String>,
    ranger: Vec<String>,
    aid: Vec<String>,
}

impl<'w> CountyMonth<'w> {
    pub fn build(world: &'w World, county: usize, month: u32) -> Vec<Draft> {
        let mut this = CountyMonth { world, county, month, drafts: Vec::new() };
        let village_count = world.layout.counties[county].villages.len();
        for village in 0..village_count {
            let mut rosters = Rosters::default();
            for index in 0..world.households_per_village {
                let household = world.household(county, village, index);
                this.household_events(&household, &mut rosters);
            }
            this.roster_notices(village, rosters);
        }
        this.projects();
        this.county_plants();
        // Chain order follows the business date; ties keep creation order.
        this.drafts.sort_by_key(|d| d.at);
        this.drafts
    }

    fn calendar(&self) -> &Calendar {
        &self.world.calendar
    }

    fn county(&self) -> &'w super::world::County {
        &self.world.layout.counties[self.county]
    }

    fn date(&self, day: u32) -> Date {
        self.calendar().date(self.month, day)
    }

    fn update(&mut self, household: &Household, day: u32, body: Body) {
        let poverty = &self.county().poverty;
        self.drafts.push(Draft {
            id: format!("upd-{}-{}{day:02}", household.id, self.calendar().tag(self.month)),
            office: poverty.id.clone(),
            at: self.date(day),
            signers: vec![poverty.key1()],
            body,
            effect: Effect::default(),
        });
    }

    fn status(&mut self, household: &Household, status: &'static str, reason: &str) {
        let body = Body::HouseholdUpdate {
            household_id: household.id.clone(),
            status: Some(status),
            reason: Some(reason.to_string()),
            deceased: None,
            card: None,
            add_members: None,
        };
        self.update(household, DAY_STATUS, body);
    }

    fn updates(&mut self, household: &Household) {
        let m = self.month;
        let world = self.world;
        let blank = |household: &Household| Body::HouseholdUpdate {
            household_id: household.id.clone(),
            status: None,
            reason: None,
            deceased: None,
            card: None,
            add_members: None,
        };
        match household.fate {
            Fate::Exit(month) if month == m => {
                self.status(household, "exited", "脱贫：人均纯收入稳定超过扶贫标准，过渡期内政策不变")
            }
            Fate::Remove(month) if month == m => {
                self.status(household, "removed", "清退：家庭收入及财产核查不符合条件")
            }
            Fate::Plant(Plant::Ineligible) if m == INELIGIBLE_REMOVED_MONTH => {
                self.status(household, "removed", "清退：家庭收入及财产核查不符合条件")
            }
            Fate::Plant(Plant::Deceased) if m == DECEASED_MONTH + 1 => {
                self.status(household, "removed", "清退：户主死亡，户销")
            }
            Fate::CardChange { month, bounced: false } if month == m => {
                let mut body = blank(household);
                if let Body::HouseholdUpdate { card, reason, .. } = &mut body {
                    *card = Some(world.card_of(household.county, household.village, household.index, 1));
                    *reason = Some("换卡：原一卡通遗失补办".into());
                }
                self.update(household, DAY_CARD_CHANGE, body);
            }
            Fate::Plant(Plant::SharedCard) if m == SHARED_CARD_MONTH => {
                let mut body = blank(household);
                if let Body::HouseholdUpdate { card, reason, .. } = &mut body {
                    *card = Some(world.card_at(household, m, DAY_CARD_CHANGE));
                    *reason = Some("换卡".into());
                }
                self.update(household, DAY_CARD_CHANGE, body);
            }
            Fate::Death(month) if month == m => self.deceased(household, 1),
            Fate::Plant(Plant::Deceased) if m == DECEASED_MONTH => self.deceased(household, 0),
            Fate::Newborn(month) if month == m => {
                let member = world.member(household, household.members);
                self.add_member(household, member, "新增人口：新生儿落户");
            }
            Fate::Plant(Plant::DuplicatePerson) if m == DUPLICATE_PERSON_MONTH => {
                let (village, index) = world.plant_position(Plant::DuplicatePersonSource);
                let member = world.member(&world.household(0, village, index), 1);
                self.add_member(household, member, "新增人口：投靠亲属");
            }
            _ => {}
        }
    }

    fn deceased(&mut self, household: &Household, member: usize) {
        let digest = self.world.member(household, member).person_digest;
        let body = Body::HouseholdUpdate {
            household_id: household.id.clone(),
            status: None,
            reason: Some("家庭成员死亡".into()),
            deceased: Some(vec![digest]),
            card: None,
            add_members: None,
        };
        self.update(household, DAY_MEMBER_CHANGE, body);
    }

    fn add_member(&mut self, household: &Household, member: Member, reason: &str) {
        let body = Body::HouseholdUpdate {
            household_id: household.id.clone(),
            status: None,
            reason: Some(reason.into()),
            deceased: None,
            card: None,
            add_members: Some(vec![member]),
        };
        self.update(household, DAY_MEMBER_CHANGE, body);
    }

    /// A payout to `card` on `day` for `period`; returns its event id.
    fn payout(&mut self, household: &Household, pay: Pay, suffix: &str) -> String {
        let Pay { program, period, fen, day, card } = pay;
        let finance = &self.county().finance;
        let id = format!("pay-{}-{}-{period}{suffix}", household.id, PROGRAMS[program].id);
        let head = self.world.member(household, 0);
        self.drafts.push(Draft {
            id: id.clone(),
            office: finance.id.clone(),
            at: self.date(day),
            signers: finance_signers(finance, fen),
            body: Body::Payout {
                household_id: household.id.clone(),
                program: PROGRAMS[program].id,
                amount_fen: fen,
                period,
                card_digest: card.card_digest,
                person_digest: head.person_digest,
            },
            effect: Effect { debit: Some((program, fen)), credit: None },
        });
        id
    }

    fn refund(&mut self, ref_event: String, program: usize, fen: u64, day: u32, reason: &str) {
        let finance = &self.county().finance;
        self.drafts.push(Draft {
            id: format!("refund-{ref_event}"),
            office: finance.id.clone(),
            at: self.date(day),
            signers: finance_signers(finance, fen),
            body: Body::Refund { ref_event, amount_fen: fen, reason: reason.into() },
            effect: Effect { debit: None, credit: Some((program, fen)) },
        });
    }

    fn household_events(&mut self, household: &Household, rosters: &mut Rosters) {
        self.updates(household);
        if let Some(fen) = household.dibao_fen {
            self.dibao(household, fen, rosters);
        }
        let m = self.month;
        let calendar = *self.calendar();
        let (year, month_of_year) = (calendar.year_of(m), calendar.month_of_year(m));
        if household.edu && month_of_year % 3 == 1 && household.on_roll(m) {
            rosters.edu.push(household.id.clone());
            let fen = if household.planted(Plant::OverStandard, m, OVER_STANDARD_MONTH) {
                OVER_STANDARD_FEN
            } else {
                PROGRAMS[EDU].standard_fen.expect("edu has a standard")
            };
            let period = Period::Quarter(year, month_of_year.div_ceil(3));
            self.pay(household, EDU, period, fen, DAY_EDU);
        }
        if let Some(fen) = household.aid_fen {
            if calendar.yearly_month(m, MONTH_OF_YEAR_AID) && household.on_roll(m) {
                rosters.aid.push(household.id.clone());
                self.pay(household, INDUSTRY, Period::Year(year), fen, DAY_AID);
            }
        }
        if household.ranger && calendar.yearly_month(m, MONTH_OF_YEAR_RANGER) && household.on_roll(m) {
            rosters.ranger.push(household.id.clone());
            let fen = PROGRAMS[RANGER].standard_fen.expect("ranger has a standard");
            self.pay(household, RANGER, Period::Year(year), fen, DAY_RANGER);
        }
    }

    /// A payout to the card bound on that day.
    fn pay(&mut self, household: &Household, program: usize, period: Period, fen: u64, day: u32) -> String {
        let card = self.world.card_at(household, self.month, day);
        self.payout(household, Pay { program, period, fen, day, card }, "")
    }

    /// 低保 of the month: roster entry, payout, and the planted variations.
    fn dibao(&mut self, household: &Household, fen: u64, rosters: &mut Rosters) {
        let m = self.month;
        let world = self.world;
        let period = self.calendar().month_period(m);
        let on_roll = household.on_roll(m) || household.planted(Plant::Ineligible, m, INELIGIBLE_REMOVED_MONTH + 1);
        if on_roll && !household.planted(Plant::Unnoticed, m, UNNOTICED_MONTH) {
            rosters.dibao.push(household.id.clone());
        }
        if on_roll && !household.planted(Plant::Late, m, LATE_PERIOD_MONTH) {
            if household.planted(Plant::CardMismatch, m, CARD_MISMATCH_MONTH) {
                let card = world.cadre_card(household.county);
                self.payout(household, Pay { program: DIBAO, period, fen, day: DAY_DIBAO, card }, "");
            } else {
                let id = self.pay(household, DIBAO, period, fen, DAY_DIBAO);
                if household.fate == (Fate::CardChange { month: m, bounced: true }) {
                    self.bounced(household, id, period, fen);
                }
            }
        }
        if household.planted(Plant::DuplicatePayout, m, DUPLICATE_PAYOUT_MONTH) {
            let card = world.card_at(household, m, DUPLICATE_PAYOUT_DAY);
            self.payout(household, Pay { program: DIBAO, period, fen, day: DUPLICATE_PAYOUT_DAY, card }, "-2");
        }
        if household.planted(Plant::Late, m, LATE_PAID_MONTH) {
            let late_period = self.calendar().month_period(LATE_PERIOD_MONTH);
            self.pay(household, DIBAO, late_period, fen, LATE_PAID_DAY);
        }
    }

    /// The bank returns a payout (old card closed): refund in full, bind the
    /// new card, pay again to it.
    fn bounced(&mut self, household: &Household, payout_id: String, period: Period, fen: u64) {
        self.refund(payout_id, DIBAO, fen, DAY_BOUNCE_REFUND, "退票：原卡已销户，资金退回");
        let new_card = self.world.card_of(household.county, household.village, household.index, 1);
        let body = Body::HouseholdUpdate {
            household_id: household.id.clone(),
            status: None,
            reason: Some("换卡：原卡销户".into()),
            deceased: None,
            card: Some(new_card.clone()),
            add_members: None,
        };
        self.update(household, DAY_BOUNCE_NEW_CARD, body);
        let pay = Pay { program: DIBAO, period, fen, day: DAY_BOUNCE_REPAY, card: new_card };
        self.payout(household, pay, "-r");
    }

    fn roster_notices(&mut self, village: usize, rosters: Rosters) {
        let m = self.month;
        let year = self.calendar().year_of(m);
        let month_of_year = self.calendar().month_of_year(m);
        let lists = [
            (DIBAO, self.calendar().month_period(m), rosters.dibao),
            (EDU, Period::Quarter(year, month_of_year.div_ceil(3)), rosters.edu),
            (INDUSTRY, Period::Year(year), rosters.aid),
            (RANGER, Period::Year(year), rosters.ranger),
        ];
        let village_id = self.county().villages[village].0.id.clone();
        for (program, period, households) in lists {
            let parts = households.len().div_ceil(NOTICE_HOUSEHOLDS_MAX);
            for (part, chunk) in households.chunks(NOTICE_HOUSEHOLDS_MAX).enumerate() {
                let suffix = if parts > 1 { format!("-p{}", part + 1) } else { String::new() };
                let notice_id =
                    format!("{}-{}-{period}-{village_id}{suffix}", self.county().finance.id, PROGRAMS[program].id);
                self.notice(
                    notice_id,
                    program,
                    Some(period),
                    Some(chunk.to_vec()),
                    None,
                    (DAY_NOTICE_FROM, DAY_NOTICE_TO),
                );
            }
        }
    }

    /// A notice published by the county finance bureau from `days.0` to
    /// `days.1` of this month (a `to` past month end rolls into the next).
    fn notice(
        &mut self,
        notice_id: String,
        program: usize,
        period: Option<Period>,
        households: Option<Vec<String>>,
        projects: Option<Vec<String>>,
        days: (u32, u32),
    ) {
        let finance = &self.county().finance;
        let from = self.date(days.0);
        let to = from.add_days((days.1 - days.0) as i32);
        let mut document = format!("{}\n{notice_id}\n", self.world.ledger_id);
        for item in households.iter().chain(projects.iter()).flatten() {
            document.push_str(item);
            document.push('\n');
        }
        let scope = if households.is_some() { "payout_roster" } else { "project" };
        self.drafts.push(Draft {
            id: format!("notice-{notice_id}"),
            office: finance.id.clone(),
            at: from,
            signers: vec![finance.key1()],
            body: Body::Notice {
                notice_id,
                scope,
                program: PROGRAMS[program].id,
                period,
                households,
                projects,
                from,
                to,
                document_digest: hex(&sha256(document.as_bytes())),
            },
            effect: Effect::default(),
        });
    }

    /// Project library events of the month: registrations (January; the
    /// planted contract in September), installments, the settlement refund,
    /// the May reallocation and the year-end notices.
    fn projects(&mut self) {
        let calendar = *self.calendar();
        let (year, month_of_year) = (calendar.year_of(self.month), calendar.month_of_year(self.month));
        let projects = self.world.projects(self.county, year);
        let register_month = |p: &Project| {
            if p.planted {
                calendar.month_of_year(STRUCTURING_REGISTER_MONTH)
            } else {
                MONTH_OF_YEAR_PROJECT_REGISTER
            }
        };
        let registered: Vec<&Project> = projects.iter().filter(|p| register_month(p) == month_of_year).collect();
        self.register_projects(&registered);
        for project in &projects {
            self.installments(project, month_of_year);
        }
        if month_of_year == MONTH_OF_YEAR_PROJECT_REFUND {
            self.settlement_refund(&projects);
        }
        if month_of_year == MONTH_OF_YEAR_REALLOCATE && self.world.has(WORKRELIEF) {
            self.reallocate(INDUSTRY, WORKRELIEF, INTEGRATION_FEN, DAY_REALLOCATE, "统筹整合使用财政涉农资金");
        }
        if month_of_year == MONTH_OF_YEAR_YEAR_END {
            let all: Vec<&Project> = projects.iter().collect();
            self.project_notices(&all, &format!("{year}-final"), DAY_YEAR_END_NOTICE);
        }
    }

    fn register_projects(&mut self, projects: &[&Project]) {
        let finance = &self.county().finance;
        for project in projects {
            self.drafts.push(Draft {
                id: format!("proj-{}", project.id),
                office: finance.id.clone(),
                at: self.date(DAY_PROJECT_REGISTER),
                signers: vec![finance.key1()],
                body: Body::ProjectRegister {
                    project_id: project.id.clone(),
                    program: PROGRAMS[project.program].id,
                    name: project.name.clone(),
                    budget_fen: project.budget_fen,
                    location: project.village.clone(),
                },
                effect: Effect::default(),
            });
        }
        let tag = self.calendar().tag(self.month);
        self.project_notices(projects, &tag, DAY_PROJECT_REGISTER);
    }

    /// One notice per program listing `projects`, from `day` for 11 days.
    fn project_notices(&mut self, projects: &[&Project], label: &str, day: u32) {
        let county_id = self.county().finance.id.clone();
        for program in [INDUSTRY, WORKRELIEF] {
            let ids: Vec<String> = projects.iter().filter(|p| p.program == program).map(|p| p.id.clone()).collect();
            if !ids.is_empty() {
                let notice_id = format!("{county_id}-{}-projects-{label}", PROGRAMS[program].id);
                let days = (day, day + PROJECT_NOTICE_SPAN_DAYS);
                self.notice(notice_id, program, None, None, Some(ids), days);
            }
        }
    }

    fn installments(&mut self, project: &Project, month_of_year: u32) {
        for (k, (installment_month, fen, category)) in project.installments.iter().enumerate() {
            if *installment_month != month_of_year {
                continue;
            }
            let day = if project.planted { STRUCTURING_PAYMENTS[k].0 } else { DAY_EXPENDITURE + k as u32 % 3 };
            let id = format!("exp-{}-{}", project.id, k + 1);
            let payee = (project.payee_id.clone(), project.payee_name.clone());
            let spend = Spend { program: project.program, project_id: Some(project.id.clone()), payee, category };
            self.expenditure(id, spend, *fen, day);
        }
    }

    /// 5% of the first industry project's June payment comes back at settlement.
    fn settlement_refund(&mut self, projects: &[Project]) {
        let Some(project) = projects.iter().find(|p| p.program == INDUSTRY) else { return };
        let refunded = project.installments.iter().position(|(m, _, _)| *m == MONTH_OF_YEAR_INSTALLMENT_REFUNDED);
        if let Some(k) = refunded {
            let fen = round_up(project.installments[k].1 * SETTLEMENT_REFUND_PERCENT / 100, 100);
            let ref_event = format!("exp-{}-{}", project.id, k + 1);
            self.refund(ref_event, INDUSTRY, fen, DAY_PROJECT_REFUND, "工程结算审减，退回多付款");
        }
    }

    fn expenditure(&mut self, id: String, spend: Spend, fen: u64, day: u32) {
        let finance = &self.county().finance;
        let (payee_id, payee_name) = spend.payee;
        self.drafts.push(Draft {
            id,
            office: finance.id.clone(),
            at: self.date(day),
            signers: finance_signers(finance, fen),
            body: Body::Expenditure {
                program: PROGRAMS[spend.program].id,
                project_id: spend.project_id,
                payee_id,
                payee_name,
                category: spend.category,
                amount_fen: fen,
                doc_ref: self.document_number(),
            },
            effect: Effect { debit: Some((spend.program, fen)), credit: None },
        });
    }

    /// The county bureau's document of the month, e.g. 建始财农〔2019〕105号.
    fn document_number(&self) -> String {
        let calendar = self.calendar();
        let short = self.county().short_name.trim_end_matches('县');
        format!("{short}财农〔{}〕{}号", calendar.year_of(self.month), 100 + calendar.month_of_year(self.month))
    }

    /// A payee of a planted expenditure: a cooperative or a car dealer.
    fn plant_payee(&self, cooperative: bool) -> (String, String) {
        let c = self.county();
        let mut rng = Rng::new(self.world.seed, &[TAG_PAYEE, self.county as u64, u64::from(self.month), 77]);
        let code = names::credit_code(&mut rng, cooperative, &c.finance.region);
        let name = if cooperative {
            format!("{}{}农业专业合作社", c.short_name, names::place_name(&mut rng, ""))
        } else {
            format!("恩施{}汽车销售服务有限公司", names::place_name(&mut rng, ""))
        };
        (code, name)
    }

    fn reallocate(&mut self, from: usize, to: usize, fen: u64, day: u32, doc: &str) {
        let finance = &self.county().finance;
        let tag = self.calendar().tag(self.month);
        self.drafts.push(Draft {
            id: format!("realloc-{}-{tag}-{}-{}", finance.id, PROGRAMS[from].id, PROGRAMS[to].id),
            office: finance.id.clone(),
            at: self.date(day),
            signers: finance_signers(finance, fen),
            body: Body::Reallocate {
                from_program: PROGRAMS[from].id,
                to_program: PROGRAMS[to].id,
                amount_fen: fen,
                doc_ref: format!("{}（{doc}）", self.document_number()),
            },
            effect: Effect { debit: Some((from, fen)), credit: Some((to, fen)) },
        });
    }

    /// County-level planted cases (misuse, county 0, first year).
    fn county_plants(&mut self) {
        let world = self.world;
        if !world.misuse || self.county != 0 || self.month >= 12 {
            return;
        }
        let finance = &self.county().finance;
        let tag = world.calendar.tag(self.month);
        if self.month == CROSS_PROGRAM_MONTH {
            self.reallocate(DIBAO, INDUSTRY, CROSS_PROGRAM_FEN, DAY_REALLOCATE, "调剂使用");
        }
        if self.month == FORBIDDEN_MONTH {
            let project = &world.projects(0, world.calendar.start_year)[0];
            assert_eq!(project.program, INDUSTRY);
            let id = format!("exp-{}-{tag}-vehicle", finance.id);
            let payee = self.plant_payee(false);
            let spend = Spend { program: INDUSTRY, project_id: Some(project.id.clone()), payee, category: "vehicle" };
            self.expenditure(id, spend, FORBIDDEN_FEN, FORBIDDEN_DAY);
        }
        if self.month == UNLISTED_MONTH {
            let id = format!("exp-{}-{tag}-noproject", finance.id);
            let payee = self.plant_payee(true);
            let spend = Spend { program: INDUSTRY, project_id: None, payee, category: "goods" };
            self.expenditure(id, spend, UNLISTED_FEN, UNLISTED_DAY);
        }
        if self.month == OFF_TREE_MONTH {
            let poverty = &self.county().poverty;
            self.drafts.push(Draft {
                id: format!("xfer-{}-fpb-industry-{}", finance.id, world.calendar.tag(self.month)),
                office: finance.id.clone(),
                at: self.date(OFF_TREE_DAY),
                signers: finance_signers(finance, OFF_TREE_FEN),
                body: Body::Transfer {
                    to_office: poverty.id.clone(),
                    program: PROGRAMS[INDUSTRY].id,
                    amount_fen: OFF_TREE_FEN,
                    doc_ref: "拨付扶贫办工作经费".into(),
                },
                effect: Effect { debit: Some((INDUSTRY, OFF_TREE_FEN)), credit: None },
            });
        }
    }
}

/// A household payout: program, period, amount, day and the card credited.
struct Pay {
    program: usize,
    period: Period,
    fen: u64,
    day: u32,
    card: Card,
}

/// Who is paid for what by an expenditure.
struct Spend {
    program: usize,
    project_id: Option<String>,
    payee: (String, String),
    category: &'static str,
}

/// Setup: genesis, programs, the office tree and every household.
pub struct Setup;

impl Setup {
    /// Every key of the run, in registration order: root, log, then each
    /// office's keys as its `office_register` lists them.
    pub fn keyring(world: &World) -> Keyring {
        let mut keyring = Keyring::default();
        keyring.derive(world.seed, "root/k1");
        keyring.derive(world.seed, "log/k1");
        let layout = &world.layout;
        let mut offices: Vec<&Office> = vec![&layout.province];
        offices.extend(&layout.prefectures);
        for county in &layout.counties {
            offices.extend([&county.finance, &county.poverty, &county.audit]);
            offices.extend(&county.townships);
            offices.extend(county.villages.iter().map(|(village, _)| village));
        }
        for office in offices {
            for (key_id, _) in office.keys() {
                keyring.derive(world.seed, &key_id);
            }
        }
        keyring
    }

    pub fn genesis(world: &World, keyring: &Keyring) -> Vec<Draft> {
        let seed = world.seed;
        let at = world.calendar.setup_date(1);
        let mut drafts = vec![Draft {
            id: "genesis".into(),
            office: "root".into(),
            at,
            signers: vec!["root/k1".into()],
            body: Body::Genesis {
                name: format!("湖北省扶贫资金账本（合成数据，种子 {seed}）"),
                root_keys: vec![NamedKey { key_id: "root/k1".into(), public_key: keyring.public_key("root/k1") }],
                log_key: NamedKey { key_id: "log/k1".into(), public_key: keyring.public_key("log/k1") },
                currency: "CNY",
            },
            effect: Effect::default(),
        }];
        for program in PROGRAMS.iter().take(world.programs) {
            drafts.push(Draft {
                id: format!("program-{}", program.id),
                office: "root".into(),
                at,
                signers: vec!["root/k1".into()],
                body: Body::ProgramDefine {
                    program_id: program.id,
                    name: program.name,
                    earmarked: program.earmarked,
                    payee: program.payee,
                    standard_fen: program.standard_fen,
                    cap_fen_per_year: program.cap_fen_per_year,
                    period: program.period,
                },
                effect: Effect::default(),
            });
        }
        drafts.push(Setup::office(world, keyring, &world.layout.province, None));
        for prefecture in &world.layout.prefectures {
            drafts.push(Setup::office(world, keyring, prefecture, Some(&world.layout.province)));
        }
        drafts
    }

    /// An `office_register` signed by root (no parent) or the parent's admin key.
    pub fn office(world: &World, keyring: &Keyring, office: &Office, parent: Option<&Office>) -> Draft {
        let keys = office
            .keys()
            .into_iter()
            .map(|(key_id, roles)| KeyGrant { public_key: keyring.public_key(&key_id), key_id, roles })
            .collect();
        let (acting, signer) = match parent {
            None => ("root".to_string(), "root/k1".to_string()),
            Some(parent) => (parent.id.clone(), parent.key1()),
        };
        Draft {
            id: format!("office-{}", office.id),
            office: acting,
            at: world.calendar.setup_date(1),
            signers: vec![signer],
            body: Body::OfficeRegister {
                office_id: office.id.clone(),
                name: office.name.clone(),
                level: office.level,
                parent: office.parent.clone(),
                region_code: office.region.clone(),
                contact: office.contact.clone(),
                keys,
            },
            effect: Effect::default(),
        }
    }

    /// A county's offices (finance bureau, poverty office, audit office,
    /// townships, villages), then its households.
    pub fn county(world: &World, keyring: &Keyring, county: usize) -> Vec<Draft> {
        let c = &world.layout.counties[county];
        let prefecture = &world.layout.prefectures[c.prefecture];
        let mut drafts = vec![
            Setup::office(world, keyring, &c.finance, Some(prefecture)),
            Setup::office(world, keyring, &c.poverty, Some(prefecture)),
            Setup::office(world, keyring, &c.audit, Some(prefecture)),
        ];
        for township in &c.townships {
            drafts.push(Setup::office(world, keyring, township, Some(&c.finance)));
        }
        for (village, township) in &c.villages {
            drafts.push(Setup::office(world, keyring, village, Some(&c.townships[*township])));
        }
        for (v, (village, _)) in c.villages.iter().enumerate() {
            for index in 0..world.households_per_village {
                let household = world.household(county, v, index);
                let members: Vec<Member> = (0..household.members).map(|m| world.member(&household, m)).collect();
                drafts.push(Draft {
                    id: format!("reg-{}", household.id),
                    office: c.poverty.id.clone(),
                    at: world.calendar.setup_date(3 + (v % 18) as u32),
                    signers: vec![c.poverty.key1()],
                    body: Body::HouseholdRegister {
                        household_id: household.id.clone(),
                        village: village.id.clone(),
                        head_name_masked: members[0].name_masked.clone(),
                        members,
                        card: world.card_of(county, v, index, 0),
                    },
                    effect: Effect::default(),
                });
            }
        }
        drafts
    }
}

/// Money moved down the tree for one county: province appropriation, province
/// → prefecture, prefecture → county, on the 2nd, 3rd and 4th of the month.
pub fn tranche(world: &World, county: usize, month: u32, program: usize, fen: u64) -> Vec<Draft> {
    let layout = &world.layout;
    let c = &layout.counties[county];
    let prefecture = &layout.prefectures[c.prefecture];
    let calendar = &world.calendar;
    let year = calendar.year_of(month);
    let tag = calendar.tag(month);
    let program_id = PROGRAMS[program].id;
    let document = format!("鄂财农发〔{year}〕{}号", 100 + calendar.month_of_year(month));
    let prefecture_short: String = prefecture.name.chars().take(2).collect();
    let id = |step: u32| format!("fund-{}-{program_id}-{tag}-{step}", c.finance.id);
    vec![
        Draft {
            id: id(1),
            office: layout.province.id.clone(),
            at: calendar.date(month, DAY_APPROPRIATE),
            signers: finance_signers(&layout.province, fen),
            body: Body::Appropriate {
                program: program_id,
                amount_fen: fen,
                budget_ref: document.clone(),
                fiscal_year: year,
            },
            effect: Effect::default(),
        },
        Draft {
            id: id(2),
            office: layout.province.id.clone(),
            at: calendar.date(month, DAY_TO_PREFECTURE),
            signers: finance_signers(&layout.province, fen),
            body: Body::Transfer {
                to_office: prefecture.id.clone(),
                program: program_id,
                amount_fen: fen,
                doc_ref: document,
            },
            effect: Effect::default(),
        },
        Draft {
            id: id(3),
            office: prefecture.id.clone(),
            at: calendar.date(month, DAY_TO_COUNTY),
            signers: finance_signers(prefecture, fen),
            body: Body::Transfer {
                to_office: c.finance.id.clone(),
                program: program_id,
                amount_fen: fen,
                doc_ref: format!("{prefecture_short}财农发〔{year}〕{}号", 100 + calendar.month_of_year(month)),
            },
            effect: Effect::default(),
        },
    ]
}

/// Province-level planted cases of a month (misuse): the stalled advance.
/// Returns the drafts and any money that reaches county 0 (program, fen).
pub fn province_plants(world: &World, month: u32) -> (Vec<Draft>, Option<(usize, u64)>) {
    if !world.misuse || !world.has(RANGER) {
        return (Vec::new(), None);
    }
    let layout = &world.layout;
    let prefecture = &layout.prefectures[0];
    let county = &layout.counties[0].finance;
    let calendar = &world.calendar;
    let year = calendar.year_of(month);
    let doc = format!("鄂财农发〔{year}〕提前下达1号");
    let id = |step: u32| format!("fund-advance-ranger-{year}-{step}");
    match month {
        STALLED_MONTH => (
            vec![
                Draft {
                    id: id(1),
                    office: layout.province.id.clone(),
                    at: calendar.date(month, STALLED_DAY),
                    signers: finance_signers(&layout.province, STALLED_FEN),
                    body: Body::Appropriate {
                        program: "ranger",
                        amount_fen: STALLED_FEN,
                        budget_ref: doc.clone(),
                        fiscal_year: year,
                    },
                    effect: Effect::default(),
                },
                Draft {
                    id: id(2),
                    office: layout.province.id.clone(),
                    at: calendar.date(month, STALLED_DAY + 1),
                    signers: finance_signers(&layout.province, STALLED_FEN),
                    body: Body::Transfer {
                        to_office: prefecture.id.clone(),
                        program: "ranger",
                        amount_fen: STALLED_FEN,
                        doc_ref: doc,
                    },
                    effect: Effect::default(),
                },
            ],
            None,
        ),
        STALLED_RELEASE_MONTH => (
            vec![Draft {
                id: id(3),
                office: prefecture.id.clone(),
                at: calendar.date(month, STALLED_RELEASE_DAY),
                signers: finance_signers(prefecture, STALLED_FEN),
                body: Body::Transfer {
                    to_office: county.id.clone(),
                    program: "ranger",
                    amount_fen: STALLED_FEN,
                    doc_ref: doc,
                },
                effect: Effect::default(),
            }],
            Some((RANGER, STALLED_FEN)),
        ),
        _ => (Vec::new(), None),
    }
}

/// The idle plant: industry money sent down to a township in the December
/// before the run, where it stays.
pub fn idle_plant(world: &World) -> Vec<Draft> {
    if !world.misuse || !world.has(INDUSTRY) {
        return Vec::new();
    }
    let layout = &world.layout;
    let prefecture = &layout.prefectures[0];
    let county = &layout.counties[0];
    let township = &county.townships[0];
    let calendar = &world.calendar;
    let year = calendar.start_year - 1;
    let doc = format!("鄂财农发〔{year}〕提前下达2号");
    let id = |step: u32| format!("fund-advance-industry-{year}-{step}");
    let step = |n: u32, office: &Office, body: Body| Draft {
        id: id(n),
        office: office.id.clone(),
        at: calendar.setup_date(2 + n),
        signers: finance_signers(office, IDLE_FEN),
        body,
        effect: Effect::default(),
    };
    let transfer = |to: &Office| Body::Transfer {
        to_office: to.id.clone(),
        program: "industry",
        amount_fen: IDLE_FEN,
        doc_ref: doc.clone(),
    };
    vec![
        step(
            1,
            &layout.province,
            Body::Appropriate {
                program: "industry",
                amount_fen: IDLE_FEN,
                budget_ref: doc.clone(),
                fiscal_year: year + 1,
            },
        ),
        step(2, &layout.province, transfer(prefecture)),
        step(3, prefecture, transfer(&county.finance)),
        step(4, &county.finance, transfer(township)),
    ]
}
