//! `sunledger demo`: a synthetic county-year (建始县, several hundred
//! households, five programs, monthly payouts with their roster notices,
//! projects, and one planted case of each misuse rule) imported into a fresh
//! ledger, checkpointed, and served — up in seconds, with the URLs of a
//! village notice page, the county's pages and the auditor's page printed.
//!
//! Each run takes a fresh random seed (unless `--seed` is given), so its
//! keys are new; they are written beside the ledger with mode 0600 so the
//! signed routes can be tried. The data goes to `--data DIR` (which must be
//! empty or absent and is kept) or to a new temporary directory removed at
//! exit.
//!
//! Boundary: an edge like `cli` — the data is `generate`'s, the serving is
//! `server`'s.

use crate::generate::{county_year, keys_json, CountyOptions, Generated};
use crate::keys::KeyMaterial;
use crate::ledger::{Ledger, OnRejection, Outcome, GROUP_EVENTS_MAX};
use rand_core::RngCore;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The generator's log key id (genesis names it).
pub const LOG_KEY_ID: &str = "log/k1";
/// The line the demo prints last once it serves; tests wait for it.
pub const READY_LINE: &str = "Press Ctrl-C to stop.";

/// Options of `sunledger demo`.
#[derive(Clone, Debug, Default)]
pub struct DemoOptions {
    pub addr: String,
    pub data: Option<PathBuf>,
    pub seed: Option<u64>,
}

/// Where the demo keeps its data: a directory it was given, or a temporary one.
enum DataDirectory {
    Given(PathBuf),
    Temporary(tempfile::TempDir),
}

impl DataDirectory {
    fn path(&self) -> &Path {
        match self {
            DataDirectory::Given(path) => path,
            DataDirectory::Temporary(dir) => dir.path(),
        }
    }
}

fn data_directory(data: Option<&Path>) -> Result<DataDirectory, String> {
    let Some(path) = data else {
        let dir = tempfile::Builder::new().prefix("sunledger-demo-").tempdir().map_err(|e| e.to_string())?;
        return Ok(DataDirectory::Temporary(dir));
    };
    if path.exists() {
        let mut entries = std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if entries.next().is_some() {
            return Err(format!(
                "{} is not empty; the demo writes a fresh ledger into an empty directory",
                path.display()
            ));
        }
    } else {
        std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    }
    Ok(DataDirectory::Given(path.to_path_buf()))
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Imports the generated lines in groups; every line must be accepted.
fn import(ledger: &mut Ledger, generated: &Generated) -> Result<(), String> {
    for (group, lines) in generated.lines.chunks(GROUP_EVENTS_MAX).enumerate() {
        let envelopes: Vec<&[u8]> = lines.iter().map(|line| line.as_bytes()).collect();
        let outcomes = ledger.append_group(&envelopes, OnRejection::Stop).map_err(|e| e.to_string())?;
        let first = group * GROUP_EVENTS_MAX;
        for (position, outcome) in outcomes.iter().enumerate() {
            if let Outcome::Rejected(rejection) = outcome {
                return Err(format!("generated line {} was rejected: {}", first + position + 1, rejection.message));
            }
        }
        if outcomes.len() != lines.len() {
            return Err(format!("the ledger answered {} of {} lines", outcomes.len(), lines.len()));
        }
    }
    Ok(())
}

fn log_key(generated: &Generated) -> Result<KeyMaterial, String> {
    let (key_id, secret) =
        generated.keys.iter().find(|(id, _)| id == LOG_KEY_ID).ok_or("the generated keys hold no log key")?;
    Ok(KeyMaterial {
        key_id: key_id.clone(),
        public_key: secret.verifying_key().to_bytes(),
        secret: Some(secret.clone()),
    })
}

/// The URLs printed once the server is bound.
pub fn urls(bound: SocketAddr, generated: &Generated) -> Vec<(&'static str, String)> {
    let host = if bound.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], bound.port())) } else { bound };
    let base = format!("http://{host}");
    let village = &generated.villages[0];
    let county = &generated.county;
    vec![
        ("village notice", format!("{base}/notice/{village}")),
        ("village CSV", format!("{base}/notice/{village}.csv")),
        ("county notice", format!("{base}/notice/{county}")),
        ("county summary", format!("{base}/v1/summary?office={county}")),
        ("auditor page", format!("{base}/audit")),
    ]
}

/// Builds, imports, checkpoints and serves a demo ledger until Ctrl-C or SIGTERM.
pub fn run(options: &DemoOptions) -> Result<(), String> {
    let started = std::time::Instant::now();
    // 32 random bits: enough for a fresh world each run, and a seed (it is in the
    // ledger id and name) never looks like a 16–19 digit card number on a page.
    let seed = options.seed.unwrap_or_else(|| u64::from(rand_core::OsRng.next_u32()));
    let directory = data_directory(options.data.as_deref())?;
    let generated = county_year(seed, CountyOptions { misuse: true, ..CountyOptions::default() });
    let keys_path = directory.path().join("keys.json");
    write_private(&keys_path, &keys_json(&generated.keys))?;
    let mut ledger = Ledger::open(&directory.path().join("ledger")).map_err(|e| e.to_string())?;
    import(&mut ledger, &generated)?;
    let key = log_key(&generated)?;
    ledger.issue_checkpoint(&key.key_id, key.signing_key()?)?;
    let size = ledger.head().size;
    let kept = match &directory {
        DataDirectory::Given(_) => "kept",
        DataDirectory::Temporary(_) => "removed at exit",
    };
    println!(
        "sunledger demo — synthetic county-year 合成数据 (seed {seed}): {} events, {} households, {} planted misuse cases",
        generated.lines.len(),
        generated.households,
        generated.planted.len()
    );
    println!("  data:            {} ({kept})", directory.path().display());
    println!("  keys:            {} (mode 0600; this run's test-only keys)", keys_path.display());
    println!("  checkpoint:      tree size {size}, signed by {}", key.key_id);
    let _ = std::io::stdout().flush();
    crate::cli::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let result = runtime.block_on(async {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let printer = tokio::spawn(async move {
            let Ok(bound) = ready_rx.await else { return };
            for (label, url) in urls(bound, &generated) {
                let note = if label == "auditor page" { "   (this machine only: loopback)" } else { "" };
                println!("  {:<16} {url}{note}", format!("{label}:"));
            }
            println!("  ready in {} ms. {READY_LINE}", started.elapsed().as_millis());
            let _ = std::io::stdout().flush();
        });
        let served = crate::server::serve_async(ledger, Some(key), &options.addr, Some(ready_tx), None).await;
        printer.abort();
        served
    });
    drop(directory);
    result
}
