//! Secrets on the registrar's and the finance bureau's machines, through the
//! real binary: passphrase-protected key files, the pepper, and `digest`.

mod support;

use hmac::Mac;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use support::*;

const PASSPHRASE: &str = "三里坝村 correct horse";

fn run_env(args: &[&str], passphrase: Option<&str>, input: Option<&str>) -> Output {
    let mut command = Command::new(bin());
    command.args(args).env_remove("SUNLEDGER_PASSPHRASE");
    if let Some(passphrase) = passphrase {
        command.env("SUNLEDGER_PASSPHRASE", passphrase);
    }
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the binary runs");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn passphrase_protected_keys_sign_like_plain_ones() {
    // Goal: `keygen --passphrase` writes a 0600 file without the plain secret; `sign` opens it with the
    // passphrase from SUNLEDGER_PASSPHRASE and its signatures verify; a wrong passphrase is refused.
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("k.json");
    let key = key_path.to_str().unwrap();
    let made = run_env(&["keygen", "--key-id", "422822/k7", "--out", key, "--passphrase"], Some(PASSPHRASE), None);
    assert!(made.status.success(), "{}", stderr(&made));
    #[cfg(unix)]
    assert_eq!(mode(&key_path), 0o600);
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    assert!(file.get("secret_key").is_none());
    let sealed = &file["encrypted_secret_key"];
    assert_eq!(sealed["kdf"]["name"], "argon2id");
    assert_eq!(sealed["aead"], "chacha20poly1305");
    let payload_path = dir.path().join("p.json");
    std::fs::write(&payload_path, payload("e1", "refund", "422822", "2019-01-05", serde_json::json!({}))).unwrap();
    let signed = run_env(&["sign", "--key", key, payload_path.to_str().unwrap()], Some(PASSPHRASE), None);
    assert!(signed.status.success(), "{}", stderr(&signed));
    let envelope = sunledger::envelope::Envelope::parse(stdout(&signed).trim().as_bytes()).unwrap();
    let public_key = sunledger::keys::read_public(&key_path).unwrap().public_key;
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&public_key).unwrap();
    assert!(sunledger::crypto::verify_strict(&verifying, &envelope.pae(), &envelope.signatures[0].signature));
    let wrong = run_env(&["sign", "--key", key, payload_path.to_str().unwrap()], Some("not the passphrase"), None);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr(&wrong).contains("wrong passphrase"), "{}", stderr(&wrong));
    assert!(!stderr(&wrong).contains("not the passphrase"), "the passphrase is never echoed");
    let short = run_env(
        &["keygen", "--key-id", "k", "--out", dir.path().join("s.json").to_str().unwrap(), "--passphrase"],
        Some("short"),
        None,
    );
    assert_eq!(short.status.code(), Some(2));
}

#[test]
fn vector_key_files_still_sign() {
    // Goal: the plain key format (vectors/keys.json entries) is read as before, without asking for a passphrase.
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<serde_json::Value> = serde_json::from_str(&read_vector("keys.json")).unwrap();
    let key_path = dir.path().join("k.json");
    std::fs::write(&key_path, keys[5].to_string()).unwrap();
    let payload_path = dir.path().join("p.json");
    std::fs::write(&payload_path, "{}").unwrap();
    let signed = run_env(&["sign", "--key", key_path.to_str().unwrap(), payload_path.to_str().unwrap()], None, None);
    assert!(signed.status.success(), "{}", stderr(&signed));
}

#[test]
fn pepper_files_are_private_and_digests_are_hmac_of_normalised_bytes() {
    // Goal: `pepper new` writes exactly 32 private bytes and never overwrites; `digest` prints
    // HMAC-SHA256(pepper, normalised ASCII) for the standard's example ID, however it is written.
    let dir = tempfile::tempdir().unwrap();
    let pepper_path = dir.path().join("pepper.bin");
    let pepper = pepper_path.to_str().unwrap();
    let made = run_env(&["pepper", "new", "--out", pepper], None, None);
    assert!(made.status.success(), "{}", stderr(&made));
    let bytes = std::fs::read(&pepper_path).unwrap();
    assert_eq!(bytes.len(), 32);
    #[cfg(unix)]
    assert_eq!(mode(&pepper_path), 0o600);
    let again = run_env(&["pepper", "new", "--out", pepper], None, None);
    assert_eq!(again.status.code(), Some(2), "a pepper is never overwritten");
    assert_eq!(std::fs::read(&pepper_path).unwrap(), bytes);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&bytes).unwrap();
    mac.update(b"11010519491231002X");
    let expected = sunledger::encoding::hex(&mac.finalize().into_bytes());
    for written in ["11010519491231002X", "11010519491231002x", " １１０１０５１９４９１２３１００２ｘ "]
    {
        let output = run_env(&["digest", "--pepper", pepper, "--id", written], None, None);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output).trim(), expected);
    }
    let from_stdin = run_env(&["digest", "--pepper", pepper, "--id", "-"], None, Some("11010519491231002x\n"));
    assert_eq!(stdout(&from_stdin).trim(), expected);
    let bad = run_env(&["digest", "--pepper", pepper, "--id", "110105194912310021"], None, None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("check digit") && !stderr(&bad).contains("110105194912310021"));
    let card = run_env(&["digest", "--pepper", pepper, "--card", "4111 1111 1111 1111"], None, None);
    assert!(card.status.success());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&bytes).unwrap();
    mac.update(b"4111111111111111");
    assert_eq!(stdout(&card).trim(), sunledger::encoding::hex(&mac.finalize().into_bytes()));
    let not_luhn = run_env(&["digest", "--pepper", pepper, "--card", "4111111111111112"], None, None);
    assert_eq!(not_luhn.status.code(), Some(2));
    let exempt = run_env(&["digest", "--pepper", pepper, "--card", "4111111111111112", "--no-luhn"], None, None);
    assert!(exempt.status.success());
}
