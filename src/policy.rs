//! The misuse-rule policy (SPEC §7): every threshold of the rules as a named
//! parameter with its default and the policy text it comes from, overridable
//! per program and per office in a TOML file.
//!
//! Owns: the parameter table, parsing and validating the policy file, and
//! resolving the thresholds that apply to one office and program.
//! Never: does I/O except in [`Policy::load`], or accepts a file it does not
//! fully understand (unknown tables, unknown keys, non-integers and
//! impossible values are errors, so a typo cannot silently leave a default in
//! force).
//!
//! # File format
//!
//! ```toml
//! # Every table and key is optional.
//! [defaults]                 # replaces the built-in defaults for everyone
//! idle_days = 365
//!
//! [program.dibao]            # payouts/accounts of program `dibao`
//! late_payout_days = 15
//!
//! [office.422822]            # office 422822 and every office below it
//! pass_through_days = 20
//! ```
//!
//! Resolution for an act of office O with program P, one parameter at a time:
//! the built-in default, then `[defaults]`, then `[program.P]`, then the
//! `[office.X]` tables of O's ancestors from the top down, then `[office.O]`
//! itself; the last one that sets the parameter wins. So an office's own
//! rule beats its parent's, and any office rule beats a program rule (the
//! office is the narrower scope: a county may be stricter than the program).
//!
//! Values are non-negative integers (TOML allows `400_000_000`); each has a
//! range below, and cross-parameter constraints (`idle_severe_days ≥
//! idle_days`, band low < band high) are checked in every table after
//! merging it over the defaults. See `tools/policy.example.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A policy file larger than this is refused (it is a handful of tables).
pub const POLICY_BYTES_MAX: usize = 1024 * 1024;
/// No day threshold may exceed a century: a larger value is a typo.
pub const DAYS_MAX: u64 = 36_525;
/// SPEC §1: amounts are at most 2^53 − 1 fen.
pub const FEN_MAX: u64 = (1 << 53) - 1;
/// Counts of payouts or expenditures a rule waits for.
pub const COUNT_MAX: u64 = 1_000_000;
/// The outlier multiple is a plain integer factor.
pub const MULTIPLE_MAX: u64 = 1_000;

/// One parameter as documented: name, default, allowed range and source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParameterSpec {
    pub name: &'static str,
    pub default: u64,
    pub min: u64,
    pub max: u64,
    /// The policy text (or the project's decision) the default comes from.
    pub source: &'static str,
}

macro_rules! parameters {
    ($( $(#[$doc:meta])* $field:ident = $default:expr, min $min:expr, max $max:expr, $source:literal; )*) => {
        /// The thresholds in force for one office and program.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Thresholds {
            $( $(#[$doc])* pub $field: u64, )*
        }

        impl Default for Thresholds {
            fn default() -> Self {
                Thresholds { $( $field: $default, )* }
            }
        }

        /// Every parameter, in documentation order.
        pub const PARAMETERS: &[ParameterSpec] = &[
            $( ParameterSpec { name: stringify!($field), default: $default, min: $min, max: $max, source: $source }, )*
        ];

        impl Thresholds {
            fn set(&mut self, name: &str, value: u64) {
                match name {
                    $( stringify!($field) => self.$field = value, )*
                    _ => unreachable!("parameter names are checked against PARAMETERS before set"),
                }
            }
        }
    };
}

parameters! {
    /// stalled_pass_through: a lot held longer than this at central, province
    /// or prefecture level before moving on (or still held) is flagged.
    pass_through_days = 30, min 0, max DAYS_MAX,
        "财农〔2017〕8号《中央财政专项扶贫资金管理办法》: funds are passed down within 30 days of receipt";
    /// idle_funds: a lot still held this many days or more is idle.
    idle_days = 365, min 0, max DAYS_MAX,
        "国办发〔2014〕70号 on 盘活财政存量资金: money unspent after one year is carried over (结转)";
    /// idle_funds: from this many days on the flag is severe (high).
    idle_severe_days = 730, min 0, max DAYS_MAX,
        "国办发〔2014〕70号: money unspent after two years is a balance (结余) to be recovered";
    /// paid_before_notice: a roster notice must last at least this many days.
    roster_notice_days_min = 7, min 1, max DAYS_MAX,
        "公告公示制度: payout rosters are posted at least 7 days before payment";
    /// Project notices last at least this many days (SPEC §9). No rule of
    /// SPEC §7 checks project notices yet; the parameter is validated and
    /// kept for the notice views.
    project_notice_days_min = 10, min 1, max DAYS_MAX,
        "国开办发〔2017〕50号 on 扶贫资金项目公告公示: project notices last at least 10 days";
    /// structuring: the tender threshold of construction works, in fen.
    tender_construction_fen = 400_000_000, min 1, max FEN_MAX,
        "国家发展改革委令2018年第16号《必须招标的工程项目规定》: construction 4,000,000 yuan";
    /// structuring: the tender threshold of goods, in fen.
    tender_goods_fen = 200_000_000, min 1, max FEN_MAX,
        "国家发展改革委令2018年第16号: goods 2,000,000 yuan";
    /// structuring: the tender threshold of services and every other category, in fen.
    tender_services_fen = 100_000_000, min 1, max FEN_MAX,
        "国家发展改革委令2018年第16号: services (and here every other category) 1,000,000 yuan";
    /// structuring: an expenditure at or above this percent of its threshold is near it.
    structuring_band_low_percent = 90, min 0, max 100,
        "project decision (SPEC §7): the [90%, 100%) band just below a tender threshold";
    /// structuring: and below this percent (exclusive).
    structuring_band_high_percent = 100, min 1, max 100,
        "project decision (SPEC §7): the band ends at the threshold itself";
    /// structuring: near-threshold expenditures to one payee within this many days…
    structuring_window_days = 30, min 0, max DAYS_MAX,
        "project decision (SPEC §7): a 30-day window";
    /// structuring: …at least this many of them.
    structuring_count_min = 3, min 1, max COUNT_MAX,
        "project decision (SPEC §7): three or more";
    /// outlier_payout: a payout above this multiple of the median…
    outlier_median_multiple = 5, min 1, max MULTIPLE_MAX,
        "project decision (SPEC §7): five times the median";
    /// outlier_payout: …of at least this many payouts by the same office, program and period.
    outlier_payouts_min = 5, min 1, max COUNT_MAX,
        "project decision (SPEC §7): a median of at least five payouts";
    /// late_payout: a payout more than this many days after its period ends is late.
    late_payout_days = 30, min 0, max DAYS_MAX,
        "及时足额 (on time, in full): paid within 30 days of the period's end";
    /// ineligible_household: benefits continue this many days after exit (脱贫).
    transition_days = 1_825, min 0, max DAYS_MAX,
        "中发〔2020〕30号 on 巩固拓展脱贫攻坚成果: a five-year transition period (过渡期) after exit";
}

/// Why a policy file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy: {}", self.0)
    }
}

impl std::error::Error for PolicyError {}

fn policy_error<T>(message: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(message.into()))
}

/// Parameter values set by one table of the file (validated).
pub type Overrides = BTreeMap<&'static str, u64>;

/// A parsed policy: defaults plus per-program and per-office overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub defaults: Overrides,
    pub programs: BTreeMap<String, Overrides>,
    pub offices: BTreeMap<String, Overrides>,
}

impl Policy {
    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let bytes = std::fs::read(path).map_err(|e| PolicyError(format!("cannot read {}: {e}", path.display())))?;
        if bytes.len() > POLICY_BYTES_MAX {
            return policy_error(format!("{} is {} bytes, at most {POLICY_BYTES_MAX}", path.display(), bytes.len()));
        }
        let text = String::from_utf8(bytes).map_err(|_| PolicyError(format!("{} is not UTF-8", path.display())))?;
        Policy::parse(&text).map_err(|e| PolicyError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses policy TOML. All or nothing: the first problem is reported.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| PolicyError(format!("not valid TOML: {e}")))?;
        let mut policy = Policy::default();
        for (key, value) in &table {
            match key.as_str() {
                "defaults" => policy.defaults = overrides("[defaults]", value)?,
                "program" => policy.programs = scoped("program", value)?,
                "office" => policy.offices = scoped("office", value)?,
                other => {
                    return policy_error(format!(
                        "unknown top-level key `{other}` (known: [defaults], [program.<id>], [office.<id>])"
                    ))
                }
            }
        }
        let base = policy.defaults.clone();
        check_combined("[defaults]", &base, &Overrides::new())?;
        for (id, table) in &policy.programs {
            check_combined(&format!("[program.{id}]"), &base, table)?;
        }
        for (id, table) in &policy.offices {
            check_combined(&format!("[office.{id}]"), &base, table)?;
        }
        Ok(policy)
    }

    /// The thresholds for an act of `offices[0]` (its ancestors follow,
    /// nearest first) with `program`.
    pub fn resolve(&self, offices: &[&str], program: &str) -> Thresholds {
        let mut thresholds = Thresholds::default();
        let mut apply = |table: &Overrides| table.iter().for_each(|(name, value)| thresholds.set(name, *value));
        apply(&self.defaults);
        if let Some(table) = self.programs.get(program) {
            apply(table);
        }
        for office in offices.iter().rev() {
            if let Some(table) = self.offices.get(*office) {
                apply(table);
            }
        }
        thresholds
    }
}

/// `[program.<id>]` or `[office.<id>]`: a table of tables.
fn scoped(kind: &str, value: &toml::Value) -> Result<BTreeMap<String, Overrides>, PolicyError> {
    let Some(table) = value.as_table() else {
        return policy_error(format!("`{kind}` must be a table of [{kind}.<id>] tables"));
    };
    let mut out = BTreeMap::new();
    for (id, inner) in table {
        if !is_id(id) {
            return policy_error(format!("[{kind}.{id}]: `{id}` is not an id [A-Za-z0-9._:-]{{1,64}}"));
        }
        out.insert(id.clone(), overrides(&format!("[{kind}.{id}]"), inner)?);
    }
    Ok(out)
}

fn is_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// One table of parameter values, each known, an integer and in range.
fn overrides(place: &str, value: &toml::Value) -> Result<Overrides, PolicyError> {
    let Some(table) = value.as_table() else {
        return policy_error(format!("{place} must be a table"));
    };
    let mut out = Overrides::new();
    for (key, value) in table {
        let Some(spec) = PARAMETERS.iter().find(|p| p.name == key) else {
            let known: Vec<&str> = PARAMETERS.iter().map(|p| p.name).collect();
            return policy_error(format!("{place}: unknown key `{key}` (known: {})", known.join(", ")));
        };
        let Some(number) = value.as_integer() else {
            return policy_error(format!("{place}: `{key}` must be an integer, not {}", value.type_str()));
        };
        let in_range = u64::try_from(number).ok().filter(|n| (spec.min..=spec.max).contains(n));
        let Some(number) = in_range else {
            return policy_error(format!(
                "{place}: `{key}` = {number} is impossible (allowed {}..={})",
                spec.min, spec.max
            ));
        };
        out.insert(spec.name, number);
    }
    Ok(out)
}

/// Cross-parameter constraints of a table merged over `[defaults]`.
fn check_combined(place: &str, base: &Overrides, table: &Overrides) -> Result<(), PolicyError> {
    let mut thresholds = Thresholds::default();
    base.iter().chain(table.iter()).for_each(|(name, value)| thresholds.set(name, *value));
    if thresholds.idle_severe_days < thresholds.idle_days {
        return policy_error(format!(
            "{place}: idle_severe_days ({}) is below idle_days ({})",
            thresholds.idle_severe_days, thresholds.idle_days
        ));
    }
    if thresholds.structuring_band_low_percent >= thresholds.structuring_band_high_percent {
        return policy_error(format!(
            "{place}: the structuring band [{}%, {}%) is empty",
            thresholds.structuring_band_low_percent, thresholds.structuring_band_high_percent
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_table_matches_defaults() {
        // Goal: the documented table and the Default impl cannot drift apart.
        let defaults = Thresholds::default();
        let mut rebuilt = Thresholds::default();
        for spec in PARAMETERS {
            assert!((spec.min..=spec.max).contains(&spec.default), "{}", spec.name);
            rebuilt.set(spec.name, spec.default);
        }
        assert_eq!(rebuilt, defaults);
        assert_eq!(PARAMETERS.len(), 16);
    }
}
