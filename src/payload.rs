//! Event payloads (SPEC §3): strict parsing of the 16 kinds into typed values.
//!
//! Owns: what a well-formed payload is. Unknown fields, floats, duplicate
//! keys, bad ids, dates, periods and digests are `schema` errors; integer
//! amounts outside 1..=2^53−1 are `invalid_amount` (checked after the schema,
//! as SPEC §4 orders). Never: touches ledger state, or re-serialises bytes.

use crate::date::{Date, Period};
use crate::error::{reject, Code, Rejection};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// SPEC §3: a payload is at most 64 KiB.
pub const PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// SPEC §3: strings are at most 500 characters.
pub const STRING_CHARS_MAX: usize = 500;
/// SPEC §3: ids are `[A-Za-z0-9._:-]{1,64}`.
pub const ID_CHARS_MAX: usize = 64;
/// SPEC §1: amounts are 1..=2^53−1 fen (exact in a JSON double).
pub const AMOUNT_FEN_MAX: u64 = (1 << 53) - 1;
/// Bounds on lists, so one payload cannot describe unbounded work.
pub const KEYS_PER_EVENT_MAX: usize = 16;
pub const ROLES_PER_KEY_MAX: usize = 4;
pub const MEMBERS_PER_HOUSEHOLD_MAX: usize = 64;
pub const NOTICE_ITEMS_MAX: usize = 10_000;

macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr, $what:literal) => {
        checked_string!($(#[$doc])* $name, $check, $what, |_| None);
    };
    ($(#[$doc:meta])* $name:ident, $check:expr, $what:literal, $personal:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                let check: fn(&str) -> bool = $check;
                let personal: fn(&str) -> Option<crate::personal::Found> = $personal;
                if let Some(found) = personal(&text) {
                    Err(de::Error::custom(format!(
                        "holds {} ({:?}); the chain takes only keyed digests and masked forms (SPEC §1)",
                        found.describe(),
                        clip(&text)
                    )))
                } else if check(&text) {
                    Ok($name(text))
                } else {
                    Err(de::Error::custom(format!("not {}: {:?}", $what, clip(&text))))
                }
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Shortens echoed input in error messages, and hides long digit runs so a
/// refused ID or card number is never echoed (`personal::redact`).
fn clip(text: &str) -> String {
    crate::personal::redact(&text.chars().take(80).collect::<String>())
}

fn is_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= ID_CHARS_MAX
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

fn is_key_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= ID_CHARS_MAX
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-/".contains(&b))
}

fn is_digest(text: &str) -> bool {
    crate::encoding::hex_array::<32>(text).is_some()
}

fn is_text(text: &str) -> bool {
    text.chars().count() <= STRING_CHARS_MAX
}

fn is_region_code(text: &str) -> bool {
    (2..=12).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_flag_id(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A masked card shows only the first 4 and last 4 digits (SPEC §1, §9), so
/// a raw card number can never enter the chain through this field.
fn is_masked_card(text: &str) -> bool {
    let b = text.as_bytes();
    (12..=23).contains(&b.len())
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[b.len() - 4..].iter().all(u8::is_ascii_digit)
        && b[4..b.len() - 4].iter().all(|c| *c == b'*')
}

/// A masked name hides at least one character, and holds no digits (so an
/// ID number cannot be smuggled into it).
fn is_masked_name(text: &str) -> bool {
    is_text(text) && text.contains('*') && !text.chars().any(|c| c.is_ascii_digit())
}

checked_string!(
    /// An object or event id: `[A-Za-z0-9._:-]{1,64}`, not holding a valid
    /// ID or card number (`personal::find_in_id`).
    Id, is_id, "an id [A-Za-z0-9._:-]{1,64}", crate::personal::find_in_id);
checked_string!(
    /// A key id: an id that may also contain `/`.
    KeyId, is_key_id, "a key id [A-Za-z0-9._:/-]{1,64}", crate::personal::find_in_id);
checked_string!(
    /// 64 lowercase hex: a keyed digest (HMAC-SHA256) or a document digest.
    Digest, is_digest, "64 lowercase hex");
checked_string!(
    /// Free text, at most 500 characters, holding nothing shaped like an ID
    /// or card number (`personal::find_in_text`).
    Text, is_text, "text of at most 500 characters", crate::personal::find_in_text);
checked_string!(
    /// GB/T 2260 administrative division code, 2–12 digits.
    RegionCode, is_region_code, "a region code of 2-12 digits");
checked_string!(
    /// A flag id: 16 lowercase hex.
    FlagId, is_flag_id, "a flag id of 16 lowercase hex");
checked_string!(
    /// A card number masked to its first 4 and last 4 digits.
    MaskedCard, is_masked_card, "a masked card like 6228********1234");
checked_string!(
    /// A masked name (`张*三`).
    MaskedName, is_masked_name, "a masked name like 张*三");

/// An Ed25519 public key: base64 of 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = crate::encoding::base64_decode(&text)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| de::Error::custom("public_key is not base64 of 32 bytes"))?;
        // SPEC §2: keys of small order are refused when registered.
        crate::crypto::acceptable_public_key(&bytes)
            .map(|_| PublicKey(bytes))
            .ok_or_else(|| de::Error::custom("public_key is not a usable Ed25519 key (not a point, or of small order)"))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::encoding::base64_encode(&self.0))
    }
}

/// An amount as written: any JSON integer. Bounds are checked after the
/// schema so that a zero or negative amount is `invalid_amount`, not `schema`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Amount(i128);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i128::deserialize(deserializer)
            .map(Amount)
            .map_err(|_| de::Error::custom("amounts are integers of fen (no floats, no strings)"))
    }
}

impl Amount {
    /// The amount in fen. Only meaningful after [`Payload`] bounds checks.
    pub fn fen(self) -> u64 {
        assert!(self.in_bounds(), "amount used before its bounds were checked");
        self.0 as u64
    }

    pub fn in_bounds(self) -> bool {
        self.0 >= 1 && self.0 <= i128::from(AMOUNT_FEN_MAX)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Central,
    Province,
    Prefecture,
    County,
    Township,
    Village,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Finance,
    Registrar,
    Auditor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayeeKind {
    Household,
    Project,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramPeriod {
    Month,
    Quarter,
    Year,
    Once,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HouseholdStatus {
    Enrolled,
    Exited,
    Removed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeScope {
    PayoutRoster,
    Project,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    UnderReview,
    Confirmed,
    Dismissed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Construction,
    Goods,
    Services,
    WorkRelief,
    Insurance,
    InterestSubsidy,
    Admin,
    Salary,
    Vehicle,
    Building,
    Hospitality,
    Lending,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Currency {
    #[serde(rename = "CNY")]
    Cny,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedKey {
    pub key_id: KeyId,
    pub public_key: PublicKey,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyGrant {
    pub key_id: KeyId,
    pub public_key: PublicKey,
    pub roles: Vec<Role>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub person_digest: Digest,
    pub name_masked: MaskedName,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub card_digest: Digest,
    pub card_masked: MaskedCard,
    pub bank: Text,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub name: Text,
    pub root_keys: Vec<NamedKey>,
    pub log_key: NamedKey,
    pub currency: Currency,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OfficeRegister {
    pub office_id: Id,
    pub name: Text,
    pub level: Level,
    /// Required, may be null (a top-level office).
    #[serde(deserialize_with = "Option::deserialize")]
    pub parent: Option<Id>,
    pub region_code: RegionCode,
    #[serde(default)]
    pub contact: Option<Text>,
    pub keys: Vec<KeyGrant>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAdd {
    pub office_id: Id,
    pub key_id: KeyId,
    pub public_key: PublicKey,
    pub roles: Vec<Role>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRevoke {
    pub office_id: Id,
    pub key_id: KeyId,
    pub reason: Text,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramDefine {
    pub program_id: Id,
    pub name: Text,
    pub earmarked: bool,
    pub payee: PayeeKind,
    #[serde(default)]
    pub standard_fen: Option<Amount>,
    #[serde(default)]
    pub cap_fen_per_year: Option<Amount>,
    pub period: ProgramPeriod,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Appropriate {
    pub program: Id,
    pub amount_fen: Amount,
    pub budget_ref: Text,
    pub fiscal_year: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub to_office: Id,
    pub program: Id,
    pub amount_fen: Amount,
    pub doc_ref: Text,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reallocate {
    pub from_program: Id,
    pub to_program: Id,
    pub amount_fen: Amount,
    pub doc_ref: Text,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HouseholdRegister {
    pub household_id: Id,
    pub village: Id,
    pub head_name_masked: MaskedName,
    pub members: Vec<Member>,
    pub card: Card,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HouseholdUpdate {
    pub household_id: Id,
    #[serde(default)]
    pub status: Option<HouseholdStatus>,
    #[serde(default)]
    pub reason: Option<Text>,
    #[serde(default)]
    pub deceased: Option<Vec<Digest>>,
    #[serde(default)]
    pub card: Option<Card>,
    #[serde(default)]
    pub add_members: Option<Vec<Member>>,
    #[serde(default)]
    pub remove_members: Option<Vec<Digest>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Payout {
    pub household_id: Id,
    pub program: Id,
    pub amount_fen: Amount,
    pub period: Period,
    pub card_digest: Digest,
    #[serde(default)]
    pub person_digest: Option<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectRegister {
    pub project_id: Id,
    pub program: Id,
    pub name: Text,
    pub budget_fen: Amount,
    #[serde(default)]
    pub location: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expenditure {
    pub program: Id,
    /// Required, may be null (spending outside any project: flagged).
    #[serde(deserialize_with = "Option::deserialize")]
    pub project_id: Option<Id>,
    pub payee_id: Id,
    pub payee_name: Text,
    pub category: Category,
    pub amount_fen: Amount,
    pub doc_ref: Text,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    pub ref_event: Id,
    pub amount_fen: Amount,
    pub reason: Text,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoticePublish {
    pub notice_id: Id,
    pub scope: NoticeScope,
    pub program: Id,
    #[serde(default)]
    pub period: Option<Period>,
    #[serde(default)]
    pub households: Option<Vec<Id>>,
    #[serde(default)]
    pub projects: Option<Vec<Id>>,
    pub from: Date,
    pub to: Date,
    pub document_digest: Digest,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlagReview {
    pub flag_id: FlagId,
    pub status: ReviewStatus,
    pub note: Text,
}

/// The kind-specific body of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Genesis(Genesis),
    OfficeRegister(OfficeRegister),
    KeyAdd(KeyAdd),
    KeyRevoke(KeyRevoke),
    ProgramDefine(ProgramDefine),
    Appropriate(Appropriate),
    Transfer(Transfer),
    Reallocate(Reallocate),
    HouseholdRegister(HouseholdRegister),
    HouseholdUpdate(HouseholdUpdate),
    Payout(Payout),
    ProjectRegister(ProjectRegister),
    Expenditure(Expenditure),
    Refund(Refund),
    NoticePublish(NoticePublish),
    FlagReview(FlagReview),
}

/// A parsed, schema-valid payload with amounts in bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    pub ledger: Id,
    pub id: Id,
    /// The acting office, or `root`.
    pub office: Id,
    pub at: Date,
    pub body: Body,
    pub memo: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayload<'a> {
    v: u8,
    ledger: Id,
    id: Id,
    kind: &'a str,
    office: Id,
    at: Date,
    #[serde(borrow)]
    body: &'a RawValue,
    #[serde(default)]
    memo: Option<Text>,
}

impl Body {
    /// The SPEC §3 kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Genesis(_) => "genesis",
            Body::OfficeRegister(_) => "office_register",
            Body::KeyAdd(_) => "key_add",
            Body::KeyRevoke(_) => "key_revoke",
            Body::ProgramDefine(_) => "program_define",
            Body::Appropriate(_) => "appropriate",
            Body::Transfer(_) => "transfer",
            Body::Reallocate(_) => "reallocate",
            Body::HouseholdRegister(_) => "household_register",
            Body::HouseholdUpdate(_) => "household_update",
            Body::Payout(_) => "payout",
            Body::ProjectRegister(_) => "project_register",
            Body::Expenditure(_) => "expenditure",
            Body::Refund(_) => "refund",
            Body::NoticePublish(_) => "notice_publish",
            Body::FlagReview(_) => "flag_review",
        }
    }

    fn parse(kind: &str, body: &str) -> Result<Body, serde_json::Error> {
        use serde_json::from_str as json;
        Ok(match kind {
            "genesis" => Body::Genesis(json(body)?),
            "office_register" => Body::OfficeRegister(json(body)?),
            "key_add" => Body::KeyAdd(json(body)?),
            "key_revoke" => Body::KeyRevoke(json(body)?),
            "program_define" => Body::ProgramDefine(json(body)?),
            "appropriate" => Body::Appropriate(json(body)?),
            "transfer" => Body::Transfer(json(body)?),
            "reallocate" => Body::Reallocate(json(body)?),
            "household_register" => Body::HouseholdRegister(json(body)?),
            "household_update" => Body::HouseholdUpdate(json(body)?),
            "payout" => Body::Payout(json(body)?),
            "project_register" => Body::ProjectRegister(json(body)?),
            "expenditure" => Body::Expenditure(json(body)?),
            "refund" => Body::Refund(json(body)?),
            "notice_publish" => Body::NoticePublish(json(body)?),
            "flag_review" => Body::FlagReview(json(body)?),
            other => return Err(de::Error::custom(format!("unknown kind {:?}", clip(other)))),
        })
    }

    /// Every amount field, for the bounds check.
    fn amounts(&self) -> Vec<(&'static str, Amount)> {
        match self {
            Body::ProgramDefine(b) => {
                let mut out = Vec::new();
                if let Some(a) = b.standard_fen {
                    out.push(("standard_fen", a));
                }
                if let Some(a) = b.cap_fen_per_year {
                    out.push(("cap_fen_per_year", a));
                }
                out
            }
            Body::Appropriate(b) => vec![("amount_fen", b.amount_fen)],
            Body::Transfer(b) => vec![("amount_fen", b.amount_fen)],
            Body::Reallocate(b) => vec![("amount_fen", b.amount_fen)],
            Body::Payout(b) => vec![("amount_fen", b.amount_fen)],
            Body::ProjectRegister(b) => vec![("budget_fen", b.budget_fen)],
            Body::Expenditure(b) => vec![("amount_fen", b.amount_fen)],
            Body::Refund(b) => vec![("amount_fen", b.amount_fen)],
            _ => Vec::new(),
        }
    }

    /// The money this event moves, if any (for dual control).
    pub fn moved_fen(&self) -> Option<u64> {
        match self {
            Body::Appropriate(b) => Some(b.amount_fen.fen()),
            Body::Transfer(b) => Some(b.amount_fen.fen()),
            Body::Reallocate(b) => Some(b.amount_fen.fen()),
            Body::Payout(b) => Some(b.amount_fen.fen()),
            Body::Expenditure(b) => Some(b.amount_fen.fen()),
            Body::Refund(b) => Some(b.amount_fen.fen()),
            _ => None,
        }
    }
}

/// serde's own messages quote the offending value; long digit runs in them
/// are redacted like every other echo (`personal::redact`).
fn schema_error(error: impl std::fmt::Display) -> Rejection {
    Rejection::new(Code::Schema, crate::personal::redact(&format!("payload: {error}")))
}

/// Rules that a type cannot express: list bounds, required alternatives.
fn check_shape(body: &Body) -> Result<(), Rejection> {
    let too_many = |what: &str, len: usize, max: usize| -> Result<(), Rejection> {
        if len > max {
            return reject(Code::Schema, format!("payload: {what} has {len} items, at most {max}"));
        }
        Ok(())
    };
    let no_empty_roles = |roles: &[Role]| -> Result<(), Rejection> {
        if roles.is_empty() || roles.len() > ROLES_PER_KEY_MAX {
            return reject(Code::Schema, "payload: roles must list 1-4 roles");
        }
        Ok(())
    };
    match body {
        Body::Genesis(b) => {
            if b.root_keys.is_empty() {
                return reject(Code::Schema, "payload: genesis needs at least one root key");
            }
            too_many("root_keys", b.root_keys.len(), KEYS_PER_EVENT_MAX)
        }
        Body::OfficeRegister(b) => {
            too_many("keys", b.keys.len(), KEYS_PER_EVENT_MAX)?;
            b.keys.iter().try_for_each(|k| no_empty_roles(&k.roles))
        }
        Body::KeyAdd(b) => no_empty_roles(&b.roles),
        Body::HouseholdRegister(b) => {
            if b.members.is_empty() {
                return reject(Code::Schema, "payload: a household has at least one member");
            }
            too_many("members", b.members.len(), MEMBERS_PER_HOUSEHOLD_MAX)
        }
        Body::HouseholdUpdate(b) => {
            let changes = b.status.is_some()
                || b.reason.is_some()
                || b.deceased.is_some()
                || b.card.is_some()
                || b.add_members.is_some()
                || b.remove_members.is_some();
            if !changes {
                return reject(Code::Schema, "payload: household_update changes nothing");
            }
            let lists = [
                b.deceased.as_ref().map_or(0, Vec::len),
                b.add_members.as_ref().map_or(0, Vec::len),
                b.remove_members.as_ref().map_or(0, Vec::len),
            ];
            lists.iter().try_for_each(|len| too_many("member list", *len, MEMBERS_PER_HOUSEHOLD_MAX))
        }
        Body::NoticePublish(b) => {
            too_many("households", b.households.as_ref().map_or(0, Vec::len), NOTICE_ITEMS_MAX)?;
            too_many("projects", b.projects.as_ref().map_or(0, Vec::len), NOTICE_ITEMS_MAX)?;
            if b.to < b.from {
                return reject(Code::Schema, "payload: notice ends before it starts");
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Parses payload bytes: schema first, then amount bounds (SPEC §4 order).
pub fn parse_payload(bytes: &[u8]) -> Result<Payload, Rejection> {
    if bytes.len() > PAYLOAD_BYTES_MAX {
        return reject(Code::BadEnvelope, format!("payload is {} bytes, at most {PAYLOAD_BYTES_MAX}", bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| schema_error("not UTF-8"))?;
    let raw: RawPayload<'_> = serde_json::from_str(text).map_err(schema_error)?;
    if raw.v != 1 {
        return reject(Code::Schema, format!("payload: v is {}, only 1 is known", raw.v));
    }
    let body = Body::parse(raw.kind, raw.body.get()).map_err(|e| schema_error(format_args!("body: {e}")))?;
    check_shape(&body)?;
    for (field, amount) in body.amounts() {
        if !amount.in_bounds() {
            return reject(Code::InvalidAmount, format!("{field} must be 1..={AMOUNT_FEN_MAX} fen"));
        }
    }
    Ok(Payload { ledger: raw.ledger, id: raw.id, office: raw.office, at: raw.at, body, memo: raw.memo })
}

impl Payload {
    pub fn kind(&self) -> &'static str {
        self.body.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<&str, Code>) {
        let got = parse_payload(text.as_bytes());
        match (got, expected) {
            (Ok(p), Ok(kind)) => assert_eq!(p.kind(), kind),
            (Err(e), Err(code)) => assert_eq!(e.code, code, "{text}: {}", e.message),
            (got, expected) => panic!("{text}: got {got:?}, expected {expected:?}"),
        }
    }

    const HEAD: &str = r#""v":1,"ledger":"L","id":"e1","office":"422822","at":"2019-01-05""#;

    #[test]
    fn strict_parsing() {
        // Goal: each malformed shape is a schema error, amounts out of range invalid_amount.
        let refund = |amount: &str| {
            format!(r#"{{{HEAD},"kind":"refund","body":{{"ref_event":"p1","amount_fen":{amount},"reason":"x"}}}}"#)
        };
        check(&refund("5"), Ok("refund"));
        check(&refund("0"), Err(Code::InvalidAmount));
        check(&refund("-5"), Err(Code::InvalidAmount));
        check(&refund("9007199254740992"), Err(Code::InvalidAmount));
        check(&refund("9007199254740991"), Ok("refund"));
        check(&refund("5.0"), Err(Code::Schema));
        check(&refund("1e3"), Err(Code::Schema));
        check(&refund("\"5\""), Err(Code::Schema));
        check(
            &format!(
                r#"{{{HEAD},"kind":"refund","body":{{"ref_event":"p1","amount_fen":5,"amount_fen":5,"reason":"x"}}}}"#
            ),
            Err(Code::Schema),
        );
        check(
            &format!(r#"{{{HEAD},"id":"e2","kind":"refund","body":{{"ref_event":"p1","amount_fen":5,"reason":"x"}}}}"#),
            Err(Code::Schema),
        );
        check(
            &format!(r#"{{{HEAD},"kind":"refund","extra":1,"body":{{"ref_event":"p1","amount_fen":5,"reason":"x"}}}}"#),
            Err(Code::Schema),
        );
        check(&format!(r#"{{{HEAD},"kind":"nope","body":{{}}}}"#), Err(Code::Schema));
        check(&format!(r#"{{{HEAD},"kind":"household_update","body":{{"household_id":"h"}}}}"#), Err(Code::Schema));
        check(
            r#"{"v":1,"ledger":"L","id":"e1","office":"o","at":"2019-02-30","kind":"refund","body":{"ref_event":"p1","amount_fen":5,"reason":"x"}}"#,
            Err(Code::Schema),
        );
        check("[]", Err(Code::Schema));
        check("{", Err(Code::Schema));
    }
}
