//! Key files: `{"key_id","public_key","secret_key"}` with base64 values, the
//! secret being the 32-byte Ed25519 seed (the format of vectors/keys.json),
//! or the same with the seed protected by a passphrase:
//!
//! ```json
//! {"key_id":"422822/k1","public_key":"<base64>",
//!  "encrypted_secret_key":{"kdf":{"name":"argon2id","m_cost_kib":65536,"t_cost":3,"p_cost":1},
//!                          "salt":"<base64 16 bytes>","aead":"chacha20poly1305",
//!                          "nonce":"<base64 12 bytes>","ciphertext":"<base64 32+16 bytes>"}}
//! ```
//!
//! The AEAD key is Argon2id(passphrase UTF-8 bytes, salt) (RFC 9106, version
//! 0x13, 32-byte output); the plaintext is the seed; the associated data is
//! `"sunledger-key-v1" 0x00 key_id 0x00 public_key(32)`, so a ciphertext
//! cannot be moved under another key id or public key. The passphrase comes
//! from the environment variable `SUNLEDGER_PASSPHRASE`, else a prompt on the
//! terminal.
//!
//! Owns: reading and writing key files (mode 0600). Never: logs a secret or
//! a passphrase.

use crate::encoding::{base64_decode, base64_encode};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use ed25519_dalek::SigningKey;
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a passphrase may come from without a prompt.
pub const PASSPHRASE_ENV: &str = "SUNLEDGER_PASSPHRASE";
/// New passphrases are at least this long.
pub const PASSPHRASE_CHARS_MIN: usize = 8;
/// Argon2id cost of new files: 64 MiB, 3 passes, 1 lane (RFC 9106 §4's
/// second recommendation, with one lane for small machines): ~0.2 s.
pub const ARGON2_M_COST_KIB: u32 = 64 * 1024;
pub const ARGON2_T_COST: u32 = 3;
pub const ARGON2_P_COST: u32 = 1;
/// Costs accepted when reading: a hostile file must not make a reader
/// allocate gigabytes or spin for minutes.
pub const ARGON2_M_COST_KIB_MAX: u32 = 1024 * 1024;
pub const ARGON2_T_COST_MAX: u32 = 16;
pub const ARGON2_P_COST_MAX: u32 = 16;
pub const SALT_BYTES: usize = 16;
const NONCE_BYTES: usize = 12;
const AAD_TAG: &[u8] = b"sunledger-key-v1";
const KDF_NAME: &str = "argon2id";
const AEAD_NAME: &str = "chacha20poly1305";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    key_id: String,
    public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encrypted_secret_key: Option<EncryptedSecret>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptedSecret {
    kdf: Kdf,
    salt: String,
    aead: String,
    nonce: String,
    ciphertext: String,
}

/// A key as read from a file: its id, public key, and secret if present.
pub struct KeyMaterial {
    pub key_id: String,
    pub public_key: [u8; 32],
    pub secret: Option<SigningKey>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.secret.is_some() { "<secret>" } else { "none" };
        write!(f, "KeyMaterial({}, secret: {secret})", self.key_id)
    }
}

impl KeyMaterial {
    pub fn signing_key(&self) -> Result<&SigningKey, String> {
        self.secret.as_ref().ok_or_else(|| format!("the key file for {} holds no secret key", self.key_id))
    }
}

pub fn generate(key_id: &str) -> KeyMaterial {
    let secret = SigningKey::generate(&mut rand_core::OsRng);
    KeyMaterial { key_id: key_id.to_string(), public_key: secret.verifying_key().to_bytes(), secret: Some(secret) }
}

/// The plain key file (exactly the vectors' keys.json entry format).
pub fn to_json(key: &KeyMaterial) -> String {
    let file = KeyFile {
        key_id: key.key_id.clone(),
        public_key: base64_encode(&key.public_key),
        secret_key: key.secret.as_ref().map(|s| base64_encode(s.as_bytes())),
        encrypted_secret_key: None,
    };
    serde_json::to_string_pretty(&file).expect("a key file serialises")
}

fn associated_data(key_id: &str, public_key: &[u8; 32]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_TAG.len() + key_id.len() + 34);
    aad.extend_from_slice(AAD_TAG);
    aad.push(0);
    aad.extend_from_slice(key_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(public_key);
    aad
}

fn derive_key(passphrase: &str, salt: &[u8], kdf: &Kdf) -> Result<[u8; 32], String> {
    if kdf.name != KDF_NAME {
        return Err(format!("unknown kdf {:?} (only {KDF_NAME})", kdf.name));
    }
    let in_bounds = kdf.m_cost_kib <= ARGON2_M_COST_KIB_MAX
        && (1..=ARGON2_T_COST_MAX).contains(&kdf.t_cost)
        && (1..=ARGON2_P_COST_MAX).contains(&kdf.p_cost);
    if !in_bounds {
        return Err("the key file's argon2id costs are out of bounds".into());
    }
    let params = Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| format!("bad argon2id parameters: {e}"))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| format!("argon2id failed: {e}"))?;
    Ok(key)
}

/// The key file with the secret sealed under a passphrase.
pub fn to_json_encrypted(key: &KeyMaterial, passphrase: &str) -> Result<String, String> {
    let secret = key.signing_key()?;
    let kdf =
        Kdf { name: KDF_NAME.into(), m_cost_kib: ARGON2_M_COST_KIB, t_cost: ARGON2_T_COST, p_cost: ARGON2_P_COST };
    let mut salt = [0u8; SALT_BYTES];
    let mut nonce = [0u8; NONCE_BYTES];
    rand_core::OsRng.fill_bytes(&mut salt);
    rand_core::OsRng.fill_bytes(&mut nonce);
    let aead_key = derive_key(passphrase, &salt, &kdf)?;
    let aad = associated_data(&key.key_id, &key.public_key);
    let ciphertext = ChaCha20Poly1305::new((&aead_key).into())
        .encrypt((&nonce).into(), Payload { msg: secret.as_bytes(), aad: &aad })
        .map_err(|_| "encryption failed".to_string())?;
    let file = KeyFile {
        key_id: key.key_id.clone(),
        public_key: base64_encode(&key.public_key),
        secret_key: None,
        encrypted_secret_key: Some(EncryptedSecret {
            kdf,
            salt: base64_encode(&salt),
            aead: AEAD_NAME.into(),
            nonce: base64_encode(&nonce),
            ciphertext: base64_encode(&ciphertext),
        }),
    };
    Ok(serde_json::to_string_pretty(&file).expect("a key file serialises"))
}

fn decrypt(
    sealed: &EncryptedSecret,
    key_id: &str,
    public_key: &[u8; 32],
    passphrase: &str,
) -> Result<[u8; 32], String> {
    if sealed.aead != AEAD_NAME {
        return Err(format!("unknown aead {:?} (only {AEAD_NAME})", sealed.aead));
    }
    let salt = base64_decode(&sealed.salt).filter(|s| s.len() >= 8).ok_or("salt is not base64 of at least 8 bytes")?;
    let nonce: [u8; NONCE_BYTES] =
        base64_decode(&sealed.nonce).and_then(|n| n.try_into().ok()).ok_or("nonce is not base64 of 12 bytes")?;
    let ciphertext = base64_decode(&sealed.ciphertext).ok_or("ciphertext is not base64")?;
    let aead_key = derive_key(passphrase, &salt, &sealed.kdf)?;
    let aad = associated_data(key_id, public_key);
    let seed = ChaCha20Poly1305::new((&aead_key).into())
        .decrypt((&nonce).into(), Payload { msg: &ciphertext, aad: &aad })
        .map_err(|_| format!("wrong passphrase for {key_id} (or a damaged key file)"))?;
    seed.try_into().map_err(|_| "the decrypted secret is not 32 bytes".to_string())
}

/// Parses a key file; a passphrase-protected secret is opened with the
/// passphrase `passphrase` gives for the key id (asked only when needed).
pub fn parse_with(text: &str, passphrase: &dyn Fn(&str) -> Result<String, String>) -> Result<KeyMaterial, String> {
    parse_file(text, Some(passphrase))
}

/// Parses a plain key file (or only the public part of a protected one).
pub fn parse(text: &str) -> Result<KeyMaterial, String> {
    parse_file(text, None)
}

type PassphraseSource<'a> = Option<&'a dyn Fn(&str) -> Result<String, String>>;

fn parse_file(text: &str, passphrase: PassphraseSource<'_>) -> Result<KeyMaterial, String> {
    let file: KeyFile = serde_json::from_str(text).map_err(|e| format!("not a key file: {e}"))?;
    let public_key: [u8; 32] = base64_decode(&file.public_key)
        .and_then(|b| b.try_into().ok())
        .ok_or("public_key is not base64 of 32 bytes")?;
    let seed: Option<[u8; 32]> = match (&file.secret_key, &file.encrypted_secret_key, passphrase) {
        (Some(_), Some(_), _) => return Err("a key file holds secret_key or encrypted_secret_key, not both".into()),
        (None, None, _) | (None, Some(_), None) => None,
        (Some(text), None, _) => {
            Some(base64_decode(text).and_then(|b| b.try_into().ok()).ok_or("secret_key is not base64 of 32 bytes")?)
        }
        (None, Some(sealed), Some(passphrase)) => {
            Some(decrypt(sealed, &file.key_id, &public_key, &passphrase(&file.key_id)?)?)
        }
    };
    let secret = match seed {
        None => None,
        Some(seed) => {
            let key = SigningKey::from_bytes(&seed);
            if key.verifying_key().to_bytes() != public_key {
                return Err("secret_key does not match public_key".into());
            }
            Some(key)
        }
    };
    Ok(KeyMaterial { key_id: file.key_id, public_key, secret })
}

/// The passphrase of an existing key: `SUNLEDGER_PASSPHRASE`, else a prompt.
pub fn passphrase_for(key_id: &str) -> Result<String, String> {
    if let Ok(passphrase) = std::env::var(PASSPHRASE_ENV) {
        return Ok(passphrase);
    }
    rpassword::prompt_password(format!("passphrase for {key_id}: "))
        .map_err(|e| format!("key {key_id} is passphrase-protected: set {PASSPHRASE_ENV} or run on a terminal ({e})"))
}

/// A new passphrase: `SUNLEDGER_PASSPHRASE`, else asked twice on the terminal.
pub fn new_passphrase(key_id: &str) -> Result<String, String> {
    let passphrase = match std::env::var(PASSPHRASE_ENV) {
        Ok(passphrase) => passphrase,
        Err(_) => {
            let prompt = |text: String| {
                rpassword::prompt_password(text)
                    .map_err(|e| format!("a passphrase is needed: set {PASSPHRASE_ENV} or run on a terminal ({e})"))
            };
            let first = prompt(format!("new passphrase for {key_id}: "))?;
            if prompt("repeat it: ".into())? != first {
                return Err("the passphrases differ".into());
            }
            first
        }
    };
    if passphrase.chars().count() < PASSPHRASE_CHARS_MIN {
        return Err(format!("a passphrase has at least {PASSPHRASE_CHARS_MIN} characters"));
    }
    Ok(passphrase)
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read key file {}: {e}", path.display()))
}

/// Reads a key file, plain or passphrase-protected (then asking for it).
pub fn read(path: &Path) -> Result<KeyMaterial, String> {
    parse_with(&read_text(path)?, &passphrase_for).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a key file's id and public key only, never asking for a passphrase.
pub fn read_public(path: &Path) -> Result<KeyMaterial, String> {
    let mut key = parse(&read_text(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    key.secret = None;
    Ok(key)
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes a key file readable only by its owner.
pub fn write(path: &Path, key: &KeyMaterial) -> Result<(), String> {
    write_private(path, &to_json(key))
}

/// Writes a passphrase-protected key file readable only by its owner.
pub fn write_encrypted(path: &Path, key: &KeyMaterial, passphrase: &str) -> Result<(), String> {
    write_private(path, &to_json_encrypted(key, passphrase)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(passphrase: &'static str) -> impl Fn(&str) -> Result<String, String> {
        move |_| Ok(passphrase.to_string())
    }

    #[test]
    fn encrypted_key_round_trips_and_refuses_tampering() {
        // Goal: a sealed key opens with its passphrase only, and only under its own key id and public key.
        let key = generate("422822/k9");
        let text = to_json_encrypted(&key, "correct horse").unwrap();
        assert!(!text.contains(&base64_encode(key.secret.as_ref().unwrap().as_bytes())));
        assert!(text.contains("encrypted_secret_key") && !text.contains("\"secret_key\""));
        let opened = parse_with(&text, &fixed("correct horse")).unwrap();
        assert_eq!(opened.secret.unwrap().to_bytes(), key.secret.as_ref().unwrap().to_bytes());
        assert!(parse_with(&text, &fixed("wrong horse")).unwrap_err().contains("wrong passphrase"));
        let moved = text.replace("422822/k9", "422822/k8");
        assert!(parse_with(&moved, &fixed("correct horse")).unwrap_err().contains("wrong passphrase"));
        // Without a passphrase source the public part still reads.
        assert!(parse(&text).unwrap().secret.is_none());
    }

    #[test]
    fn plain_format_is_unchanged() {
        // Goal: plain key files keep exactly the vectors' three fields.
        let key = generate("root/k1");
        let value: serde_json::Value = serde_json::from_str(&to_json(&key)).unwrap();
        let mut fields: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["key_id", "public_key", "secret_key"]);
        assert!(parse_with(&to_json(&key), &|_| Err("no prompt for plain keys".into())).unwrap().secret.is_some());
    }

    #[test]
    fn hostile_costs_are_refused() {
        // Goal: a key file cannot make the reader allocate or compute without bound.
        let key = generate("k");
        let text = to_json_encrypted(&key, "correct horse").unwrap().replace("65536", "4194304");
        assert!(parse_with(&text, &fixed("correct horse")).unwrap_err().contains("out of bounds"));
    }
}
