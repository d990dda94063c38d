//! Key files: `{"key_id","public_key","secret_key"}` with base64 values, the
//! secret being the 32-byte Ed25519 seed (the format of vectors/keys.json).
//!
//! Owns: reading and writing key files (mode 0600). Never: logs a secret.

use crate::encoding::{base64_decode, base64_encode};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    key_id: String,
    public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
}

/// A key as read from a file: its id, public key, and secret if present.
pub struct KeyMaterial {
    pub key_id: String,
    pub public_key: [u8; 32],
    pub secret: Option<SigningKey>,
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

pub fn to_json(key: &KeyMaterial) -> String {
    let file = KeyFile {
        key_id: key.key_id.clone(),
        public_key: base64_encode(&key.public_key),
        secret_key: key.secret.as_ref().map(|s| base64_encode(s.as_bytes())),
    };
    serde_json::to_string_pretty(&file).expect("a key file serialises")
}

pub fn parse(text: &str) -> Result<KeyMaterial, String> {
    let file: KeyFile = serde_json::from_str(text).map_err(|e| format!("not a key file: {e}"))?;
    let public_key: [u8; 32] = base64_decode(&file.public_key)
        .and_then(|b| b.try_into().ok())
        .ok_or("public_key is not base64 of 32 bytes")?;
    let secret = match &file.secret_key {
        None => None,
        Some(text) => {
            let seed: [u8; 32] =
                base64_decode(text).and_then(|b| b.try_into().ok()).ok_or("secret_key is not base64 of 32 bytes")?;
            let key = SigningKey::from_bytes(&seed);
            if key.verifying_key().to_bytes() != public_key {
                return Err("secret_key does not match public_key".into());
            }
            Some(key)
        }
    };
    Ok(KeyMaterial { key_id: file.key_id, public_key, secret })
}

pub fn read(path: &Path) -> Result<KeyMaterial, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes a key file readable only by its owner.
pub fn write(path: &Path, key: &KeyMaterial) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(to_json(key).as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
