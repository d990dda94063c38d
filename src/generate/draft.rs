//! Drafts: events planned by the generator, not yet serialised or signed, and
//! their sealing into DSSE envelope lines.
//!
//! Owns: the JSON shape of generated payloads (SPEC §3) and the envelope line
//! format. Invariant: sealing is a pure function of the draft, the ledger id
//! and the keys, so drafts can be sealed on any thread in any order and the
//! lines are still byte-identical. Never: decides what happens (that is `plan`).

use crate::date::{Date, Period};
use crate::encoding::{base64_encode, PAYLOAD_TYPE};
use crate::envelope::Envelope;
use crate::payload::{Level, Role, PAYLOAD_BYTES_MAX};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Serialize)]
pub struct NamedKey {
    pub key_id: String,
    pub public_key: String,
}

#[derive(Serialize)]
pub struct KeyGrant {
    pub key_id: String,
    pub public_key: String,
    pub roles: Vec<Role>,
}

#[derive(Clone, Serialize)]
pub struct Member {
    pub person_digest: String,
    pub name_masked: String,
}

#[derive(Clone, Serialize)]
pub struct Card {
    pub card_digest: String,
    pub card_masked: String,
    pub bank: String,
}

/// A payload body (SPEC §3), serialised without its kind tag.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Body {
    Genesis {
        name: String,
        root_keys: Vec<NamedKey>,
        log_key: NamedKey,
        currency: &'static str,
    },
    OfficeRegister {
        office_id: String,
        name: String,
        level: Level,
        parent: Option<String>,
        region_code: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        contact: Option<String>,
        keys: Vec<KeyGrant>,
    },
    ProgramDefine {
        program_id: &'static str,
        name: &'static str,
        earmarked: bool,
        payee: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        standard_fen: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cap_fen_per_year: Option<u64>,
        period: &'static str,
    },
    Appropriate {
        program: &'static str,
        amount_fen: u64,
        budget_ref: String,
        fiscal_year: i32,
    },
    Transfer {
        to_office: String,
        program: &'static str,
        amount_fen: u64,
        doc_ref: String,
    },
    Reallocate {
        from_program: &'static str,
        to_program: &'static str,
        amount_fen: u64,
        doc_ref: String,
    },
    HouseholdRegister {
        household_id: String,
        village: String,
        head_name_masked: String,
        members: Vec<Member>,
        card: Card,
    },
    HouseholdUpdate {
        household_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        deceased: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        card: Option<Card>,
        #[serde(skip_serializing_if = "Option::is_none")]
        add_members: Option<Vec<Member>>,
    },
    Payout {
        household_id: String,
        program: &'static str,
        amount_fen: u64,
        period: Period,
        card_digest: String,
        person_digest: String,
    },
    ProjectRegister {
        project_id: String,
        program: &'static str,
        name: String,
        budget_fen: u64,
        location: String,
    },
    Expenditure {
        program: &'static str,
        project_id: Option<String>,
        payee_id: String,
        payee_name: String,
        category: &'static str,
        amount_fen: u64,
        doc_ref: String,
    },
    Refund {
        ref_event: String,
        amount_fen: u64,
        reason: String,
    },
    Notice {
        notice_id: String,
        scope: &'static str,
        program: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        period: Option<Period>,
        #[serde(skip_serializing_if = "Option::is_none")]
        households: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        projects: Option<Vec<String>>,
        from: Date,
        to: Date,
        document_digest: String,
    },
}

impl Body {
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Genesis { .. } => "genesis",
            Body::OfficeRegister { .. } => "office_register",
            Body::ProgramDefine { .. } => "program_define",
            Body::Appropriate { .. } => "appropriate",
            Body::Transfer { .. } => "transfer",
            Body::Reallocate { .. } => "reallocate",
            Body::HouseholdRegister { .. } => "household_register",
            Body::HouseholdUpdate { .. } => "household_update",
            Body::Payout { .. } => "payout",
            Body::ProjectRegister { .. } => "project_register",
            Body::Expenditure { .. } => "expenditure",
            Body::Refund { .. } => "refund",
            Body::Notice { .. } => "notice_publish",
        }
    }
}

/// What a draft does to the acting county's fund accounts, for the
/// generator's own book (which sizes appropriations so nothing overdraws).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effect {
    /// (program index, fen) debited from the acting office's account.
    pub debit: Option<(usize, u64)>,
    /// (program index, fen) credited back to the acting office's account.
    pub credit: Option<(usize, u64)>,
}

/// One planned event.
pub struct Draft {
    pub id: String,
    pub office: String,
    pub at: Date,
    /// Key ids, in signature order.
    pub signers: Vec<String>,
    pub body: Body,
    pub effect: Effect,
}

#[derive(Serialize)]
struct Event<'a> {
    v: u8,
    ledger: &'a str,
    id: &'a str,
    kind: &'static str,
    office: &'a str,
    at: Date,
    body: &'a Body,
}

/// The keys a generated ledger uses, derived from the seed before the first
/// event so that sealing threads can share it read-only.
#[derive(Default)]
pub struct Keyring {
    keys: HashMap<String, SigningKey>,
    order: Vec<String>,
}

impl Keyring {
    /// Derives the key of `key_id` (once; later calls keep the first).
    pub fn derive(&mut self, seed: u64, key_id: &str) {
        if !self.keys.contains_key(key_id) {
            self.keys.insert(key_id.to_string(), super::random::signing_key(seed, key_id));
            self.order.push(key_id.to_string());
        }
    }

    /// Base64 of the public key of `key_id`.
    pub fn public_key(&self, key_id: &str) -> String {
        base64_encode(self.get(key_id).verifying_key().as_bytes())
    }

    fn get(&self, key_id: &str) -> &SigningKey {
        self.keys.get(key_id).unwrap_or_else(|| panic!("key {key_id} was never derived"))
    }

    /// Every key, in the order derived.
    pub fn into_list(mut self) -> Vec<(String, SigningKey)> {
        self.order.iter().map(|id| (id.clone(), self.keys.remove(id).expect("ordered keys exist"))).collect()
    }
}

impl Draft {
    /// The payload bytes (compact JSON).
    pub fn payload(&self, ledger_id: &str) -> Vec<u8> {
        let event = Event {
            v: 1,
            ledger: ledger_id,
            id: &self.id,
            kind: self.body.kind(),
            office: &self.office,
            at: self.at,
            body: &self.body,
        };
        let bytes = serde_json::to_vec(&event).expect("a draft serialises");
        assert!(bytes.len() <= PAYLOAD_BYTES_MAX, "draft {} is {} bytes", self.id, bytes.len());
        bytes
    }

    /// The signed envelope line (no newline).
    pub fn seal(&self, ledger_id: &str, keyring: &Keyring) -> String {
        let signers: Vec<(String, SigningKey)> =
            self.signers.iter().map(|id| (id.clone(), keyring.get(id).clone())).collect();
        envelope_line(&Envelope::sign(self.payload(ledger_id), &signers))
    }
}

/// An envelope as one compact JSON line, byte-identical to
/// [`Envelope::to_json`] (key order payload, payloadType, signatures) but
/// without building a JSON tree. Key ids are `[A-Za-z0-9._:/-]` and base64
/// needs no escaping, so plain concatenation is exact.
pub fn envelope_line(envelope: &Envelope) -> String {
    let payload = base64_encode(&envelope.payload);
    let mut line = String::with_capacity(payload.len() + 200);
    line.push_str("{\"payload\":\"");
    line.push_str(&payload);
    line.push_str("\",\"payloadType\":\"");
    line.push_str(PAYLOAD_TYPE);
    line.push_str("\",\"signatures\":[");
    for (i, signature) in envelope.signatures.iter().enumerate() {
        assert!(signature.key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b)));
        if i > 0 {
            line.push(',');
        }
        line.push_str("{\"keyid\":\"");
        line.push_str(&signature.key_id);
        line.push_str("\",\"sig\":\"");
        line.push_str(&base64_encode(&signature.signature));
        line.push_str("\"}");
    }
    line.push_str("]}");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_line_equals_the_library_form() {
        // Goal: the fast line writer gives exactly Envelope::to_json's bytes,
        // for one and for two signatures.
        let one = super::super::random::signing_key(1, "a/k1");
        let two = super::super::random::signing_key(1, "a/k2");
        let payload = br#"{"v":1,"x":"\u4e2d"}"#.to_vec();
        for keys in [vec![("a/k1".to_string(), one.clone())], vec![("a/k1".into(), one), ("a/k2".into(), two)]] {
            let envelope = Envelope::sign(payload.clone(), &keys);
            assert_eq!(envelope_line(&envelope), envelope.to_json());
            assert_eq!(Envelope::parse(envelope_line(&envelope).as_bytes()).unwrap(), envelope);
        }
    }
}
