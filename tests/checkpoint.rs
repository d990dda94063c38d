//! Tests for `sunledger::checkpoint`: checkpoint.txt reproduced byte for
//! byte from the shared vectors, round trips, co-signing, and near misses
//! and garbage that must be rejected without panicking.

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::Value;
use sunledger::checkpoint::{
    cosign, key_hash, parse_checkpoint, sign, sign_checkpoint, verify, Checkpoint, CheckpointError, Note, NoteError,
    SignError, SignatureLine, VerifyError, NOTE_BYTES_MAX, SIGNATURES_MAX,
};
use sunledger::merkle::Hash;

// ---------------------------------------------------------------- helpers

const LEDGER_ID: &str = "hb-demo-2018";
const TREE_SIZE: u64 = 27;
const LOG_KEY_ID: &str = "log/k1";
const AUDITOR_KEY_ID: &str = "422822-aud/k1";
const STRANGER_KEY_ID: &str = "420000/k1";

fn vectors_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors").join(name)
}

fn read_vector(name: &str) -> String {
    let path = vectors_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|offset| u8::from_str_radix(&text[offset..offset + 2], 16).expect("hex digit"))
        .collect()
}

/// The root of the shared chain at `TREE_SIZE`, from merkle.json.
fn vector_root() -> Hash {
    let merkle: Value = serde_json::from_str(&read_vector("merkle.json")).expect("merkle.json");
    let root_hex = merkle["roots"][TREE_SIZE.to_string()].as_str().expect("root");
    hex_decode(root_hex).try_into().expect("32 bytes")
}

/// The signing key for `key_id` from keys.json (secret_key is the seed).
fn signing_key(key_id: &str) -> SigningKey {
    let keys: Value = serde_json::from_str(&read_vector("keys.json")).expect("keys.json");
    let entry = keys.as_array().expect("array").iter().find(|key| key["key_id"] == key_id).expect("key id");
    let seed = BASE64.decode(entry["secret_key"].as_str().expect("secret")).expect("base64");
    let key = SigningKey::from_bytes(&seed.try_into().expect("32-byte seed"));
    let public = BASE64.decode(entry["public_key"].as_str().expect("public")).expect("base64");
    assert_eq!(key.verifying_key().as_bytes().as_slice(), public.as_slice(), "keys.json pair for {key_id}");
    key
}

fn public_key(key_id: &str) -> VerifyingKey {
    signing_key(key_id).verifying_key()
}

fn known(key_ids: &[&'static str]) -> Vec<(&'static str, VerifyingKey)> {
    key_ids.iter().map(|key_id| (*key_id, public_key(key_id))).collect()
}

fn vector_checkpoint() -> Checkpoint {
    Checkpoint::new(LEDGER_ID, TREE_SIZE, vector_root())
}

fn vector_note() -> Note {
    Note::parse(&read_vector("checkpoint.txt")).expect("checkpoint.txt parses")
}

// ------------------------------------------------------------ known answer

#[test]
fn checkpoint_txt_reproduced_byte_for_byte() {
    // Goal: signing (hb-demo-2018, 27, merkle.json root 27) with log/k1's
    // seed gives checkpoint.txt exactly (Ed25519 is deterministic).
    let note = sign_checkpoint(&vector_checkpoint(), LOG_KEY_ID, &signing_key(LOG_KEY_ID)).expect("sign");
    assert_eq!(note.to_text(), read_vector("checkpoint.txt"));
}

#[test]
fn checkpoint_txt_parses_to_its_fields() {
    // Goal: parsing checkpoint.txt yields the vector checkpoint and a single
    // line by log/k1 whose key hash is SHA-256(name || 0x0A || 0x01 || key)[:4].
    let note = vector_note();
    assert_eq!(parse_checkpoint(&note.body), Ok(vector_checkpoint()));
    assert_eq!(vector_checkpoint().ledger_id(), Some(LEDGER_ID));
    assert_eq!(note.signatures.len(), 1);
    assert_eq!(note.signatures[0].key_id, LOG_KEY_ID);
    assert_eq!(note.signatures[0].key_hash, key_hash(LOG_KEY_ID, &public_key(LOG_KEY_ID)));
}

#[test]
fn parse_to_text_round_trip() {
    // Goal: parse then to_text gives back the same bytes, for the vector and
    // for a co-signed note; body then parse_checkpoint gives back the
    // checkpoint, including size 0 and u64::MAX.
    let vector = read_vector("checkpoint.txt");
    assert_eq!(vector_note().to_text(), vector);
    let cosigned = cosign(&vector_note(), AUDITOR_KEY_ID, &signing_key(AUDITOR_KEY_ID)).expect("cosign");
    assert_eq!(Note::parse(&cosigned.to_text()), Ok(cosigned.clone()));
    assert_eq!(Note::from_bytes(cosigned.to_text().as_bytes()), Ok(cosigned));
    for size in [0, 1, TREE_SIZE, u64::MAX] {
        let checkpoint = Checkpoint::new(LEDGER_ID, size, [0xa5; 32]);
        assert_eq!(parse_checkpoint(&checkpoint.body()), Ok(checkpoint));
    }
}

// ---------------------------------------------------------------- verify

#[test]
fn verify_accepts_log_signature() {
    // Goal: checkpoint.txt verifies with the log key and reports it.
    let verified = verify(&vector_note(), LOG_KEY_ID, &known(&[LOG_KEY_ID])).expect("verifies");
    assert_eq!(verified.checkpoint, vector_checkpoint());
    assert_eq!(verified.signed_by, vec![LOG_KEY_ID.to_owned()]);
}

#[test]
fn verify_rejects_every_altered_bit() {
    // Goal: flipping any bit of any byte of checkpoint.txt (body, blank
    // line, em dash, key id or signature) makes parsing or verification
    // fail: nothing else verifies as log/k1's checkpoint.
    let text = read_vector("checkpoint.txt").into_bytes();
    let keys = known(&[LOG_KEY_ID]);
    for position in 0..text.len() {
        for bit in 0..8 {
            let mut altered = text.clone();
            altered[position] ^= 1 << bit;
            let outcome = Note::from_bytes(&altered).map(|note| verify(&note, LOG_KEY_ID, &keys));
            assert!(!matches!(outcome, Ok(Ok(_))), "byte {position} bit {bit} still verifies");
        }
    }
}

#[test]
fn verify_ignores_unknown_keys() {
    // Goal: a line by a key the verifier does not know (an unknown witness,
    // or garbage under an unknown name) is ignored.
    let cosigned = cosign(&vector_note(), STRANGER_KEY_ID, &signing_key(STRANGER_KEY_ID)).expect("cosign");
    let mut with_garbage = cosigned.clone();
    with_garbage.signatures.push(SignatureLine {
        key_id: "nobody/k9".to_owned(),
        key_hash: [1, 2, 3, 4],
        signature: [7; 64],
    });
    for note in [cosigned, with_garbage] {
        let verified = verify(&note, LOG_KEY_ID, &known(&[LOG_KEY_ID])).expect("verifies");
        assert_eq!(verified.signed_by, vec![LOG_KEY_ID.to_owned()]);
    }
}

#[test]
fn verify_ignores_known_name_with_other_key_hash() {
    // Goal: a line that uses a known key's name but another key's hash names
    // a different key (C2SP: keys are name plus hash), so it is ignored.
    let mut note = vector_note();
    let mut imposter = sign(&note.body, AUDITOR_KEY_ID, &signing_key(STRANGER_KEY_ID)).expect("sign");
    imposter.key_id = AUDITOR_KEY_ID.to_owned();
    note.signatures.push(imposter);
    let verified = verify(&note, LOG_KEY_ID, &known(&[LOG_KEY_ID, AUDITOR_KEY_ID])).expect("verifies");
    assert_eq!(verified.signed_by, vec![LOG_KEY_ID.to_owned()]);
}

#[test]
fn cosign_then_verify_requiring_witness() {
    // Goal: an auditor's co-signature verifies and is reported; requiring
    // it succeeds while the line is there, and fails once it is removed or
    // altered.
    let keys = known(&[LOG_KEY_ID, AUDITOR_KEY_ID]);
    let cosigned = cosign(&vector_note(), AUDITOR_KEY_ID, &signing_key(AUDITOR_KEY_ID)).expect("cosign");
    let verified = verify(&cosigned, LOG_KEY_ID, &keys).expect("verifies");
    assert_eq!(verified.signed_by, vec![LOG_KEY_ID.to_owned(), AUDITOR_KEY_ID.to_owned()]);
    assert!(verify(&cosigned, AUDITOR_KEY_ID, &keys).is_ok());

    let mut removed = cosigned.clone();
    removed.signatures.pop();
    let missing = VerifyError::MissingRequiredSignature { key_id: AUDITOR_KEY_ID.to_owned() };
    assert_eq!(verify(&removed, AUDITOR_KEY_ID, &keys), Err(missing));

    let mut altered = cosigned.clone();
    altered.signatures[1].signature[10] ^= 0x40;
    let invalid = VerifyError::InvalidSignature { key_id: AUDITOR_KEY_ID.to_owned() };
    assert_eq!(verify(&altered, AUDITOR_KEY_ID, &keys), Err(invalid.clone()));
    assert_eq!(verify(&altered, LOG_KEY_ID, &keys), Err(invalid), "a bad known line rejects the note");
}

#[test]
fn verify_rejects_structural_problems() {
    // Goal: unknown required key, duplicate lines by one key, too many
    // lines and a body that is not a checkpoint are each typed errors.
    let note = vector_note();
    let keys = known(&[LOG_KEY_ID]);
    let unknown = VerifyError::RequiredKeyUnknown { key_id: AUDITOR_KEY_ID.to_owned() };
    assert_eq!(verify(&note, AUDITOR_KEY_ID, &keys), Err(unknown));

    let mut duplicated = note.clone();
    duplicated.signatures.push(note.signatures[0].clone());
    let duplicate = VerifyError::DuplicateSignature { key_id: LOG_KEY_ID.to_owned() };
    assert_eq!(verify(&duplicated, LOG_KEY_ID, &keys), Err(duplicate));

    let mut crowded = note.clone();
    crowded.signatures = vec![note.signatures[0].clone(); SIGNATURES_MAX + 1];
    assert_eq!(verify(&crowded, LOG_KEY_ID, &keys), Err(VerifyError::TooManySignatures));

    let log_key = signing_key(LOG_KEY_ID);
    let not_a_checkpoint = Note {
        body: "sunledger/x\n1\n".to_owned(),
        signatures: vec![sign("sunledger/x\n1\n", LOG_KEY_ID, &log_key).expect("sign")],
    };
    let wrong_lines = VerifyError::Checkpoint(CheckpointError::WrongLineCount { lines: 2 });
    assert_eq!(verify(&not_a_checkpoint, LOG_KEY_ID, &keys), Err(wrong_lines));
}

// ------------------------------------------------------------ signing

#[test]
fn signing_refuses_bad_input() {
    // Goal: sign and cosign refuse key ids and bodies that would produce an
    // unparseable note, and a second line by the same key.
    let key = signing_key(LOG_KEY_ID);
    let body = vector_checkpoint().body();
    for key_id in ["", "log k1", "log+k1", "log\tk1", &"k".repeat(257)] {
        assert_eq!(sign(&body, key_id, &key), Err(SignError::InvalidKeyId), "{key_id:?}");
    }
    let bad_bodies: [(&str, NoteError); 4] = [
        ("", NoteError::MissingFinalNewline),
        ("no newline", NoteError::MissingFinalNewline),
        ("a\n\nb\n", NoteError::EmptyBodyLine),
        ("a\r\n", NoteError::ControlCharacter),
    ];
    for (bad_body, error) in bad_bodies {
        assert_eq!(sign(bad_body, LOG_KEY_ID, &key), Err(SignError::InvalidBody(error)), "{bad_body:?}");
    }
    assert_eq!(cosign(&vector_note(), LOG_KEY_ID, &key), Err(SignError::AlreadySigned));
    let mut crowded = vector_note();
    crowded.signatures = vec![crowded.signatures[0].clone(); SIGNATURES_MAX];
    assert_eq!(cosign(&crowded, AUDITOR_KEY_ID, &key), Err(SignError::TooManySignatures));
}

// ------------------------------------------------------------ garbage

/// Replaces the first occurrence of `from` in checkpoint.txt.
fn vector_with(from: &str, to: &str) -> String {
    let text = read_vector("checkpoint.txt");
    assert!(text.contains(from), "{from:?} is in checkpoint.txt");
    text.replacen(from, to, 1)
}

#[test]
fn note_parse_rejects_garbage() {
    // Goal: each kind of malformed note text gets its own error (table of
    // input and expected error).
    let signature_line = read_vector("checkpoint.txt").lines().last().expect("line").to_owned();
    let base64 = signature_line.rsplit(' ').next().expect("payload").to_owned();
    let cases: Vec<(String, NoteError)> = vec![
        (String::new(), NoteError::MissingBlankLine),
        ("sunledger/x\n27\nroot\n".to_owned(), NoteError::MissingBlankLine),
        ("\n\n".to_owned(), NoteError::EmptyBodyLine),
        ("\n\n— log/k1 AAAA\n".to_owned(), NoteError::EmptyBodyLine),
        (vector_with("27\n", "27\n\n"), NoteError::EmptyBodyLine),
        (vector_with(&format!("{signature_line}\n"), ""), NoteError::NoSignatures),
        (read_vector("checkpoint.txt").trim_end().to_owned(), NoteError::MissingFinalNewline),
        (vector_with("— ", "- "), NoteError::MissingEmDash { line: 1 }),
        (vector_with("— ", "—"), NoteError::MissingEmDash { line: 1 }),
        (vector_with("— log/k1 ", "— log/k1\u{a0}"), NoteError::InvalidKeyId { line: 1 }),
        (vector_with("— log/k1 ", "—  "), NoteError::InvalidKeyId { line: 1 }),
        (vector_with("— log/k1 ", "— log+k1 "), NoteError::InvalidKeyId { line: 1 }),
        (vector_with("— log/k1 ", "— log/k1 AAAA "), NoteError::InvalidBase64 { line: 1 }),
        (vector_with(&base64, "not*base64"), NoteError::InvalidBase64 { line: 1 }),
        (vector_with(&base64, &base64.replace("=", "")), NoteError::InvalidBase64 { line: 1 }),
        (vector_with(&base64, "AAAA"), NoteError::WrongSignatureLength { line: 1, bytes: 3 }),
        (vector_with("\n", "\r\n"), NoteError::ControlCharacter),
        (vector_with("27", "2\u{0}7"), NoteError::ControlCharacter),
        (format!("{}plain line\n", read_vector("checkpoint.txt")), NoteError::MissingEmDash { line: 2 }),
    ];
    for (text, expected) in cases {
        assert_eq!(Note::parse(&text), Err(expected), "{text:?}");
    }
}

#[test]
fn note_parse_enforces_limits() {
    // Goal: notes over NOTE_BYTES_MAX bytes or SIGNATURES_MAX lines are
    // rejected before any line is decoded; exactly at the line limit parses.
    let text = read_vector("checkpoint.txt");
    let signature_line = text.lines().last().expect("line").to_owned() + "\n";
    let at_limit = format!("{text}{}", signature_line.repeat(SIGNATURES_MAX - 1));
    assert_eq!(Note::parse(&at_limit).map(|note| note.signatures.len()), Ok(SIGNATURES_MAX));
    let over_limit = format!("{at_limit}{signature_line}");
    assert_eq!(Note::parse(&over_limit), Err(NoteError::TooManySignatures { count: SIGNATURES_MAX + 1 }));
    let huge = "a".repeat(NOTE_BYTES_MAX + 1);
    assert_eq!(Note::parse(&huge), Err(NoteError::TooLarge { bytes: NOTE_BYTES_MAX + 1 }));
    assert_eq!(Note::from_bytes(huge.as_bytes()), Err(NoteError::TooLarge { bytes: NOTE_BYTES_MAX + 1 }));
}

#[test]
fn note_from_bytes_rejects_non_utf8() {
    // Goal: bytes that are not UTF-8 are a typed error, not a panic.
    for bytes in [&b"\xff\n\n"[..], b"sunledger/x\n1\n\xc3\n\n", b"\x80"] {
        assert_eq!(Note::from_bytes(bytes), Err(NoteError::NotUtf8));
    }
}

#[test]
fn note_truncations_never_verify() {
    // Goal: every strict prefix of checkpoint.txt (cut at any byte, even
    // inside the em dash) fails to parse or to verify, without panicking.
    let text = read_vector("checkpoint.txt").into_bytes();
    let keys = known(&[LOG_KEY_ID]);
    for length in 0..text.len() {
        let outcome = Note::from_bytes(&text[..length]).map(|note| verify(&note, LOG_KEY_ID, &keys));
        assert!(!matches!(outcome, Ok(Ok(_))), "prefix of {length} bytes verifies");
    }
}

#[test]
fn parse_checkpoint_rejects_garbage() {
    // Goal: each malformed checkpoint body gets its own error (table).
    let root = BASE64.encode([0u8; 32]);
    let cases: Vec<(String, CheckpointError)> = vec![
        (String::new(), CheckpointError::MissingFinalNewline),
        (format!("sunledger/x\n1\n{root}"), CheckpointError::MissingFinalNewline),
        ("sunledger/x\n1\n".to_owned(), CheckpointError::WrongLineCount { lines: 2 }),
        (format!("sunledger/x\n1\n{root}\nextension\n"), CheckpointError::WrongLineCount { lines: 4 }),
        (format!("other/x\n1\n{root}\n"), CheckpointError::InvalidOrigin),
        (format!("sunledger/\n1\n{root}\n"), CheckpointError::InvalidOrigin),
        (format!("sunledger/a b\n1\n{root}\n"), CheckpointError::InvalidOrigin),
        (format!("sunledger/x\n\n{root}\n"), CheckpointError::InvalidSize),
        (format!("sunledger/x\n01\n{root}\n"), CheckpointError::InvalidSize),
        (format!("sunledger/x\n-1\n{root}\n"), CheckpointError::InvalidSize),
        (format!("sunledger/x\n+1\n{root}\n"), CheckpointError::InvalidSize),
        (format!("sunledger/x\n 1\n{root}\n"), CheckpointError::InvalidSize),
        (format!("sunledger/x\n18446744073709551616\n{root}\n"), CheckpointError::InvalidSize),
        (format!("sunledger/x\n{}\n{root}\n", "9".repeat(10_000)), CheckpointError::InvalidSize),
        ("sunledger/x\n1\nnot base64!\n".to_owned(), CheckpointError::InvalidRootBase64),
        (format!("sunledger/x\n1\n{}\n", root.trim_end_matches('=')), CheckpointError::InvalidRootBase64),
        (format!("sunledger/x\n1\n{}\n", BASE64.encode([0u8; 31])), CheckpointError::WrongRootLength { bytes: 31 }),
        (format!("sunledger/x\n1\n{}\n", BASE64.encode([0u8; 33])), CheckpointError::WrongRootLength { bytes: 33 }),
    ];
    for (body, expected) in cases {
        assert_eq!(parse_checkpoint(&body), Err(expected), "{body:?}");
    }
}
