//! `sunledger generate county|province`: thin over [`super::county_year`] and
//! [`super::province`]. Validates options before generating (nothing on the
//! input path panics), writes the envelopes and, on request, the keys.

use super::{county_year, keys_json, province, CountyOptions, ProvinceOptions};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum GenerateCommand {
    /// A county-year (县级年度账本), optionally with one planted case of each misuse rule.
    ///
    /// 湖北省 → 恩施州 → 建始县 with its poverty office (扶贫办) and audit office
    /// (审计局), villages, registered households (建档立卡户), five programs (低保,
    /// 教育资助, 生态护林员, 产业扶贫, 以工代赈), monthly funding passed down within
    /// days, roster notices (公示) before every payout, projects in the project
    /// library (项目库), refunds and household changes. --misuse plants one clear
    /// case of each of the 17 misuse rules (疑点) and prints them.
    County {
        /// Where to write the DSSE envelopes, one per line, genesis first.
        #[arg(long)]
        out: PathBuf,
        /// Seed: the same seed gives byte-identical output and keys.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Plant one clear case of each of the 17 misuse rules (SPEC §7).
        #[arg(long)]
        misuse: bool,
        /// Also write every key (test-only secrets) in the vectors' keys.json format (mode 0600).
        #[arg(long)]
        keys_out: Option<PathBuf>,
        /// Villages (行政村) in the county.
        #[arg(long, default_value_t = 8)]
        villages: usize,
        /// Registered households (建档立卡户) per village.
        #[arg(long, default_value_t = 40)]
        households: usize,
        /// Calendar year of the ledger (setup is dated the December before).
        #[arg(long, default_value_t = 2019)]
        year: i32,
    },
    /// A province-scale ledger (省级账本) streamed in chain order, signed on all cores.
    ///
    /// Many clean county-years side by side (no planted cases), month by month
    /// from January 2019; memory stays flat whatever the output size. Prints
    /// the events written and the rate.
    Province {
        /// Where to write the DSSE envelopes, one per line, genesis first.
        #[arg(long)]
        out: PathBuf,
        /// Seed: the same seed gives byte-identical output and keys.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Counties (县), ten to a prefecture (市州).
        #[arg(long, default_value_t = 10)]
        counties: usize,
        /// Villages (行政村) per county.
        #[arg(long, default_value_t = 8)]
        villages: usize,
        /// Registered households (建档立卡户) per village.
        #[arg(long, default_value_t = 40)]
        households: usize,
        /// Months from January 2019.
        #[arg(long, default_value_t = 12)]
        months: u32,
        /// How many of the five programs (低保, 教育资助, 生态护林员, 产业扶贫, 以工代赈) take part.
        #[arg(long, default_value_t = 5)]
        programs: usize,
        /// Also write every key in the vectors' keys.json format (mode 0600).
        #[arg(long)]
        keys_out: Option<PathBuf>,
    },
}

fn create(path: &Path, private: bool) -> Result<std::fs::File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options.open(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn write_keys(path: &Path, keys: &[(String, ed25519_dalek::SigningKey)]) -> Result<(), String> {
    let mut file = create(path, true)?;
    file.write_all(keys_json(keys).as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Runs `generate`; returns the exit code.
pub fn run_cli(command: GenerateCommand) -> Result<i32, String> {
    match command {
        GenerateCommand::County { out, seed, misuse, keys_out, villages, households, year } => {
            let options = CountyOptions { villages, households_per_village: households, year, misuse };
            options.check()?;
            let generated = county_year(seed, options);
            let mut text = generated.lines.join("\n");
            text.push('\n');
            create(&out, false)?
                .write_all(text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            if let Some(path) = keys_out {
                write_keys(&path, &generated.keys)?;
            }
            println!(
                "wrote {} events of ledger {} ({} households) to {}",
                generated.lines.len(),
                generated.ledger_id,
                generated.households,
                out.display()
            );
            for planted in &generated.planted {
                println!(
                    "planted {} on {} {}: {}",
                    planted.rule, planted.subject_kind, planted.subject_id, planted.what
                );
            }
            Ok(crate::cli::EXIT_OK)
        }
        GenerateCommand::Province { out, seed, counties, villages, households, months, programs, keys_out } => {
            let options = ProvinceOptions {
                counties,
                villages_per_county: villages,
                households_per_village: households,
                months,
                programs,
            };
            options.check()?;
            let mut file = create(&out, false)?;
            let started = std::time::Instant::now();
            let summary =
                province(seed, options, &mut file).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            let seconds = started.elapsed().as_secs_f64();
            if let Some(path) = keys_out {
                write_keys(&path, &summary.keys)?;
            }
            println!(
                "wrote {} events of ledger {} ({} households) to {} in {seconds:.1} s ({:.0} events/s)",
                summary.events,
                summary.ledger_id,
                summary.households,
                out.display(),
                summary.events as f64 / seconds.max(1e-9)
            );
            Ok(crate::cli::EXIT_OK)
        }
    }
}
