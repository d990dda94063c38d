//! The fixed frame of a generated ledger: programs, the office tree with its
//! keys and region codes, and the calendar.
//!
//! Owns: office ids, names, levels, region codes and key ids. Invariant:
//! every region code is its parent's code extended (village 12 digits =
//! township 9 + 3 = county 6 + 6), so a county office's code is a prefix of
//! each of its villages' codes, which is what lets it register and pay there.

use super::names;
use super::random::Rng;
use crate::date::{Date, Period};
use crate::payload::{Level, Role};

/// A program as defined on the chain (SPEC §3 `program_define`).
pub struct ProgramSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub earmarked: bool,
    pub payee: &'static str,
    pub standard_fen: Option<u64>,
    pub cap_fen_per_year: Option<u64>,
    pub period: &'static str,
}

pub const DIBAO: usize = 0;
pub const EDU: usize = 1;
pub const RANGER: usize = 2;
pub const INDUSTRY: usize = 3;
pub const WORKRELIEF: usize = 4;
pub const PROGRAM_COUNT: usize = 5;

/// The five programs of a county's poverty-relief budget.
pub const PROGRAMS: [ProgramSpec; PROGRAM_COUNT] = [
    ProgramSpec {
        id: "dibao",
        name: "农村最低生活保障金（低保）",
        earmarked: true,
        payee: "household",
        // Tiers below the standard, see DIBAO_TIERS_FEN. No yearly cap: a
        // household on the top tier is paid exactly 12 × standard.
        standard_fen: Some(30_000),
        cap_fen_per_year: None,
        period: "month",
    },
    ProgramSpec {
        id: "edu",
        name: "建档立卡贫困家庭学生教育资助",
        earmarked: true,
        payee: "household",
        standard_fen: Some(50_000),
        // Four quarters at the standard are 200,000: the cap leaves room.
        cap_fen_per_year: Some(250_000),
        period: "quarter",
    },
    ProgramSpec {
        id: "ranger",
        name: "建档立卡贫困人口生态护林员补助",
        earmarked: true,
        payee: "household",
        standard_fen: Some(1_000_000),
        cap_fen_per_year: Some(1_000_000),
        period: "year",
    },
    ProgramSpec {
        id: "industry",
        name: "产业扶贫资金",
        earmarked: false,
        payee: "any",
        standard_fen: None,
        cap_fen_per_year: None,
        period: "once",
    },
    ProgramSpec {
        id: "workrelief",
        name: "以工代赈资金",
        earmarked: true,
        payee: "project",
        standard_fen: None,
        cap_fen_per_year: None,
        period: "once",
    },
];

/// 低保 is paid by tier (分档补差), never above the program standard.
pub const DIBAO_TIERS_FEN: [u64; 3] = [30_000, 24_000, 18_000];
/// 到户产业补助 paid once a year from the industry program. The largest is 3×
/// the smallest, so no clean payout is near 5× any median (outlier_payout).
pub const AID_AMOUNTS_FEN: [u64; 5] = [100_000, 150_000, 200_000, 250_000, 300_000];

/// Villages under one township (乡镇).
pub const VILLAGES_PER_TOWNSHIP: usize = 3;
/// Counties under one prefecture in a province run.
pub const COUNTIES_PER_PREFECTURE: usize = 10;
/// Township codes are county code + (100 + t), three digits.
pub const TOWNSHIPS_PER_COUNTY_MAX: usize = 899;
pub const VILLAGES_PER_COUNTY_MAX: usize = VILLAGES_PER_TOWNSHIP * TOWNSHIPS_PER_COUNTY_MAX;
/// Real prefecture-level codes of Hubei, then synthetic codes 4230..4299.
const HUBEI_PREFECTURES: [(&str, &str); 13] = [
    ("4201", "武汉市"),
    ("4202", "黄石市"),
    ("4203", "十堰市"),
    ("4205", "宜昌市"),
    ("4206", "襄阳市"),
    ("4207", "鄂州市"),
    ("4208", "荆门市"),
    ("4209", "孝感市"),
    ("4210", "荆州市"),
    ("4211", "黄冈市"),
    ("4212", "咸宁市"),
    ("4213", "随州市"),
    ("4228", "恩施土家族苗族自治州"),
];
const SYNTHETIC_PREFECTURE_CODE_FIRST: usize = 30;
pub const PREFECTURES_MAX: usize = HUBEI_PREFECTURES.len() + (100 - SYNTHETIC_PREFECTURE_CODE_FIRST);
pub const COUNTIES_MAX: usize = PREFECTURES_MAX * COUNTIES_PER_PREFECTURE;
/// 建始县's towns (the county-year's townships), in GB/T 2260 order.
const JIANSHI_TOWNS: [&str; 10] =
    ["业州镇", "高坪镇", "红岩寺镇", "景阳镇", "官店镇", "花坪镇", "长梁乡", "茅田乡", "龙坪乡", "三里乡"];
/// The complaint channel printed on notices (SPEC §9).
const COMPLAINT_HOTLINE: &str = "12317";

/// What an office does, which fixes its keys and roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfficeKind {
    /// 财政厅/财政局: appropriates, transfers, pays, spends. Two finance keys
    /// (dual control, SPEC §3) and the admin role to register children.
    Finance,
    /// 扶贫办: the household registrar.
    Poverty,
    /// 审计局: auditor.
    Audit,
    /// 乡镇财政所: registers its villages; may receive funds.
    Township,
    /// 村民委员会: village committee (registrar key, signs nothing here).
    Village,
}

pub struct Office {
    pub id: String,
    pub name: String,
    pub level: Level,
    pub region: String,
    pub parent: Option<String>,
    pub kind: OfficeKind,
    pub contact: Option<String>,
}

impl Office {
    /// Key ids and roles registered with the office.
    pub fn keys(&self) -> Vec<(String, Vec<Role>)> {
        let key = |n: u32, roles: &[Role]| (format!("{}/k{n}", self.id), roles.to_vec());
        match self.kind {
            OfficeKind::Finance => vec![key(1, &[Role::Admin, Role::Finance]), key(2, &[Role::Finance])],
            OfficeKind::Poverty | OfficeKind::Village => vec![key(1, &[Role::Registrar])],
            OfficeKind::Audit => vec![key(1, &[Role::Auditor])],
            OfficeKind::Township => vec![key(1, &[Role::Admin])],
        }
    }

    pub fn key1(&self) -> String {
        format!("{}/k1", self.id)
    }

    pub fn key2(&self) -> String {
        format!("{}/k2", self.id)
    }
}

pub struct County {
    pub finance: Office,
    pub poverty: Office,
    pub audit: Office,
    pub prefecture: usize,
    pub townships: Vec<Office>,
    /// Villages with the index of their township.
    pub villages: Vec<(Office, usize)>,
    /// "建始县" — used in payee and project names.
    pub short_name: String,
}

pub struct Layout {
    pub province: Office,
    pub prefectures: Vec<Office>,
    pub counties: Vec<County>,
}

fn office(id: String, name: String, level: Level, region: String, parent: Option<&Office>, kind: OfficeKind) -> Office {
    let contact = matches!(kind, OfficeKind::Finance | OfficeKind::Poverty)
        .then(|| format!("监督举报电话 {COMPLAINT_HOTLINE}；{name}"));
    Office { id, name, level, region, parent: parent.map(|p| p.id.clone()), kind, contact }
}

fn province_office() -> Office {
    office("420000".into(), "湖北省财政厅".into(), Level::Province, "420000".into(), None, OfficeKind::Finance)
}

/// Townships and villages of one county; `town_names` names the first ones.
fn county_offices(
    rng: &mut Rng,
    finance: &Office,
    village_count: usize,
    town_names: &[&str],
) -> (Vec<Office>, Vec<(Office, usize)>) {
    assert!((1..=VILLAGES_PER_COUNTY_MAX).contains(&village_count));
    let township_count = village_count.div_ceil(VILLAGES_PER_TOWNSHIP);
    let townships: Vec<Office> = (0..township_count)
        .map(|t| {
            let town = town_names.get(t).map_or_else(|| names::place_name(rng, "镇"), |n| n.to_string());
            let code = format!("{}{:03}", finance.region, 100 + t);
            office(code.clone(), format!("{town}财政所"), Level::Township, code, Some(finance), OfficeKind::Township)
        })
        .collect();
    let villages = (0..village_count)
        .map(|v| {
            let t = v / VILLAGES_PER_TOWNSHIP;
            let township = &townships[t];
            let code = format!("{}{:03}", township.region, 201 + v % VILLAGES_PER_TOWNSHIP);
            let town = township.name.trim_end_matches("财政所");
            let name = format!("{town}{}民委员会", names::place_name(rng, "村"));
            (office(code.clone(), name, Level::Village, code, Some(township), OfficeKind::Village), t)
        })
        .collect();
    (townships, villages)
}

fn county_triple(code: &str, county_name: &str, prefecture: &Office) -> (Office, Office, Office) {
    let finance = office(
        code.to_string(),
        format!("{county_name}财政局"),
        Level::County,
        code.to_string(),
        Some(prefecture),
        OfficeKind::Finance,
    );
    let poverty = office(
        format!("{code}-fpb"),
        format!("{county_name}扶贫开发办公室"),
        Level::County,
        code.to_string(),
        Some(prefecture),
        OfficeKind::Poverty,
    );
    let audit = office(
        format!("{code}-aud"),
        format!("{county_name}审计局"),
        Level::County,
        code.to_string(),
        Some(prefecture),
        OfficeKind::Audit,
    );
    (finance, poverty, audit)
}

impl Layout {
    /// 湖北省 → 恩施州 → 建始县 (422822), with `villages` villages.
    pub fn county_year(seed: u64, villages: usize) -> Layout {
        let mut rng = Rng::new(seed, &[super::plan::TAG_LAYOUT]);
        let province = province_office();
        let prefecture = office(
            "422800".into(),
            "恩施土家族苗族自治州财政局".into(),
            Level::Prefecture,
            "422800".into(),
            Some(&province),
            OfficeKind::Finance,
        );
        let (finance, poverty, audit) = county_triple("422822", "建始县", &prefecture);
        let (townships, villages) = county_offices(&mut rng, &finance, villages, &JIANSHI_TOWNS);
        let county =
            County { finance, poverty, audit, prefecture: 0, townships, villages, short_name: "建始县".into() };
        Layout { province, prefectures: vec![prefecture], counties: vec![county] }
    }

    /// A province of `counties` counties, ten to a prefecture.
    pub fn province(seed: u64, counties: usize, villages: usize) -> Layout {
        assert!((1..=COUNTIES_MAX).contains(&counties));
        let mut rng = Rng::new(seed, &[super::plan::TAG_LAYOUT]);
        let province = province_office();
        let prefecture_count = counties.div_ceil(COUNTIES_PER_PREFECTURE);
        let prefectures: Vec<Office> = (0..prefecture_count)
            .map(|p| {
                let (code4, name) = match HUBEI_PREFECTURES.get(p) {
                    Some((code, name)) => (code.to_string(), name.to_string()),
                    None => (
                        format!("42{}", SYNTHETIC_PREFECTURE_CODE_FIRST + p - HUBEI_PREFECTURES.len()),
                        names::place_name(&mut rng, "市"),
                    ),
                };
                let code = format!("{code4}00");
                office(
                    code.clone(),
                    format!("{name}财政局"),
                    Level::Prefecture,
                    code,
                    Some(&province),
                    OfficeKind::Finance,
                )
            })
            .collect();
        let counties = (0..counties)
            .map(|c| {
                let p = c / COUNTIES_PER_PREFECTURE;
                let code = format!("{}{:02}", &prefectures[p].region[..4], 21 + c % COUNTIES_PER_PREFECTURE);
                let county_name = names::place_name(&mut rng, "县");
                let (finance, poverty, audit) = county_triple(&code, &county_name, &prefectures[p]);
                let (townships, villages) = county_offices(&mut rng, &finance, villages, &[]);
                County { finance, poverty, audit, prefecture: p, townships, villages, short_name: county_name }
            })
            .collect();
        Layout { province, prefectures, counties }
    }
}

/// Months of a run: month index 0 is January of the start year.
#[derive(Clone, Copy, Debug)]
pub struct Calendar {
    pub start_year: i32,
    pub months: u32,
}

impl Calendar {
    pub fn year_of(&self, month: u32) -> i32 {
        self.start_year + (month / 12) as i32
    }

    /// Month of year, 1..=12.
    pub fn month_of_year(&self, month: u32) -> u32 {
        month % 12 + 1
    }

    pub fn date(&self, month: u32, day: u32) -> Date {
        Date::from_ymd(self.year_of(month), self.month_of_year(month), day)
            .expect("generator days exist in every month")
    }

    /// A day of December before the run (setup: offices, households).
    pub fn setup_date(&self, day: u32) -> Date {
        Date::from_ymd(self.start_year - 1, 12, day).expect("a December day")
    }

    pub fn month_period(&self, month: u32) -> Period {
        Period::Month(self.year_of(month), self.month_of_year(month))
    }

    /// The last month-of-year of `year` inside the run.
    pub fn last_month_of_year(&self, year: i32) -> u32 {
        let first = (year - self.start_year) as u32 * 12;
        assert!(first < self.months, "year {year} is outside the run");
        (self.months - first).min(12)
    }

    /// The month of a once-a-year act: `target` month-of-year, or the run's
    /// last month of that year if the run ends earlier.
    pub fn yearly_month(&self, month: u32, target: u32) -> bool {
        let year = self.year_of(month);
        self.month_of_year(month) == target.min(self.last_month_of_year(year))
    }

    /// `yyyymm`, for event ids.
    pub fn tag(&self, month: u32) -> String {
        format!("{:04}{:02}", self.year_of(month), self.month_of_year(month))
    }
}
