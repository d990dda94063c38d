//! Runs the independent auditor's verifier, `tools/verify.py`, against the
//! known-answer vectors in `../shared/vectors`. The verifier shares no code
//! with the crate; these tests only check that it agrees with the vectors.
//!
//! Needs `python3` with the `cryptography` package on PATH (override the
//! interpreter with SUNLEDGER_PYTHON). Paths are relative to SUNLEDGER_ROOT
//! if set, else to this crate's manifest directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

fn root() -> PathBuf {
    match std::env::var_os("SUNLEDGER_ROOT") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

fn script() -> PathBuf {
    root().join("tools").join("verify.py")
}

fn vectors() -> PathBuf {
    root().join("..").join("shared").join("vectors")
}

fn python() -> String {
    std::env::var("SUNLEDGER_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs `python3 tools/verify.py ARGS...` and returns its output.
fn run_verify<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let mut cmd = Command::new(python());
    cmd.arg(script());
    for a in args {
        cmd.arg(a);
    }
    cmd.output().unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python(), script().display()))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "expected exit {code}, output:\n{}", text(out));
}

/// A fresh directory under the system temp dir, unique to this process and call.
fn scratch_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "sunledger-verify-py-{tag}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Removes the directory when dropped, also when the test panics.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Minimal scan of tampered/expected.json: `[{"file": "...", "first_bad_seq": N}, ...]`.
/// Each `{...}` object is searched for both keys, in any order; no serde.
fn parse_expected(json: &str) -> Vec<(String, u64)> {
    let mut entries = Vec::new();
    for chunk in json.split('{').skip(1) {
        let object = chunk.split('}').next().unwrap_or("");
        let file = string_value(object, "file").expect("expected.json entry without \"file\"");
        let seq = number_value(object, "first_bad_seq").expect("expected.json entry without \"first_bad_seq\"");
        entries.push((file, seq));
    }
    entries
}

/// The text after `"key"` and its colon, with leading whitespace removed.
fn after_key<'a>(object: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\"");
    let rest = &object[object.find(&needle)? + needle.len()..];
    let rest = rest.trim_start().strip_prefix(':')?;
    Some(rest.trim_start())
}

fn string_value(object: &str, key: &str) -> Option<String> {
    let rest = after_key(object, key)?.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

fn number_value(object: &str, key: &str) -> Option<u64> {
    let rest = after_key(object, key)?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Replaces one base64 character well inside the log key's signature line, so
/// the key hash (first 4 bytes) is intact and a signature byte changes.
fn flip_signature_byte(checkpoint: &str) -> String {
    let marker = "\u{2014} ";
    let start = checkpoint.find(marker).expect("checkpoint has a signature line") + marker.len();
    let line_end = start + checkpoint[start..].find('\n').expect("signature line ends");
    let b64_start = start + checkpoint[start..line_end].rfind(' ').expect("name and signature") + 1;
    let at = b64_start + 20; // byte 15 of key_hash(4)||sig(64): inside the signature
    assert!(at < line_end - 4, "signature line too short");
    let old = &checkpoint[at..at + 1];
    let new = if old == "A" { "B" } else { "A" };
    format!("{}{}{}", &checkpoint[..at], new, &checkpoint[at + 1..])
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn chain_vector_is_valid() {
    // Goal: the reference chain.jsonl (27 records) verifies and its root is printed.
    let out = run_verify(&[vectors().join("chain.jsonl")]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ok: 27 records, root "), "{stdout}");
}

#[test]
fn chain_vector_matches_signed_checkpoint() {
    // Goal: chain.jsonl's root at size 27 equals checkpoint.txt's, whose log/k1 signature verifies.
    let v = vectors();
    let out =
        run_verify(&[path_str(&v.join("chain.jsonl")), "--checkpoint".into(), path_str(&v.join("checkpoint.txt"))]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("checkpoint size 27"), "{}", text(&out));
}

#[test]
fn tampered_vectors_fail_at_expected_seq() {
    // Goal: every tampered/*.jsonl is rejected (exit 1) naming exactly the first bad seq of expected.json.
    let dir = vectors().join("tampered");
    let expected = std::fs::read_to_string(dir.join("expected.json")).expect("read expected.json");
    let entries = parse_expected(&expected);
    assert!(!entries.is_empty(), "expected.json lists no files");
    let listed: Vec<&str> = entries.iter().map(|(f, _)| f.as_str()).collect();
    for item in std::fs::read_dir(&dir).expect("list tampered/") {
        let name = item.expect("dir entry").file_name().to_string_lossy().into_owned();
        if name.ends_with(".jsonl") {
            assert!(listed.contains(&name.as_str()), "{name} is not in expected.json");
        }
    }
    for (file, seq) in &entries {
        let out = run_verify(&[dir.join(file)]);
        assert_exit(&out, 1);
        let needle = format!("first bad seq: {seq}:");
        assert!(text(&out).contains(&needle), "{file}: wanted '{needle}', got:\n{}", text(&out));
    }
}

#[test]
fn merkle_vectors_verify_against_chain() {
    // Goal: every root, inclusion proof and consistency proof in merkle.json verifies against chain.jsonl.
    let v = vectors();
    let out =
        run_verify(&[path_str(&v.join("chain.jsonl")), "--check-merkle".into(), path_str(&v.join("merkle.json"))]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("merkle: 28 roots"), "{}", text(&out));
}

#[test]
fn entries_vectors_match_recomputed_hashes() {
    // Goal: PAE digests, recorded_at_ms and entry hashes recomputed from chain.jsonl equal entries.json.
    let v = vectors();
    let out =
        run_verify(&[path_str(&v.join("chain.jsonl")), "--check-entries".into(), path_str(&v.join("entries.json"))]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("entries: 27"), "{}", text(&out));
}

#[test]
fn truncated_export_fails_against_checkpoint() {
    // Goal: an export cut to 20 records cannot satisfy a checkpoint of size 27 (first bad seq = export length).
    let v = vectors();
    let chain = std::fs::read_to_string(v.join("chain.jsonl")).expect("read chain.jsonl");
    let first20: String = chain.lines().take(20).map(|l| format!("{l}\n")).collect();
    let tmp = TempDir(scratch_dir("truncated"));
    let export = tmp.0.join("chain-20.jsonl");
    std::fs::write(&export, first20).expect("write truncated export");

    let alone = run_verify(&[&export]);
    assert_exit(&alone, 0); // a prefix is a valid ledger on its own
    let out = run_verify(&[path_str(&export), "--checkpoint".into(), path_str(&v.join("checkpoint.txt"))]);
    assert_exit(&out, 1);
    assert!(text(&out).contains("first bad seq: 20"), "{}", text(&out));
}

#[test]
fn checkpoint_with_flipped_signature_byte_fails() {
    // Goal: a checkpoint whose log-key signature has one altered byte is rejected.
    let v = vectors();
    let original = std::fs::read_to_string(v.join("checkpoint.txt")).expect("read checkpoint.txt");
    let forged = flip_signature_byte(&original);
    assert_ne!(forged, original);
    let tmp = TempDir(scratch_dir("flipped"));
    let cp = tmp.0.join("checkpoint.txt");
    std::fs::write(&cp, forged).expect("write forged checkpoint");
    let out = run_verify(&[path_str(&v.join("chain.jsonl")), "--checkpoint".into(), path_str(&cp)]);
    assert_exit(&out, 1);
    assert!(text(&out).contains("does not verify"), "{}", text(&out));
}

#[test]
fn usage_errors_exit_2() {
    // Goal: a missing export file is a usage error (exit 2), not a verdict.
    let tmp = TempDir(scratch_dir("missing"));
    let out = run_verify(&[tmp.0.join("no-such-export.jsonl")]);
    assert_exit(&out, 2);
}

#[test]
fn help_documents_the_cli() {
    // Goal: --help documents the checkpoint, trusted log key and proof-checking options.
    let out = run_verify(&["--help"]);
    assert_exit(&out, 0);
    let help = text(&out);
    for flag in ["--checkpoint", "--log-key-id", "--log-public-key", "--check-merkle", "--json"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn expected_json_scan_reads_any_key_order() {
    // Goal: the serde-free expected.json scan handles both key orders and whitespace.
    let parsed = parse_expected(
        "[ {\"file\": \"a.jsonl\", \"first_bad_seq\": 10},\n {\"first_bad_seq\":3,\"file\":\"b.jsonl\"} ]",
    );
    assert_eq!(parsed, vec![("a.jsonl".to_string(), 10), ("b.jsonl".to_string(), 3)]);
}
