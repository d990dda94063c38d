//! The registrar's pepper: the secret HMAC key that makes `person_digest` and
//! `card_digest` irreversible (SPEC §1: a plain hash of an 18-digit ID number
//! can be reversed by trying every number).
//!
//! File format: exactly 32 raw random bytes, mode 0600, nothing else.
//! Owns: making, reading and using the pepper. Never: prints or logs it.
//! Losing the pepper means new digests no longer match the chain's; leaking
//! it lets whoever holds it test guesses of ID numbers. Keep an offline copy.

use hmac::{Hmac, Mac};
use rand_core::RngCore;
use sha2::Sha256;
use std::path::Path;

/// 32 bytes: the HMAC-SHA256 block size is 64, its output 32; a 256-bit key
/// is the strength of the function.
pub const PEPPER_BYTES: usize = 32;

pub struct Pepper([u8; PEPPER_BYTES]);

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(<secret>)")
    }
}

impl Pepper {
    pub fn generate() -> Pepper {
        let mut bytes = [0u8; PEPPER_BYTES];
        rand_core::OsRng.fill_bytes(&mut bytes);
        Pepper(bytes)
    }

    pub fn from_bytes(bytes: [u8; PEPPER_BYTES]) -> Pepper {
        Pepper(bytes)
    }

    /// HMAC-SHA256(pepper, message).
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Reads a pepper file: exactly 32 bytes. Warns when others may read it.
    pub fn read(path: &Path) -> Result<Pepper, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read pepper file {}: {e}", path.display()))?;
        let bytes: [u8; PEPPER_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!("{} is not a pepper file: {} bytes, a pepper is exactly {PEPPER_BYTES}", path.display(), b.len())
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map(|m| m.permissions().mode()).unwrap_or(0);
            if mode & 0o077 != 0 {
                eprintln!(
                    "warning: pepper file {} is readable by others (mode {:o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
        }
        Ok(Pepper(bytes))
    }

    /// Writes a new pepper file (never overwrites), readable only by its owner.
    pub fn write_new(&self, path: &Path) -> Result<(), String> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        file.write_all(&self.0)
            .and_then(|_| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}
