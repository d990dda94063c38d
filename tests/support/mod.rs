//! Shared helpers for the integration tests: the known-answer vectors, their
//! test keys, payload building and signing, and the real binary.
#![allow(dead_code)]

use ed25519_dalek::SigningKey;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use sunledger::envelope::Envelope;

pub const LEDGER: &str = "hb-demo-2018";

pub mod cases;
pub mod http;

pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors")
}

pub fn read_vector(name: &str) -> String {
    std::fs::read_to_string(vectors().join(name)).unwrap_or_else(|e| panic!("cannot read vector {name}: {e}"))
}

pub fn vector_lines(name: &str) -> Vec<String> {
    read_vector(name).lines().map(str::to_string).collect()
}

/// The test-only secret keys of vectors/keys.json, by key id.
pub fn keys() -> BTreeMap<String, SigningKey> {
    let list: Vec<serde_json::Value> = serde_json::from_str(&read_vector("keys.json")).expect("keys.json parses");
    list.iter()
        .map(|k| {
            let seed = sunledger::encoding::base64_decode(k["secret_key"].as_str().unwrap()).unwrap();
            (k["key_id"].as_str().unwrap().to_string(), SigningKey::from_bytes(&seed.try_into().unwrap()))
        })
        .collect()
}

/// A payload of the vectors' ledger, as compact JSON bytes.
pub fn payload(id: &str, kind: &str, office: &str, at: &str, body: serde_json::Value) -> String {
    serde_json::json!({"v": 1, "ledger": LEDGER, "id": id, "kind": kind, "office": office, "at": at, "body": body})
        .to_string()
}

/// One envelope line signed by the named vector keys.
pub fn sign(payload: &str, key_ids: &[&str]) -> String {
    let all = keys();
    let signers: Vec<(String, SigningKey)> = key_ids
        .iter()
        .map(|id| (id.to_string(), all.get(*id).unwrap_or_else(|| panic!("no key {id}")).clone()))
        .collect();
    Envelope::sign(payload.as_bytes().to_vec(), &signers).to_json()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sunledger")
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("the binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes lines to a file in `dir` and returns its path as a string.
pub fn write_lines(dir: &Path, name: &str, lines: &[String]) -> String {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The export of a data directory, as bytes (the whole ledger's content).
pub fn export_bytes(data: &Path) -> Vec<u8> {
    let output = run(&["export", "--data", data.to_str().unwrap()]);
    assert!(output.status.success(), "export failed: {}", stderr(&output));
    output.stdout
}

/// A data directory holding the 27 vector events.
pub fn vector_ledger(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let output =
        run(&["import", "--data", data.to_str().unwrap(), vectors().join("envelopes.jsonl").to_str().unwrap()]);
    assert!(output.status.success(), "vector import failed: {}", stderr(&output));
    data
}

/// splitmix64: a tiny deterministic PRNG, so property-test failures replay
/// exactly from their seed.
pub struct Prng(pub u64);

impl Prng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
