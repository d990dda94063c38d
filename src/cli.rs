//! The command-line interface. Thin: parses arguments, calls the library,
//! prints. Exit codes: 0 success, 1 rejected input or invalid chain, 2 usage
//! or I/O error, 3 `import --keep-going` with rejected lines.
//!
//! Human-readable output by default (amounts in yuan), `--json` for machines
//! (amounts in fen).

use crate::chain::{export_line, parse_export_line};
use crate::envelope::Envelope;
use crate::ledger::{Ledger, OnRejection, Outcome, GROUP_EVENTS_MAX};
use crate::lines::{read_line_bounded, Line};
use crate::store::{SledStore, Store as _};
use crate::verify::Verifier;
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

pub const EXIT_OK: i32 = 0;
pub const EXIT_REJECTED: i32 = 1;
pub const EXIT_ERROR: i32 = 2;
pub const EXIT_SOME_REJECTED: i32 = 3;

#[derive(Parser)]
#[command(
    name = "sunledger",
    version,
    about = "A signed, hash-chained ledger for poverty-relief funds (扶贫资金账本): money that runs in the sunlight."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make an Ed25519 key file {"key_id","public_key","secret_key"} (mode 0600).
    Keygen {
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        out: PathBuf,
        /// Protect the secret with a passphrase (Argon2id + ChaCha20-Poly1305), taken from
        /// SUNLEDGER_PASSPHRASE or asked on the terminal; every --key option accepts such files.
        #[arg(long)]
        passphrase: bool,
    },
    /// Sign payload JSON bytes exactly as given; print one DSSE envelope line.
    Sign {
        /// Key files; give two for dual control (双人复核).
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// The payload file (stdin if absent).
        payload: Option<PathBuf>,
    },
    /// Create a ledger with its genesis event (创世事件).
    Init {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        ledger: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        root_key: PathBuf,
        #[arg(long)]
        log_key: PathBuf,
        /// Business date of genesis (default: today, UTC).
        #[arg(long)]
        at: Option<String>,
    },
    /// Append DSSE envelopes, one per line, durably and in groups.
    Import {
        #[arg(long)]
        data: PathBuf,
        /// Go on after a rejected line (exit 3 if any was rejected).
        #[arg(long)]
        keep_going: bool,
        file: PathBuf,
    },
    /// Write the chain as JSON Lines records (SPEC §5), streaming.
    Export {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Replay and verify an export or a data directory; report the first bad seq.
    Verify {
        /// An export file (JSON Lines records).
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        data: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// A signed checkpoint (C2SP note) the chain must contain.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Key ids (auditor role) that must have cosigned the checkpoint.
        #[arg(long = "require-cosigner", requires = "checkpoint")]
        require_cosigner: Vec<String>,
        /// Directory for the id table's unnamed scratch files (~150 bytes per
        /// event, removed on exit); default: the system's temporary directory.
        #[arg(long)]
        scratch: Option<PathBuf>,
    },
    /// Sign and store a checkpoint (检查点) of the current tree with the log key.
    Checkpoint {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        log_key: PathBuf,
    },
    /// Add a witness signature line (见证签名) to a checkpoint; prints the note.
    Cosign {
        #[arg(long)]
        key: PathBuf,
        checkpoint_file: PathBuf,
    },
    /// Rebuild a ledger from an export (备份恢复), verifying it and keeping its
    /// seqs, recorded_at and hashes, so its checkpoint roots equal the original's.
    Restore {
        #[arg(long)]
        data: PathBuf,
        export: PathBuf,
    },
    /// Run the HTTP service (JSON API, checkpoints, notice pages).
    Serve {
        #[arg(long)]
        data: PathBuf,
        /// The ledger's log key (named in genesis), for checkpoints.
        #[arg(long)]
        log_key: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Serve a synthetic county-year (演示): notice pages, auditor page and API, up in seconds.
    ///
    /// Generates a county-year with one planted case of each misuse rule under a fresh
    /// random seed, imports it, issues a checkpoint and serves it; prints the URLs of a
    /// village notice page, the county summary and the auditor page.
    Demo {
        /// Where to listen; port 0 picks a free port (the printed URLs show it).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// An empty (or new) directory for the ledger and keys, kept after exit
        /// (default: a temporary directory removed at exit).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Seed of the synthetic data (default: random).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Merkle proofs (RFC 9162), hex, in the shape of vectors/merkle.json.
    Prove {
        #[command(subcommand)]
        proof: ProveCommand,
    },
    /// Fund account balances (资金余额) and the money totals.
    Balance {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Misuse flags (疑点), sorted by rule then subject.
    Flags {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        rule: Option<String>,
        #[arg(long)]
        office: Option<String>,
        /// Policy file (default: policy.toml in the data directory, if present).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// One fund account: balance, lots with ages (资金批次与滞留天数), flows.
    Account {
        #[arg(long)]
        data: PathBuf,
        /// OFFICE/PROGRAM
        account: String,
        #[arg(long)]
        json: bool,
    },
    /// One household (农户): status, members (masked), card (masked), payouts, flags.
    Household {
        #[arg(long)]
        data: PathBuf,
        id: String,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Fund flow per office and program (资金流向): received, passed on, paid, spent, held, oldest age.
    Summary {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        office: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Recompute every projection from the chain and compare with the stored one.
    Rebuild {
        #[arg(long)]
        data: PathBuf,
    },
    /// Write a deterministic synthetic ledger (合成账本) for tests, demos and benchmarks.
    Generate {
        #[command(subcommand)]
        target: crate::generate::GenerateCommand,
    },
    #[command(flatten)]
    Bureau(crate::bureau::BureauCommand),
}

#[derive(Subcommand)]
enum ProveCommand {
    /// Inclusion proof of record SEQ in the tree of SIZE records (default: all).
    Inclusion {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        seq: u64,
        #[arg(long)]
        size: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Consistency proof from the tree of FROM records to TO (default: all).
    Consistency {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: Option<u64>,
        #[arg(long)]
        json: bool,
    },
}

/// Parses arguments and runs the command; returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = error.print();
            return code;
        }
    };
    let result = match cli.command {
        Command::Keygen { key_id, out, passphrase } => keygen(&key_id, &out, passphrase),
        Command::Sign { keys, payload } => sign(&keys, payload.as_deref()),
        Command::Init { data, ledger, name, root_key, log_key, at } => {
            init(&data, &ledger, &name, &root_key, &log_key, at.as_deref())
        }
        Command::Import { data, keep_going, file } => import(&data, keep_going, &file),
        Command::Export { data, out } => export(&data, out.as_deref()),
        Command::Verify { file, data, json, checkpoint, require_cosigner, scratch } => {
            verify(file.as_deref(), data.as_deref(), scratch, json, checkpoint.as_deref(), &require_cosigner)
        }
        Command::Checkpoint { data, log_key } => issue_checkpoint(&data, &log_key),
        Command::Cosign { key, checkpoint_file } => cosign(&key, &checkpoint_file),
        Command::Prove { proof } => prove(proof),
        Command::Restore { data, export } => match restore(&data, &export) {
            Err(message) if message.starts_with("restore stopped") => {
                println!("{message}");
                Ok(EXIT_REJECTED)
            }
            other => other,
        },
        Command::Serve { data, log_key, addr, policy } => {
            let policy = policy_path(&data, policy);
            serve(&data, &log_key, &addr, policy.as_deref())
        }
        Command::Demo { addr, data, seed } => {
            crate::demo::run(&crate::demo::DemoOptions { addr, data, seed }).map(|()| EXIT_OK)
        }
        Command::Balance { data, json } => balance(&data, json),
        Command::Flags { data, json, rule, office, policy } => open_existing(&data).and_then(|l| {
            crate::report::flags(&l, json, rule.as_deref(), office.as_deref(), policy_path(&data, policy).as_deref())
        }),
        Command::Account { data, account, json } => {
            open_existing(&data).and_then(|l| crate::report::account(&l, &account, json))
        }
        Command::Household { data, id, json, policy } => open_existing(&data)
            .and_then(|l| crate::report::household(&l, &id, json, policy_path(&data, policy).as_deref())),
        Command::Summary { data, office, json } => {
            open_existing(&data).and_then(|l| crate::report::summary(&l, office.as_deref(), json))
        }
        Command::Rebuild { data } => open_existing(&data).and_then(|l| crate::report::rebuild(&l)),
        Command::Bureau(command) => crate::bureau::run(command),
        Command::Generate { target } => crate::generate::run_cli(target),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            EXIT_ERROR
        }
    }
}

type CommandResult = Result<i32, String>;

fn keygen(key_id: &str, out: &Path, passphrase: bool) -> CommandResult {
    if !crate::payload::Id(key_id.to_string())
        .as_str()
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._:/-".contains(c))
        || key_id.is_empty()
        || key_id.len() > 64
    {
        return Err(format!("key id {key_id:?} is not [A-Za-z0-9._:/-]{{1,64}}"));
    }
    let key = crate::keys::generate(key_id);
    if passphrase {
        crate::keys::write_encrypted(out, &key, &crate::keys::new_passphrase(key_id)?)?;
    } else {
        crate::keys::write(out, &key)?;
    }
    println!("wrote {} ({key_id}, public key {})", out.display(), crate::encoding::base64_encode(&key.public_key));
    Ok(EXIT_OK)
}

fn signing_keys(paths: &[PathBuf]) -> Result<Vec<(String, ed25519_dalek::SigningKey)>, String> {
    paths
        .iter()
        .map(|path| {
            let key = crate::keys::read(path)?;
            let secret = key.signing_key()?.clone();
            Ok((key.key_id, secret))
        })
        .collect()
}

fn sign(key_paths: &[PathBuf], payload: Option<&Path>) -> CommandResult {
    let keys = signing_keys(key_paths)?;
    let bytes = match payload {
        Some(path) => std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("cannot read stdin: {e}"))?;
            bytes
        }
    };
    if bytes.len() > crate::payload::PAYLOAD_BYTES_MAX {
        return Err(format!("the payload is {} bytes, at most {}", bytes.len(), crate::payload::PAYLOAD_BYTES_MAX));
    }
    println!("{}", Envelope::sign(bytes, &keys).to_json());
    Ok(EXIT_OK)
}

fn today() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    crate::date::Date::from_days_since_epoch((ms / 86_400_000) as i32).to_string()
}

fn init(data: &Path, ledger_id: &str, name: &str, root_key: &Path, log_key: &Path, at: Option<&str>) -> CommandResult {
    let root = crate::keys::read(root_key)?;
    let log = crate::keys::read(log_key)?;
    let at = at.map_or_else(today, str::to_string);
    let b64 = crate::encoding::base64_encode;
    let payload = serde_json::json!({
        "v": 1, "ledger": ledger_id, "id": "genesis", "kind": "genesis", "office": "root", "at": at,
        "body": {
            "name": name,
            "root_keys": [{"key_id": root.key_id, "public_key": b64(&root.public_key)}],
            "log_key": {"key_id": log.key_id, "public_key": b64(&log.public_key)},
            "currency": "CNY",
        },
    });
    let envelope =
        Envelope::sign(payload.to_string().into_bytes(), &[(root.key_id.clone(), root.signing_key()?.clone())]);
    let mut ledger = open_ledger(data)?;
    if ledger.head().size != 0 {
        return Err(format!("{} already holds a ledger", data.display()));
    }
    let outcomes =
        ledger.append_group(&[envelope.to_json().as_bytes()], OnRejection::Stop).map_err(|e| e.to_string())?;
    match outcomes.first() {
        Some(Outcome::Appended { hash, .. }) => {
            ledger.save_snapshot().map_err(|e| e.to_string())?;
            println!("created ledger {ledger_id} in {} (genesis hash {})", data.display(), crate::encoding::hex(hash));
            Ok(EXIT_OK)
        }
        Some(Outcome::Rejected(rejection)) => {
            eprintln!("{}", rejection.to_json());
            Ok(EXIT_REJECTED)
        }
        _ => Err("genesis was not appended".into()),
    }
}

/// The policy file: the one given, else `policy.toml` in the data directory.
fn policy_path(data: &Path, given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| Some(data.join("policy.toml")).filter(|p| p.exists()))
}

fn open_ledger(data: &Path) -> Result<Ledger, String> {
    Ledger::open(data).map_err(|e| e.to_string())
}

fn open_existing(data: &Path) -> Result<Ledger, String> {
    if !data.exists() {
        return Err(format!("no ledger at {}", data.display()));
    }
    open_ledger(data)
}

/// The store alone, for commands that only stream records (`export`,
/// `verify --data`): no snapshot is loaded and no state or projection is
/// built, so their memory does not grow with the ledger. The store's own
/// open checks still run (the record file against the head), and its
/// records come to the head or end in an error.
fn open_existing_store(data: &Path) -> Result<SledStore, String> {
    if !data.exists() {
        return Err(format!("no ledger at {}", data.display()));
    }
    SledStore::open(data).map_err(|e| e.to_string())
}

/// Progress on stderr, only for a person watching a terminal.
struct Progress {
    enabled: bool,
    accepted: u64,
    repeated: u64,
    rejected: u64,
}

impl Progress {
    fn show(&self, line: u64) {
        if self.enabled {
            eprint!("\r{line} lines read, {} accepted, {} rejected", self.accepted, self.rejected);
        }
    }

    fn done(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}

/// Groups the importer's preparer thread may run ahead of the writer.
pub const IMPORT_GROUPS_AHEAD: usize = 2;

/// A group of lines read and prepared (signatures verified) ahead of the writer.
struct ReadyGroup {
    prepared: crate::ledger::PreparedEnvelopes,
    numbers: Vec<u64>,
    early: Vec<(u64, crate::error::Rejection)>,
    last_line: u64,
}

/// Reads groups of lines and prepares them (parse, verify signatures on all
/// cores) while the writer commits the previous group: a two-stage pipeline.
/// Keys registered by earlier groups are carried forward; a signature whose
/// key turns out different is re-checked by `validate`.
fn prepare_groups(
    mut reader: BufReader<std::fs::File>,
    mut keys: std::collections::HashMap<String, [u8; 32]>,
    store: std::sync::Arc<dyn crate::store::Store>,
    sender: std::sync::mpsc::SyncSender<Result<ReadyGroup, String>>,
) {
    let mut line_number = 0u64;
    loop {
        // A group ends at the first unreadable line, so every line of the
        // group comes before it.
        let (group, numbers, early) = match read_group(&mut reader, &mut line_number) {
            Ok(read) => read,
            Err(error) => {
                let _ = sender.send(Err(error));
                return;
            }
        };
        if group.is_empty() && early.is_empty() {
            return;
        }
        let slices: Vec<&[u8]> = group.iter().map(Vec::as_slice).collect();
        let no_pending = std::collections::HashMap::new();
        let index = crate::ledger::GroupIndex { store: store.as_ref(), pending: &no_pending };
        let (prepared, new_keys) = crate::ledger::PreparedEnvelopes::build(&slices, &keys, &index);
        for (key_id, public_key) in new_keys {
            keys.entry(key_id).or_insert(public_key);
        }
        if sender.send(Ok(ReadyGroup { prepared, numbers, early, last_line: line_number })).is_err() {
            return; // the writer stopped
        }
    }
}

fn import(data: &Path, keep_going: bool, file: &Path) -> CommandResult {
    let input = std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let reader = BufReader::with_capacity(1 << 20, input);
    let mut ledger = open_ledger(data)?;
    let on_rejection = if keep_going { OnRejection::KeepGoing } else { OnRejection::Stop };
    let mut progress = Progress { enabled: std::io::stderr().is_terminal(), accepted: 0, repeated: 0, rejected: 0 };
    let mut stopped = false;
    let (sender, receiver) = std::sync::mpsc::sync_channel(IMPORT_GROUPS_AHEAD);
    let (keys, store) = (ledger.public_keys(), ledger.store_handle());
    let preparer = std::thread::spawn(move || prepare_groups(reader, keys, store, sender));
    let mut failure: Option<String> = None;
    for ready in receiver.iter() {
        let ready = match ready {
            Ok(ready) => ready,
            Err(error) => {
                failure = Some(error);
                break;
            }
        };
        let mut group = ledger.begin_group();
        let outcomes = match group.submit(ready.prepared, on_rejection).and_then(|o| group.commit().map(|()| o)) {
            Ok(outcomes) => outcomes,
            Err(error) => {
                failure = Some(error.to_string());
                break;
            }
        };
        if count_outcomes(&outcomes, &ready.numbers, &mut progress) && !keep_going {
            stopped = true;
            break;
        }
        for (number, rejection) in &ready.early {
            report_rejection(*number, rejection);
            progress.rejected += 1;
        }
        if !ready.early.is_empty() && !keep_going {
            stopped = true;
            break;
        }
        progress.show(ready.last_line);
    }
    drop(receiver);
    let _ = preparer.join();
    if let Some(error) = failure {
        return Err(error);
    }
    progress.done();
    ledger.save_snapshot().map_err(|e| e.to_string())?;
    println!(
        "{}: {} appended, {} already present, {} rejected; the ledger holds {} events",
        file.display(),
        progress.accepted,
        progress.repeated,
        progress.rejected,
        ledger.head().size
    );
    if stopped {
        return Ok(EXIT_REJECTED);
    }
    Ok(if progress.rejected > 0 { EXIT_SOME_REJECTED } else { EXIT_OK })
}

/// Prints rejections of a group's outcomes; returns whether any was rejected.
fn count_outcomes(outcomes: &[Outcome], numbers: &[u64], progress: &mut Progress) -> bool {
    let mut any = false;
    for (outcome, number) in outcomes.iter().zip(numbers) {
        match outcome {
            Outcome::Rejected(rejection) => {
                report_rejection(*number, rejection);
                progress.rejected += 1;
                any = true;
            }
            Outcome::Repeated { .. } => progress.repeated += 1,
            Outcome::Appended { .. } => progress.accepted += 1,
            Outcome::Skipped => {}
        }
    }
    any
}

fn report_rejection(line: u64, rejection: &crate::error::Rejection) {
    let value = serde_json::json!({"line": line, "error": rejection.code.as_str(), "message": rejection.message});
    eprintln!("{value}");
}

type Group = (Vec<Vec<u8>>, Vec<u64>, Vec<(u64, crate::error::Rejection)>);

/// Reads up to a group of non-blank lines. Lines too long to be an envelope
/// are rejected here, without being held in memory.
fn read_group(reader: &mut dyn BufRead, line_number: &mut u64) -> Result<Group, String> {
    let mut group = Vec::new();
    let mut numbers = Vec::new();
    let mut early = Vec::new();
    while group.len() < GROUP_EVENTS_MAX && early.is_empty() {
        let line = read_line_bounded(reader, crate::envelope::ENVELOPE_BYTES_MAX)
            .map_err(|e| format!("cannot read input: {e}"))?;
        let Some(line) = line else { break };
        *line_number += 1;
        match line {
            Line::Complete(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
            Line::Complete(bytes) => {
                group.push(bytes);
                numbers.push(*line_number);
            }
            Line::TooLong(length) => early.push((
                *line_number,
                crate::error::Rejection::new(
                    crate::error::Code::BadEnvelope,
                    format!("line is {length} bytes, at most {}", crate::envelope::ENVELOPE_BYTES_MAX),
                ),
            )),
        }
    }
    Ok((group, numbers, early))
}

/// `export`: the whole chain as export lines (SPEC §6), to `out` or stdout.
///
/// With `--out`, the lines go to a new file beside `out` that takes `out`'s
/// name only once the whole chain is written and synced: a store that turns
/// out short or unreadable part-way (exit 2) leaves no partial export
/// behind, and an existing file at `out` is untouched until then.
fn export(data: &Path, out: Option<&Path>) -> CommandResult {
    let store = open_existing_store(data)?;
    match out {
        Some(path) => {
            let dir = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            let file = tempfile::Builder::new()
                .prefix(".sunledger-export-")
                .tempfile_in(dir)
                .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
            let mut writer = BufWriter::with_capacity(1 << 20, file);
            write_export(&store, &mut writer)?;
            let file = writer.into_inner().map_err(|e| format!("cannot write: {}", e.error()))?;
            file.as_file().sync_all().map_err(|e| format!("cannot write: {e}"))?;
            file.persist(path).map_err(|e| format!("cannot create {}: {}", path.display(), e.error))?;
        }
        None => write_export(&store, &mut BufWriter::with_capacity(1 << 20, std::io::stdout().lock()))?,
    }
    Ok(EXIT_OK)
}

fn write_export(store: &dyn crate::store::Store, writer: &mut impl Write) -> Result<(), String> {
    let mut prev = crate::chain::GENESIS_PREV;
    let mut line = Vec::with_capacity(4096);
    // The store yields the whole chain up to its head, or an error.
    for record in store.records_from(0) {
        let record = record.map_err(|e| e.to_string())?;
        line.clear();
        export_line(&mut line, record.seq, &prev, record.recorded_at_ms, &record.envelope_bytes, &record.hash);
        line.push(b'\n');
        writer.write_all(&line).map_err(|e| format!("cannot write: {e}"))?;
        prev = record.hash;
    }
    writer.flush().map_err(|e| format!("cannot write: {e}"))
}

/// Feeds a verifier from an export file, line by line.
fn verify_file(path: &Path, verifier: &mut Verifier) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    while !verifier.failed() {
        let line = read_line_bounded(&mut reader, crate::chain::RECORD_LINE_BYTES_MAX)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        match line {
            None => break,
            Some(Line::TooLong(length)) => {
                verifier.push_unreadable(format!("record line of {length} bytes is too long"))
            }
            Some(Line::Complete(bytes)) => match parse_export_line(&bytes) {
                Ok(record) => verifier.push(record),
                Err(reason) => verifier.push_unreadable(reason),
            },
        }
    }
    Ok(())
}

fn verify_store(data: &Path, verifier: &mut Verifier) -> Result<(), String> {
    let store = open_existing_store(data)?;
    let mut prev = crate::chain::GENESIS_PREV;
    // The store yields the whole chain up to its head, or an error.
    for record in store.records_from(0) {
        if verifier.failed() {
            break;
        }
        let record = record.map_err(|e| e.to_string())?;
        match Envelope::parse(&record.envelope_bytes) {
            Ok(envelope) => verifier.push(crate::chain::ExportRecord {
                seq: record.seq,
                prev,
                recorded_at_ms: record.recorded_at_ms,
                envelope_bytes: Vec::new(),
                envelope,
                hash: record.hash,
            }),
            Err(rejection) => verifier.push_unreadable(rejection.message),
        }
        prev = record.hash;
    }
    Ok(())
}

fn verify(
    file: Option<&Path>,
    data: Option<&Path>,
    scratch: Option<PathBuf>,
    json: bool,
    checkpoint: Option<&Path>,
    cosigners: &[String],
) -> CommandResult {
    let note = match checkpoint {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?),
        None => None,
    };
    let mut verifier = Verifier::new();
    if let Some(dir) = scratch {
        verifier = verifier.scratch_in(dir);
    }
    if let Some(text) = &note {
        let size = crate::checkpoint::Note::parse(text)
            .ok()
            .and_then(|n| crate::checkpoint::parse_checkpoint(&n.body).ok())
            .map(|c| c.size)
            .ok_or("the checkpoint file is not a signed checkpoint note")?;
        verifier.capture_root_at(size);
    }
    match (file, data) {
        (Some(path), None) => verify_file(path, &mut verifier)?,
        (None, Some(path)) => verify_store(path, &mut verifier)?,
        _ => return Err("give an export FILE or --data DIR".into()),
    }
    let (mut report, state) = verifier.finish();
    if let Some(failure) = report.failure.as_ref().filter(|failure| failure.storage) {
        // Not a verdict: the verifier could not go on at this record.
        return Err(format!("verification stopped at seq {}: {}", failure.seq, failure.reason));
    }
    let mut signers = Vec::new();
    if let (Some(text), None) = (&note, &report.failure) {
        match crate::verify::check_checkpoint(&report, &state, text, cosigners) {
            Ok(signed_by) => signers = signed_by,
            Err(failure) => report.failure = Some(failure),
        }
    }
    if json {
        let mut value = report.to_json();
        if note.is_some() {
            value["checkpoint_signed_by"] = signers.clone().into();
        }
        println!("{value}");
    } else if let Some(failure) = &report.failure {
        println!("invalid: first bad seq: {}: {}", failure.seq, failure.reason);
    } else {
        println!(
            "ok: {} records, ledger {}, root {}{}",
            report.records,
            report.ledger_id.as_deref().unwrap_or("(empty)"),
            crate::encoding::hex(&report.root),
            if note.is_some() { format!("; checkpoint signed by {}", signers.join(", ")) } else { String::new() }
        );
    }
    Ok(if report.valid() { EXIT_OK } else { EXIT_REJECTED })
}

fn serve(data: &Path, log_key: &Path, addr: &str, policy: Option<&Path>) -> CommandResult {
    let key = crate::keys::read(log_key)?;
    key.signing_key()?;
    if let Some(path) = policy {
        crate::server::set_policy(crate::policy::Policy::load(path).map_err(|e| e.to_string())?)?;
    }
    init_logging();
    crate::server::serve(data, Some(key), addr)?;
    Ok(EXIT_OK)
}

/// Structured logs on stderr (`tracing`), INFO and above.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Appends an export's envelopes with the export's own recorded_at values
/// and checks every resulting hash against the export's.
fn restore(data: &Path, export: &Path) -> CommandResult {
    let mut ledger = open_ledger(data)?;
    if ledger.head().size != 0 {
        return Err(format!("{} already holds a ledger; restore into an empty directory", data.display()));
    }
    let times = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::<i64>::new()));
    let clock_times = times.clone();
    ledger.set_clock(Box::new(move || {
        clock_times.lock().map(|mut q| q.pop_front().unwrap_or(i64::MIN)).unwrap_or(i64::MIN)
    }));
    let file = std::fs::File::open(export).map_err(|e| format!("cannot open {}: {e}", export.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut chunk: Vec<crate::chain::ExportRecord> = Vec::new();
    let mut done = false;
    while !done {
        match read_line_bounded(&mut reader, crate::chain::RECORD_LINE_BYTES_MAX).map_err(|e| e.to_string())? {
            None => done = true,
            Some(Line::TooLong(_)) => return restore_failed(ledger.head().size, "a record line is too long"),
            Some(Line::Complete(bytes)) => match parse_export_line(&bytes) {
                Ok(record) => chunk.push(record),
                Err(reason) => return restore_failed(ledger.head().size + chunk.len() as u64, &reason),
            },
        }
        if chunk.len() >= GROUP_EVENTS_MAX || (done && !chunk.is_empty()) {
            restore_chunk(&mut ledger, &times, std::mem::take(&mut chunk))?;
        }
    }
    ledger.save_snapshot().map_err(|e| e.to_string())?;
    println!(
        "restored {} records into {}; root {}",
        ledger.head().size,
        data.display(),
        crate::encoding::hex(&ledger.root_at(ledger.head().size).map_err(|e| e.to_string())?)
    );
    Ok(EXIT_OK)
}

fn restore_chunk(
    ledger: &mut Ledger,
    times: &std::sync::Mutex<std::collections::VecDeque<i64>>,
    chunk: Vec<crate::chain::ExportRecord>,
) -> Result<(), String> {
    let expected_first = ledger.head().size;
    let out_of_order = chunk.iter().enumerate().position(|(i, r)| r.seq != expected_first + i as u64);
    let chunk_len = out_of_order.unwrap_or(chunk.len());
    let chunk = &chunk[..chunk_len];
    times.lock().map_err(|_| "clock poisoned")?.extend(chunk.iter().map(|r| r.recorded_at_ms));
    let slices: Vec<&[u8]> = chunk.iter().map(|r| r.envelope_bytes.as_slice()).collect();
    let outcomes = ledger.append_group(&slices, OnRejection::Stop).map_err(|e| e.to_string())?;
    for (record, outcome) in chunk.iter().zip(&outcomes) {
        match outcome {
            Outcome::Appended { hash, .. } if *hash == record.hash => {}
            Outcome::Appended { .. } => return restore_failed(record.seq, "the entry hash differs from the export's"),
            Outcome::Rejected(rejection) => return restore_failed(record.seq, &rejection.to_string()),
            _ => return restore_failed(record.seq, "the event repeats an earlier one"),
        }
    }
    if outcomes.len() != chunk.len() {
        return restore_failed(expected_first + outcomes.len() as u64, "not appended");
    }
    if out_of_order.is_some() {
        return restore_failed(expected_first + chunk_len as u64, "seq out of order");
    }
    Ok(())
}

fn restore_failed<T>(seq: u64, reason: &str) -> Result<T, String> {
    Err(format!("restore stopped: first bad seq: {seq}: {reason} (the directory holds the verified records before it)"))
}

fn issue_checkpoint(data: &Path, log_key: &Path) -> CommandResult {
    let key = crate::keys::read(log_key)?;
    let mut ledger = open_existing(data)?;
    let note = ledger.issue_checkpoint(&key.key_id, key.signing_key()?)?;
    print!("{note}");
    Ok(EXIT_OK)
}

fn cosign(key_path: &Path, checkpoint_file: &Path) -> CommandResult {
    let key = crate::keys::read(key_path)?;
    let text = std::fs::read_to_string(checkpoint_file)
        .map_err(|e| format!("cannot read {}: {e}", checkpoint_file.display()))?;
    let note = crate::checkpoint::Note::parse(&text).map_err(|e| format!("{}: {e}", checkpoint_file.display()))?;
    let cosigned = crate::checkpoint::cosign(&note, &key.key_id, key.signing_key()?).map_err(|e| e.to_string())?;
    print!("{}", cosigned.to_text());
    Ok(EXIT_OK)
}

fn hex_list(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(|h| crate::encoding::hex(h)).collect()
}

fn prove(proof: ProveCommand) -> CommandResult {
    match proof {
        ProveCommand::Inclusion { data, seq, size, json } => {
            let ledger = open_existing(&data)?;
            let size = size.unwrap_or(ledger.head().size);
            let path = ledger.inclusion_proof(seq, size).map_err(|e| e.to_string())?;
            let root = ledger.root_at(size).map_err(|e| e.to_string())?;
            let leaf = ledger.store().record(seq).map_err(|e| e.to_string())?.map(|r| r.hash).unwrap_or_default();
            let value = serde_json::json!({"index": seq, "size": size, "proof": hex_list(&path),
                "leaf": crate::encoding::hex(&leaf), "root": crate::encoding::hex(&root)});
            print_proof(&value, json);
        }
        ProveCommand::Consistency { data, from, to, json } => {
            let ledger = open_existing(&data)?;
            let to = to.unwrap_or(ledger.head().size);
            let path = ledger.consistency_proof(from, to).map_err(|e| e.to_string())?;
            let from_root = ledger.root_at(from).map_err(|e| e.to_string())?;
            let to_root = ledger.root_at(to).map_err(|e| e.to_string())?;
            let value = serde_json::json!({"from": from, "to": to, "proof": hex_list(&path),
                "from_root": crate::encoding::hex(&from_root), "to_root": crate::encoding::hex(&to_root)});
            print_proof(&value, json);
        }
    }
    Ok(EXIT_OK)
}

fn print_proof(value: &serde_json::Value, json: bool) {
    if json {
        println!("{value}");
        return;
    }
    for (name, field) in value.as_object().into_iter().flatten() {
        match field.as_array() {
            Some(items) => {
                println!("{name}:");
                for item in items {
                    println!("  {}", item.as_str().unwrap_or_default());
                }
            }
            None => println!("{name}: {}", field.as_str().map_or_else(|| field.to_string(), str::to_string)),
        }
    }
}

/// Yuan with two decimals from fen (for people).
pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn balance(data: &Path, json: bool) -> CommandResult {
    let ledger = open_existing(data)?;
    let state = ledger.state();
    if json {
        println!("{}", serde_json::to_string_pretty(&balances_json(state)).expect("JSON serialises"));
        return Ok(EXIT_OK);
    }
    println!("{:<40} {:>20}", "fund account (资金账户)", "balance (yuan)");
    for (account, fen) in &state.balances {
        println!("{account:<40} {:>20}", yuan(*fen));
    }
    let t = state.totals;
    println!();
    println!("appropriated (下达) {:>20}", yuan(t.appropriated_fen));
    println!("paid out (发放)     {:>20}", yuan(t.paid_out_fen));
    println!("spent (支出)        {:>20}", yuan(t.spent_fen));
    println!("refunded (退回)     {:>20}", yuan(t.refunded_fen));
    Ok(EXIT_OK)
}

/// The shape of vectors/balances.json.
pub fn balances_json(state: &crate::state::State) -> serde_json::Value {
    let t = state.totals;
    serde_json::json!({
        "appropriated_fen": t.appropriated_fen,
        "fund_accounts": state.balances,
        "paid_out_fen": t.paid_out_fen,
        "refunded_fen": t.refunded_fen,
        "spent_fen": t.spent_fen,
    })
}
