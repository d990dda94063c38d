//! The append pipeline's judgement: SPEC §4 checks, in SPEC order, of one
//! envelope against the state before it.
//!
//! Owns: which events are accepted and with which rejection code. Invariant:
//! `validate` never mutates; a rejected event changes nothing. Never: does
//! I/O itself (the event index is a trait the store or a replay provides).

use crate::crypto;
use crate::encoding::{sha256, Hash};
use crate::envelope::Envelope;
use crate::error::{reject, Code, Rejection};
use crate::payload::{parse_payload, Body, Level, Payload, Role};
use crate::state::{account_id, IndexedEvent, KeyState, State, ROOT_OFFICE};
use ed25519_dalek::VerifyingKey;

/// SPEC §3: moving at least this much needs two finance signatures
/// (500,000 yuan).
pub const DUAL_CONTROL_FEN: u64 = 50_000_000;

/// Looks up accepted events by id (the store, or an in-memory replay index).
pub trait EventIndex {
    fn event(&self, id: &str) -> Result<Option<IndexedEvent>, StorageError>;
}

/// An I/O failure below the ledger: never a verdict on the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError(pub String);

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "storage error: {}", self.0)
    }
}

impl std::error::Error for StorageError {}

/// Why an append did not happen.
#[derive(Debug)]
pub enum AppendError {
    Rejected(Rejection),
    Storage(StorageError),
}

impl From<Rejection> for AppendError {
    fn from(rejection: Rejection) -> Self {
        AppendError::Rejected(rejection)
    }
}

impl From<StorageError> for AppendError {
    fn from(error: StorageError) -> Self {
        AppendError::Storage(error)
    }
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::Rejected(r) => r.fmt(f),
            AppendError::Storage(e) => e.fmt(f),
        }
    }
}

/// Signature verdicts computed ahead of validation (the batched fast path),
/// each tied to the public key it was checked against.
#[derive(Clone, Debug, Default)]
pub struct PreVerified {
    pub verdicts: Vec<Option<([u8; 32], bool)>>,
}

/// An envelope made ready for validation: payload parsed once, signatures
/// checked ahead in a batch.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub envelope: Envelope,
    pub parsed: Result<Payload, Rejection>,
    pub pre_verified: PreVerified,
}

/// Parses payloads and checks every signature of a batch in parallel batches.
/// Keys registered by earlier events of the same batch are taken into account
/// speculatively; `validate` re-checks any signature whose key turns out to
/// differ, so the verdicts are exactly those of strict one-by-one checking.
/// Envelopes whose payload was already accepted byte for byte (idempotent
/// repeats) skip the signature work: `validate` answers them before it.
pub fn prepare_batch(keys: &dyn KeyLookup, index: &dyn EventIndex, envelopes: Vec<Envelope>) -> Vec<Prepared> {
    prepare_batch_with_keys(keys, index, envelopes).0
}

/// Public keys by key id, as far as signature pre-verification needs them.
pub trait KeyLookup {
    fn public_key(&self, key_id: &str) -> Option<[u8; 32]>;
}

impl KeyLookup for State {
    fn public_key(&self, key_id: &str) -> Option<[u8; 32]> {
        self.keys.get(key_id).map(|k| k.public_key)
    }
}

impl KeyLookup for std::collections::HashMap<String, [u8; 32]> {
    fn public_key(&self, key_id: &str) -> Option<[u8; 32]> {
        self.get(key_id).copied()
    }
}

/// [`prepare_batch`], also returning the keys the batch's events register
/// (a pipelined preparer carries them into the next batch).
pub fn prepare_batch_with_keys(
    known: &dyn KeyLookup,
    index: &dyn EventIndex,
    envelopes: Vec<Envelope>,
) -> (Vec<Prepared>, std::collections::HashMap<String, [u8; 32]>) {
    let mut batch_keys: std::collections::HashMap<String, [u8; 32]> = std::collections::HashMap::new();
    let mut prepared: Vec<Prepared> = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        let parsed = parse_payload(&envelope.payload);
        if let Ok(payload) = &parsed {
            for (key_id, public_key) in registered_keys(&payload.body) {
                batch_keys.entry(key_id).or_insert(public_key);
            }
        }
        prepared.push(Prepared { envelope, parsed, pre_verified: PreVerified::default() });
    }
    let mut batch = crypto::SignatureBatch::default();
    // (envelope, signature, key bytes) of each signature in the batch, in order.
    let mut checked: Vec<(usize, usize, [u8; 32])> = Vec::new();
    // Each distinct public key is decompressed once per batch (a square root each).
    let mut key_numbers: std::collections::HashMap<[u8; 32], Option<u32>> = std::collections::HashMap::new();
    for (i, item) in prepared.iter().enumerate() {
        if is_repeat(index, item) {
            continue;
        }
        let mut message = None;
        for (j, signature) in item.envelope.signatures.iter().enumerate() {
            let public_key = known.public_key(&signature.key_id).or_else(|| batch_keys.get(&signature.key_id).copied());
            let Some(bytes) = public_key else { continue };
            let key = *key_numbers
                .entry(bytes)
                .or_insert_with(|| VerifyingKey::from_bytes(&bytes).ok().map(|key| batch.add_key(key)));
            if let Some(key) = key {
                let message = *message.get_or_insert_with(|| batch.add_message(item.envelope.pae()));
                batch.push(key, message, signature.signature);
                checked.push((i, j, bytes));
            }
        }
    }
    let verdicts = crypto::verify_batch(batch);
    for ((i, j, key), ok) in checked.into_iter().zip(verdicts) {
        let slots = &mut prepared[i].pre_verified.verdicts;
        if slots.len() <= j {
            slots.resize(j + 1, None);
        }
        slots[j] = Some((key, ok));
    }
    (prepared, batch_keys)
}

fn is_repeat(index: &dyn EventIndex, item: &Prepared) -> bool {
    let Ok(payload) = &item.parsed else { return false };
    matches!(index.event(payload.id.as_str()), Ok(Some(event)) if event.payload_digest == sha256(&item.envelope.payload))
}

/// Keys an event brings into the registry (key id, public key).
fn registered_keys(body: &Body) -> Vec<(String, [u8; 32])> {
    match body {
        Body::Genesis(b) => b.root_keys.iter().map(|k| (k.key_id.0.clone(), k.public_key.0)).collect(),
        Body::OfficeRegister(b) => b.keys.iter().map(|k| (k.key_id.0.clone(), k.public_key.0)).collect(),
        Body::KeyAdd(b) => vec![(b.key_id.0.clone(), b.public_key.0)],
        _ => Vec::new(),
    }
}

/// The verdict on an envelope that passed every check.
#[derive(Debug)]
pub enum Verdict {
    /// A new event, to be appended.
    Accept(Box<Accepted>),
    /// The same payload bytes were accepted before at this seq.
    Repeat(u64),
}

#[derive(Debug)]
pub struct Accepted {
    pub envelope: Envelope,
    pub payload: Payload,
    pub payload_digest: Hash,
    /// For refunds: the account the refunded event debited.
    pub refunded_account: Option<String>,
}

/// Runs every SPEC §4 check, in order; the first failure is reported.
pub fn validate(state: &State, index: &dyn EventIndex, prepared: Prepared) -> Result<Verdict, AppendError> {
    let Prepared { envelope, parsed, pre_verified } = prepared;
    // 2–3. Schema, then amount bounds (inside parse_payload).
    let payload = parsed?;
    let payload_digest = sha256(&envelope.payload);
    let genesis = matches!(payload.body, Body::Genesis(_));
    if state.size == 0 && !genesis {
        return Err(Rejection::new(Code::Schema, "the first event of a ledger must be genesis").into());
    }
    // Idempotency: the same bytes again succeed with the original seq.
    let existing = index.event(payload.id.as_str())?;
    if let Some(event) = &existing {
        if event.payload_digest == payload_digest {
            return Ok(Verdict::Repeat(event.seq));
        }
    }
    // 4. Ledger id.
    if let Some(ledger_id) = &state.ledger_id {
        if payload.ledger.as_str() != ledger_id {
            return Err(Rejection::new(
                Code::WrongLedger,
                format!("event is for ledger {:?}, this is {ledger_id:?}", payload.ledger.as_str()),
            )
            .into());
        }
    }
    // 5–7. Keys known, not revoked, signatures valid.
    let signers = signing_keys(state, &payload, &envelope)?;
    check_signatures(&envelope, &signers, Some(&pre_verified))?;
    // 8. Event id.
    if existing.is_some() {
        return Err(Rejection::new(
            Code::DuplicateId,
            format!("event id {} exists with other payload bytes", payload.id),
        )
        .into());
    }
    // 9. Role and office of the signing keys.
    check_roles(state, &payload, &signers)?;
    // 10. Dual control.
    if let Some(amount) = payload.body.moved_fen() {
        if amount >= DUAL_CONTROL_FEN && signers.len() < 2 {
            return Err(Rejection::new(
                Code::DualControlRequired,
                format!("moving {amount} fen (≥ {DUAL_CONTROL_FEN}) needs two finance keys of {}", payload.office),
            )
            .into());
        }
    }
    // 11. References. 12. Authority. 13. Funds.
    let refunded_account = check_references(state, index, &payload)?;
    check_authority(state, &payload)?;
    check_funds(state, &payload)?;
    Ok(Verdict::Accept(Box::new(Accepted { envelope, payload, payload_digest, refunded_account })))
}

/// A signing key as registered (or, for genesis, as listed in itself).
struct Signer {
    key_id: String,
    key: KeyState,
}

fn signing_keys(state: &State, payload: &Payload, envelope: &Envelope) -> Result<Vec<Signer>, Rejection> {
    let mut signers = Vec::with_capacity(envelope.signatures.len());
    for signature in &envelope.signatures {
        let key_id = signature.key_id.as_str();
        let key = match (&payload.body, state.size) {
            (Body::Genesis(b), 0) => b.root_keys.iter().find(|k| k.key_id.as_str() == key_id).map(|k| KeyState {
                office: ROOT_OFFICE.to_string(),
                public_key: k.public_key.0,
                roles: Vec::new(),
                revoked_at_seq: None,
            }),
            _ => state.keys.get(key_id).cloned(),
        };
        let Some(key) = key else {
            return reject(Code::UnknownKey, format!("key {key_id:?} is not registered"));
        };
        signers.push(Signer { key_id: key_id.to_string(), key });
    }
    if let Some(revoked) = signers.iter().find(|s| s.key.revoked_at_seq.is_some()) {
        return reject(Code::RevokedKey, format!("key {:?} was revoked", revoked.key_id));
    }
    Ok(signers)
}

fn check_signatures(
    envelope: &Envelope,
    signers: &[Signer],
    pre_verified: Option<&PreVerified>,
) -> Result<(), Rejection> {
    let mut message: Option<Vec<u8>> = None;
    for (i, (signature, signer)) in envelope.signatures.iter().zip(signers).enumerate() {
        let known = pre_verified
            .and_then(|p| p.verdicts.get(i).copied().flatten())
            .filter(|(public_key, _)| *public_key == signer.key.public_key)
            .map(|(_, ok)| ok);
        let ok = match known {
            Some(ok) => ok,
            None => {
                let message = message.get_or_insert_with(|| envelope.pae());
                VerifyingKey::from_bytes(&signer.key.public_key)
                    .is_ok_and(|key| crypto::verify_strict(&key, message, &signature.signature))
            }
        };
        if !ok {
            return reject(Code::BadSignature, format!("signature by {:?} does not verify", signer.key_id));
        }
    }
    Ok(())
}

/// The role an act needs, or None for root-only acts.
fn required_role(body: &Body) -> Option<&'static [Role]> {
    match body {
        Body::Genesis(_) | Body::ProgramDefine(_) => None,
        Body::OfficeRegister(_) | Body::KeyAdd(_) | Body::KeyRevoke(_) => Some(&[Role::Admin]),
        Body::Appropriate(_)
        | Body::Transfer(_)
        | Body::Reallocate(_)
        | Body::Payout(_)
        | Body::ProjectRegister(_)
        | Body::Expenditure(_)
        | Body::Refund(_) => Some(&[Role::Finance]),
        Body::HouseholdRegister(_) | Body::HouseholdUpdate(_) => Some(&[Role::Registrar]),
        Body::NoticePublish(_) => Some(&[Role::Finance, Role::Registrar]),
        Body::FlagReview(_) => Some(&[Role::Auditor]),
    }
}

/// Acts root keys may perform.
fn root_may(body: &Body) -> bool {
    matches!(
        body,
        Body::Genesis(_) | Body::OfficeRegister(_) | Body::KeyAdd(_) | Body::KeyRevoke(_) | Body::ProgramDefine(_)
    )
}

fn check_roles(state: &State, payload: &Payload, signers: &[Signer]) -> Result<(), Rejection> {
    let office = payload.office.as_str();
    if genesis_misplaced(state, payload) {
        return reject(Code::Forbidden, "genesis is seq 0, once");
    }
    if let Some(stranger) = signers.iter().find(|s| s.key.office != office) {
        return reject(
            Code::Forbidden,
            format!(
                "key {:?} belongs to {:?}, not to the acting office {office:?}",
                stranger.key_id, stranger.key.office
            ),
        );
    }
    if office == ROOT_OFFICE {
        if !root_may(&payload.body) {
            return reject(Code::Forbidden, format!("root keys may not perform {}", payload.kind()));
        }
        return Ok(());
    }
    let Some(roles) = required_role(&payload.body) else {
        return reject(Code::Forbidden, format!("{} is a root act", payload.kind()));
    };
    if let Some(signer) = signers.iter().find(|s| !roles.iter().any(|r| s.key.has_role(*r))) {
        return reject(
            Code::Forbidden,
            format!("key {:?} lacks the role {:?} for {}", signer.key_id, roles, payload.kind()),
        );
    }
    Ok(())
}

fn genesis_misplaced(state: &State, payload: &Payload) -> bool {
    matches!(payload.body, Body::Genesis(_)) != (state.size == 0)
}

fn unknown(what: &str, id: &str) -> Rejection {
    Rejection::new(Code::UnknownReference, format!("unknown {what} {id:?}"))
}

fn duplicate(what: &str, id: &str) -> Rejection {
    Rejection::new(Code::DuplicateId, format!("{what} {id:?} already exists"))
}

fn need<T>(found: Option<T>, what: &str, id: &str) -> Result<T, Rejection> {
    found.ok_or_else(|| unknown(what, id))
}

fn new_key_id(state: &State, key_id: &str) -> Result<(), Rejection> {
    if state.keys.contains_key(key_id) {
        return Err(duplicate("key", key_id));
    }
    Ok(())
}

/// SPEC §4 step 11. Returns the refunded event's account for refunds.
fn check_references(state: &State, index: &dyn EventIndex, payload: &Payload) -> Result<Option<String>, AppendError> {
    let program = |id: &str| need(state.programs.get(id), "program", id).map(|_| ());
    let office = |id: &str| need(state.offices.get(id), "office", id);
    match &payload.body {
        Body::Genesis(_) | Body::FlagReview(_) => {}
        Body::OfficeRegister(b) => {
            if state.offices.contains_key(b.office_id.as_str()) {
                return Err(duplicate("office", b.office_id.as_str()).into());
            }
            for (i, key) in b.keys.iter().enumerate() {
                new_key_id(state, key.key_id.as_str())?;
                if b.keys[..i].iter().any(|k| k.key_id == key.key_id) {
                    return Err(duplicate("key", key.key_id.as_str()).into());
                }
            }
            if let Some(parent) = &b.parent {
                office(parent.as_str())?;
            }
        }
        Body::KeyAdd(b) => {
            office(b.office_id.as_str())?;
            new_key_id(state, b.key_id.as_str())?;
        }
        Body::KeyRevoke(b) => {
            office(b.office_id.as_str())?;
            let key = need(state.keys.get(b.key_id.as_str()), "key", b.key_id.as_str())?;
            if key.office != b.office_id.as_str() {
                return Err(unknown("key of this office", b.key_id.as_str()).into());
            }
            if key.revoked_at_seq.is_some() {
                return Err(Rejection::new(
                    Code::RevokedKey,
                    format!("key {:?} is already revoked", b.key_id.as_str()),
                )
                .into());
            }
        }
        Body::ProgramDefine(b) => {
            if state.programs.contains_key(b.program_id.as_str()) {
                return Err(duplicate("program", b.program_id.as_str()).into());
            }
        }
        Body::Appropriate(b) => program(b.program.as_str())?,
        Body::Transfer(b) => {
            office(b.to_office.as_str())?;
            program(b.program.as_str())?;
        }
        Body::Reallocate(b) => {
            program(b.from_program.as_str())?;
            program(b.to_program.as_str())?;
        }
        Body::HouseholdRegister(b) => {
            if state.households.contains_key(b.household_id.as_str()) {
                return Err(duplicate("household", b.household_id.as_str()).into());
            }
            let village = office(b.village.as_str())?;
            if village.level != Level::Village {
                return Err(unknown("village office", b.village.as_str()).into());
            }
        }
        Body::HouseholdUpdate(b) => {
            need(state.households.get(b.household_id.as_str()), "household", b.household_id.as_str())?;
        }
        Body::Payout(b) => {
            need(state.households.get(b.household_id.as_str()), "household", b.household_id.as_str())?;
            program(b.program.as_str())?;
        }
        Body::ProjectRegister(b) => {
            if state.projects.contains_key(b.project_id.as_str()) {
                return Err(duplicate("project", b.project_id.as_str()).into());
            }
            program(b.program.as_str())?;
        }
        // An unregistered project is recorded and flagged (unlisted_project), not refused.
        Body::Expenditure(b) => program(b.program.as_str())?,
        Body::Refund(b) => return check_refund(state, index, payload, b).map(Some),
        Body::NoticePublish(b) => {
            program(b.program.as_str())?;
            for household in b.households.iter().flatten() {
                need(state.households.get(household.as_str()), "household", household.as_str())?;
            }
            for project in b.projects.iter().flatten() {
                need(state.projects.get(project.as_str()), "project", project.as_str())?;
            }
        }
    }
    Ok(None)
}

fn check_refund(
    state: &State,
    index: &dyn EventIndex,
    payload: &Payload,
    refund: &crate::payload::Refund,
) -> Result<String, AppendError> {
    let id = refund.ref_event.as_str();
    let original = index.event(id)?;
    let Some(original) = original.filter(|e| e.office == payload.office.as_str() && e.account.is_some()) else {
        return Err(unknown("payout or expenditure of this office", id).into());
    };
    let before = state.refunded_by_event.get(id).copied().unwrap_or(0);
    let total = before + refund.amount_fen.fen();
    if total > original.amount_fen {
        return Err(Rejection::new(
            Code::InvalidAmount,
            format!("refunds of {id} would total {total} fen, beyond the {} fen it moved", original.amount_fen),
        )
        .into());
    }
    Ok(original.account.expect("filtered on account above"))
}

fn region_covers(state: &State, office: &str, region: &str) -> bool {
    state.offices.get(office).is_some_and(|o| region.starts_with(o.region_code.as_str()))
}

/// SPEC §4 step 12: authority over the referenced objects.
fn check_authority(state: &State, payload: &Payload) -> Result<(), Rejection> {
    let acting = payload.office.as_str();
    let forbid = |message: String| reject(Code::Forbidden, message);
    match &payload.body {
        Body::OfficeRegister(b) => match &b.parent {
            None if acting != ROOT_OFFICE => forbid("only root registers a top-level office".into()),
            None => Ok(()),
            Some(parent) => {
                if acting != ROOT_OFFICE && acting != parent.as_str() {
                    return forbid(format!("only root or {parent} registers a child of {parent}"));
                }
                let parent_level = state.offices[parent.as_str()].level;
                if b.level <= parent_level {
                    return forbid(format!("a {:?} cannot sit under a {:?}", b.level, parent_level));
                }
                Ok(())
            }
        },
        Body::KeyAdd(crate::payload::KeyAdd { office_id, .. })
        | Body::KeyRevoke(crate::payload::KeyRevoke { office_id, .. }) => {
            let parent = state.offices[office_id.as_str()].parent.as_deref();
            if acting == ROOT_OFFICE || acting == office_id.as_str() || parent == Some(acting) {
                return Ok(());
            }
            forbid(format!("{acting} has no authority over the keys of {office_id}"))
        }
        Body::HouseholdRegister(b) => {
            let region = &state.offices[b.village.as_str()].region_code;
            if !region_covers(state, acting, region) {
                return forbid(format!("{acting} is not a registrar for village {}", b.village));
            }
            Ok(())
        }
        Body::HouseholdUpdate(crate::payload::HouseholdUpdate { household_id, .. })
        | Body::Payout(crate::payload::Payout { household_id, .. }) => {
            let household = &state.households[household_id.as_str()];
            if !region_covers(state, acting, &household.village_region_code) {
                return forbid(format!("{acting} has no authority in the region of household {household_id}"));
            }
            Ok(())
        }
        Body::Transfer(b) if b.to_office.as_str() == acting => forbid("a transfer to oneself".into()),
        Body::Reallocate(b) if b.from_program == b.to_program => forbid("a reallocation to the same program".into()),
        _ => Ok(()),
    }
}

/// SPEC §4 step 13: no fund account may be overdrawn.
fn check_funds(state: &State, payload: &Payload) -> Result<(), Rejection> {
    let office = payload.office.as_str();
    let (program, amount) = match &payload.body {
        Body::Transfer(b) => (b.program.as_str(), b.amount_fen.fen()),
        Body::Reallocate(b) => (b.from_program.as_str(), b.amount_fen.fen()),
        Body::Payout(b) => (b.program.as_str(), b.amount_fen.fen()),
        Body::Expenditure(b) => (b.program.as_str(), b.amount_fen.fen()),
        _ => return Ok(()),
    };
    let account = account_id(office, program);
    let balance = state.balance(&account);
    if balance < amount {
        return reject(Code::InsufficientFunds, format!("{account} holds {balance} fen, {amount} fen requested"));
    }
    Ok(())
}
