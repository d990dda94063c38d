#!/usr/bin/env python3
"""Independent auditor's verifier for sunledger exports.

This file shares no code with the Rust ledger.  It reads the normative contract
(SPEC.md, "sunledger v1") and nothing else, so that a bug in the ledger is not
silently reproduced here.  Dependencies: the Python 3.11 standard library and
the ``cryptography`` package (Ed25519).

What it checks, streaming one record at a time (memory grows with the key and
office registry, the fund accounts, the payouts/expenditures that a later
refund may name, and the Merkle frontier -- never with the whole ledger):

* record framing and the hash chain (SPEC section 5),
* the DSSE envelope (SPEC section 2) and the payload's shape (SPEC section 3),
* signatures against the key registry as it stood at that seq (SPEC 2, 3),
* signer office and role, dual control (SPEC section 3),
* conservation of money: no fund account ever goes negative (SPEC 1, 3, 4),
* the RFC 6962/9162 Merkle root (SPEC section 6),
* optionally a C2SP signed-note checkpoint (SPEC section 6),
* optionally known-answer files: merkle.json (roots, inclusion and
  consistency proofs per RFC 9162 sections 2.1.3.2 and 2.1.4.2) and
  entries.json (PAE digest, recorded_at and entry hash per seq).

Exit status: 0 valid, 1 invalid (the report names ``first bad seq: N`` when a
record is to blame), 2 usage error or unreadable file.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as _dt
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - reported as a usage/environment error
    Ed25519PublicKey = None  # type: ignore[assignment]
    InvalidSignature = Exception  # type: ignore[assignment,misc]

# --------------------------------------------------------------------------
# Constants (each names the section of SPEC.md or the RFC it comes from)
# --------------------------------------------------------------------------

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

#: SPEC 2: the only payloadType a sunledger envelope may carry.
PAYLOAD_TYPE = "application/vnd.sunledger.event.v1+json"
#: SPEC 2 / DSSE: pre-authentication encoding tag.
PAE_TAG = b"DSSEv1"
#: SPEC 2: 1..4 signatures per envelope.
MIN_SIGS = 1
MAX_SIGS = 4
#: RFC 8032: an Ed25519 signature is R(32) || S(32); a public key is 32 bytes.
ED25519_SIG_LEN = 64
ED25519_KEY_LEN = 32
#: SPEC 3: payload at most 64 KiB; strings at most 500 characters.
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_STRING_CHARS = 500
#: Guard against absurd lines (a record is an envelope plus ~300 bytes).
MAX_LINE_BYTES = 1024 * 1024
#: SPEC 1: amounts are integers of fen, 1 <= n <= 2^53 - 1.
MIN_AMOUNT_FEN = 1
MAX_AMOUNT_FEN = 2**53 - 1
#: SPEC 3: default dual-control threshold (500,000 yuan).
DEFAULT_DUAL_CONTROL_FEN = 50_000_000

#: SPEC 5: entry hash domain separation.
LEAF_PREFIX = b"\x00"          # RFC 6962 section 2.1 leaf prefix
NODE_PREFIX = b"\x01"          # RFC 6962 section 2.1 interior-node prefix
ENTRY_TAG = b"SLE1"
HASH_LEN = 32
ZERO_HASH = bytes(HASH_LEN)    # prev of seq 0
EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()  # RFC 6962: MTH({}) = SHA-256()

#: SPEC 6 / C2SP signed-note.
NOTE_ORIGIN_PREFIX = "sunledger/"
NOTE_SIG_PREFIX = "\u2014 "    # em dash U+2014, then a space
NOTE_ALG_ED25519 = b"\x01"     # C2SP signed-note signature type for Ed25519
NOTE_KEY_HASH_LEN = 4
MAX_NOTE_SIGNATURES = 100

#: SPEC 3: offices, roles and kinds.
ROOT_OFFICE = "root"
ROLES = frozenset({"admin", "finance", "registrar", "auditor"})
RECORD_FIELDS = frozenset({"seq", "prev", "recorded_at", "envelope", "hash"})
ENVELOPE_FIELDS = frozenset({"payload", "payloadType", "signatures"})
SIGNATURE_FIELDS = frozenset({"keyid", "sig"})
PAYLOAD_REQUIRED = frozenset({"v", "ledger", "id", "kind", "office", "at", "body"})
PAYLOAD_OPTIONAL = frozenset({"memo"})

#: SPEC 3 kinds table: (required body fields, optional body fields).
BODY_FIELDS: dict[str, tuple[frozenset, frozenset]] = {
    "genesis": (frozenset({"name", "root_keys", "log_key", "currency"}), frozenset()),
    "office_register": (
        frozenset({"office_id", "name", "level", "parent", "region_code", "keys"}),
        frozenset({"contact"}),
    ),
    "key_add": (frozenset({"office_id", "key_id", "public_key", "roles"}), frozenset()),
    "key_revoke": (frozenset({"office_id", "key_id", "reason"}), frozenset()),
    "program_define": (
        frozenset({"program_id", "name", "earmarked", "payee", "period"}),
        frozenset({"standard_fen", "cap_fen_per_year"}),
    ),
    "appropriate": (frozenset({"program", "amount_fen", "budget_ref", "fiscal_year"}), frozenset()),
    "transfer": (frozenset({"to_office", "program", "amount_fen", "doc_ref"}), frozenset()),
    "reallocate": (frozenset({"from_program", "to_program", "amount_fen", "doc_ref"}), frozenset()),
    "household_register": (
        frozenset({"household_id", "village", "head_name_masked", "members", "card"}),
        frozenset(),
    ),
    "household_update": (
        frozenset({"household_id"}),
        frozenset({"status", "reason", "deceased", "card", "add_members", "remove_members"}),
    ),
    "payout": (
        frozenset({"household_id", "program", "amount_fen", "period", "card_digest"}),
        frozenset({"person_digest"}),
    ),
    "project_register": (
        frozenset({"project_id", "program", "name", "budget_fen"}),
        frozenset({"location"}),
    ),
    "expenditure": (
        frozenset({"program", "project_id", "payee_id", "payee_name", "category",
                   "amount_fen", "doc_ref"}),
        frozenset(),
    ),
    "refund": (frozenset({"ref_event", "amount_fen", "reason"}), frozenset()),
    "notice_publish": (
        frozenset({"notice_id", "scope", "program", "from", "to", "document_digest"}),
        frozenset({"period", "households", "projects"}),
    ),
    "flag_review": (frozenset({"flag_id", "status", "note"}), frozenset()),
}
#: SPEC 3: kinds that move money (subject to "root acting on money" and dual control).
MONEY_KINDS = frozenset({"appropriate", "transfer", "reallocate", "payout", "expenditure", "refund"})
#: SPEC 3 "signer role" column, for the kinds whose signers need one fixed role set.
KIND_ROLES: dict[str, frozenset] = {
    "appropriate": frozenset({"finance"}),
    "transfer": frozenset({"finance"}),
    "reallocate": frozenset({"finance"}),
    "payout": frozenset({"finance"}),
    "project_register": frozenset({"finance"}),
    "expenditure": frozenset({"finance"}),
    "refund": frozenset({"finance"}),
    "household_register": frozenset({"registrar"}),
    "household_update": frozenset({"registrar"}),
    "notice_publish": frozenset({"finance", "registrar"}),
    "flag_review": frozenset({"auditor"}),
}

ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
KEY_ID_RE = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
RECORDED_AT_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z"
)
DECIMAL_RE = re.compile(r"0|[1-9][0-9]*")

# RFC 8032 / ed25519-dalek verify_strict: field prime, group order, and the
# y-coordinates of the 8 small-order points (identity y=1, order 2 y=-1,
# order 4 y=0, order 8 y=+-Y8; Y8 from libsodium's small-order blocklist).
ED25519_P = 2**255 - 19
ED25519_L = 2**252 + 27742317777372353535851937790883648493
_Y8 = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)
SMALL_ORDER_YS = frozenset({0, 1, ED25519_P - 1, _Y8, ED25519_P - _Y8})


# --------------------------------------------------------------------------
# Errors and small helpers
# --------------------------------------------------------------------------


class Invalid(Exception):
    """A verification failure; ``code`` follows the SPEC section 4 vocabulary."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def sha256(data: bytes) -> bytes:
    """SHA-256, the only hash of SPEC sections 5 and 6."""
    return hashlib.sha256(data).digest()


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    """json object hook: SPEC 3 forbids duplicate keys."""
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _reject_float(text: str) -> Any:
    """json float hook: SPEC 3 allows integers only."""
    raise ValueError(f"non-integer number {text}")


def _reject_constant(text: str) -> Any:
    """json constant hook: NaN/Infinity are not JSON."""
    raise ValueError(f"invalid constant {text}")


def strict_json(data: bytes, what: str, code: str) -> Any:
    """Parse UTF-8 JSON without duplicate keys, floats or NaN (SPEC 3).

    Raises Invalid(code) on any problem; never anything else.
    """
    try:
        text = data.decode("utf-8", errors="strict")
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Invalid(code, f"{what} is not valid JSON: {exc}") from None


def is_int(value: Any) -> bool:
    """True for JSON integers (Python bool is an int subclass and is excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def b64decode_strict(text: Any, what: str, code: str) -> bytes:
    """Standard base64 with padding, canonical form only (SPEC 2)."""
    if not isinstance(text, str):
        raise Invalid(code, f"{what} is not a string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise Invalid(code, f"{what} is not standard padded base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise Invalid(code, f"{what} is not canonical standard padded base64")
    return raw


def hex32(text: Any, what: str, code: str = "bad_record") -> bytes:
    """64 lowercase hex digits -> 32 bytes (SPEC 5)."""
    if not isinstance(text, str) or not HEX64_RE.fullmatch(text):
        raise Invalid(code, f"{what} is not 64 lowercase hex digits")
    return bytes.fromhex(text)


def parse_recorded_at(text: Any) -> int:
    """SPEC 5: millisecond RFC 3339 UTC (``2018-11-01T00:00:01.000Z``) -> ms since epoch."""
    if not isinstance(text, str):
        raise Invalid("bad_record", "recorded_at is not a string")
    m = RECORDED_AT_RE.fullmatch(text)
    if not m:
        raise Invalid("bad_record", f"recorded_at {text!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ")
    year, month, day, hour, minute, second, milli = (int(g) for g in m.groups())
    try:
        moment = _dt.datetime(year, month, day, hour, minute, second, tzinfo=_dt.timezone.utc)
    except ValueError:
        raise Invalid("bad_record", f"recorded_at {text!r} is not a real instant") from None
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    return (moment - epoch) // _dt.timedelta(seconds=1) * 1000 + milli


def is_date(text: Any) -> bool:
    """SPEC 3: a business date ``YYYY-MM-DD`` that exists."""
    if not isinstance(text, str):
        return False
    m = DATE_RE.fullmatch(text)
    if not m:
        return False
    try:
        _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------
# DSSE and the entry hash (SPEC sections 2 and 5)
# --------------------------------------------------------------------------


def pae(payload_type: bytes, payload: bytes) -> bytes:
    """DSSE PAE: ``"DSSEv1" SP len(type) SP type SP len(payload) SP payload`` (SPEC 2)."""
    return b" ".join(
        [PAE_TAG, str(len(payload_type)).encode(), payload_type, str(len(payload)).encode(), payload]
    )


def entry_hash(seq: int, prev: bytes, recorded_at_ms: int, pae_digest: bytes,
               signatures: list[tuple[bytes, bytes]]) -> bytes:
    """SPEC 5: entry_hash = SHA-256(0x00 || "SLE1" || u64be(seq) || prev || i64be(ms)
    || SHA-256(PAE) || u32be(n) || per signature u32be(len keyid) keyid u32be(len sig) sig)."""
    parts = [
        LEAF_PREFIX,
        ENTRY_TAG,
        seq.to_bytes(8, "big"),
        prev,
        recorded_at_ms.to_bytes(8, "big", signed=True),
        pae_digest,
        len(signatures).to_bytes(4, "big"),
    ]
    for keyid, sig in signatures:
        parts += [len(keyid).to_bytes(4, "big"), keyid, len(sig).to_bytes(4, "big"), sig]
    return sha256(b"".join(parts))


@dataclass
class Envelope:
    """A structurally valid DSSE envelope (SPEC 2)."""

    payload: bytes
    payload_type: bytes
    signatures: list[tuple[str, bytes]]  # (keyid, raw 64-byte signature), envelope order

    @property
    def pae(self) -> bytes:
        """The bytes every signature covers (SPEC 2)."""
        return pae(self.payload_type, self.payload)


def parse_envelope(obj: Any) -> Envelope:
    """SPEC 2: exact DSSE fields, exact payloadType, canonical base64, 1-4 distinct
    keyids, 64-byte signatures, payload at most 64 KiB (bad_envelope otherwise)."""
    if not isinstance(obj, dict) or set(obj) != ENVELOPE_FIELDS:
        raise Invalid("bad_envelope", "envelope must have exactly payload, payloadType, signatures")
    if obj["payloadType"] != PAYLOAD_TYPE:
        raise Invalid("bad_envelope", f"payloadType is not {PAYLOAD_TYPE}")
    payload = b64decode_strict(obj["payload"], "payload", "bad_envelope")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Invalid("bad_envelope", f"payload is {len(payload)} bytes, over {MAX_PAYLOAD_BYTES}")
    sigs = obj["signatures"]
    if not isinstance(sigs, list) or not MIN_SIGS <= len(sigs) <= MAX_SIGS:
        raise Invalid("bad_envelope", f"need {MIN_SIGS}..{MAX_SIGS} signatures")
    parsed: list[tuple[str, bytes]] = []
    for i, s in enumerate(sigs):
        if not isinstance(s, dict) or set(s) != SIGNATURE_FIELDS:
            raise Invalid("bad_envelope", f"signature {i} must have exactly keyid and sig")
        keyid = s["keyid"]
        if not isinstance(keyid, str) or not keyid:
            raise Invalid("bad_envelope", f"signature {i} keyid is not a non-empty string")
        if any("\ud800" <= c <= "\udfff" for c in keyid):
            raise Invalid("bad_envelope", f"signature {i} keyid is not valid Unicode")
        raw = b64decode_strict(s["sig"], f"signature {i} sig", "bad_envelope")
        if len(raw) != ED25519_SIG_LEN:
            raise Invalid("bad_envelope", f"signature {i} is {len(raw)} bytes, not {ED25519_SIG_LEN}")
        parsed.append((keyid, raw))
    if len({k for k, _ in parsed}) != len(parsed):
        raise Invalid("bad_envelope", "signature keyids are not distinct")
    return Envelope(payload, PAYLOAD_TYPE.encode(), parsed)


# --------------------------------------------------------------------------
# Ed25519, strict (SPEC 2: RFC 8032 strict, as ed25519-dalek verify_strict)
# --------------------------------------------------------------------------


def is_small_order_encoding(enc: bytes) -> bool:
    """True if the 32-byte point encoding decodes to one of the 8 small-order
    points (any sign bit, canonical or not): dalek's ``is_small_order``."""
    y = int.from_bytes(enc, "little") & ((1 << 255) - 1)
    return (y % ED25519_P) in SMALL_ORDER_YS


def is_on_curve_encoding(enc: bytes) -> bool:
    """RFC 8032 section 5.1.3 decoding succeeds (y < p, x recoverable)."""
    y = int.from_bytes(enc, "little") & ((1 << 255) - 1)
    sign = enc[31] >> 7
    p = ED25519_P
    if y >= p:
        return False
    d = (-121665 * pow(121666, p - 2, p)) % p
    u = (y * y - 1) % p
    v = (d * y * y + 1) % p
    x2 = u * pow(v, p - 2, p) % p
    if x2 == 0:
        return sign == 0
    x = pow(x2, (p + 3) // 8, p)
    if (x * x - x2) % p != 0:
        x = x * pow(2, (p - 1) // 4, p) % p
    return (x * x - x2) % p == 0


def check_public_key(raw: bytes, what: str) -> Ed25519PublicKey:
    """SPEC 2: a registrable key is 32 bytes, a curve point, not of small order."""
    if len(raw) != ED25519_KEY_LEN:
        raise Invalid("schema", f"{what} is {len(raw)} bytes, not {ED25519_KEY_LEN}")
    if not is_on_curve_encoding(raw):
        raise Invalid("schema", f"{what} is not a valid Ed25519 point")
    if is_small_order_encoding(raw):
        raise Invalid("schema", f"{what} is a small-order (weak) Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_ed25519_strict(key: Ed25519PublicKey, key_bytes: bytes, sig: bytes, msg: bytes) -> bool:
    """SPEC 2: RFC 8032 verification with canonical S and no small-order A or R.

    OpenSSL (behind ``cryptography``) already rejects S >= L and non-canonical
    R; the small-order checks are what verify_strict adds on top.
    """
    if len(sig) != ED25519_SIG_LEN:
        return False
    if int.from_bytes(sig[32:], "little") >= ED25519_L:
        return False
    if is_small_order_encoding(sig[:32]) or is_small_order_encoding(key_bytes):
        return False
    try:
        key.verify(sig, msg)
    except InvalidSignature:
        return False
    return True


# --------------------------------------------------------------------------
# Merkle tree (SPEC 6, RFC 6962 section 2.1 / RFC 9162 section 2.1)
# --------------------------------------------------------------------------


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 section 2.1: interior node = SHA-256(0x01 || left || right)."""
    return sha256(NODE_PREFIX + left + right)


class MerkleFrontier:
    """Compact range [0, size): the roots of the perfect subtrees that make up
    the tree, largest first.  Appending is amortised O(1), memory O(log n)."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (height, subtree root)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash (entry hashes already carry the 0x00 leaf prefix)."""
        height, node = 0, leaf_hash
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            node = node_hash(left, node)
            height += 1
        self._stack.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        """RFC 6962 MTH of the leaves so far: fold the frontier right to left."""
        if not self._stack:
            return EMPTY_TREE_ROOT
        acc = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            acc = node_hash(left, acc)
        return acc


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 MTH over leaf hashes, by the recursive definition."""
    n = len(leaves)
    if n == 0:
        return EMPTY_TREE_ROOT
    if n == 1:
        return leaves[0]
    k = _largest_power_of_two_below(n)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def _largest_power_of_two_below(n: int) -> int:
    """RFC 9162 section 2.1.1: k is the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 PATH(m, D[n])."""
    n = len(leaves)
    if n <= 1:
        return []
    k = _largest_power_of_two_below(n)
    if index < k:
        return inclusion_path(index, leaves[:k]) + [mth(leaves[k:])]
    return inclusion_path(index - k, leaves[k:]) + [mth(leaves[:k])]


def consistency_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""

    def subproof(m: int, d: list[bytes], complete: bool) -> list[bytes]:
        """RFC 9162 section 2.1.4.1 SUBPROOF(m, D[n], b)."""
        n = len(d)
        if m == n:
            return [] if complete else [mth(d)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return subproof(m, d[:k], complete) + [mth(d[k:])]
        return subproof(m - k, d[k:], False) + [mth(d[:k])]

    if m == 0 or m == len(leaves):
        return []
    return subproof(m, leaves, True)


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: list[bytes],
                     root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: verify an inclusion proof for leaf ``index`` in a
    tree of ``size`` leaves with root ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes,
                       proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: verify that the tree of size ``second`` extends
    the tree of size ``first``.  Edge cases as RFC 9162 / transparency-dev:
    equal sizes need an empty proof and equal roots; size 0 needs an empty proof."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_hash == second_hash
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # first is an exact power of 2
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


# --------------------------------------------------------------------------
# Checkpoint: C2SP signed note (SPEC 6)
# --------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A parsed C2SP tlog-checkpoint with its signed-note signature lines."""

    body: bytes                       # the signed text: body lines with final newline
    origin: str
    size: int
    root: bytes
    signatures: list[tuple[str, bytes, bytes]]  # (key name, key hash(4), signature)


def note_key_hash(key_id: str, public_key: bytes) -> bytes:
    """SPEC 6 / C2SP signed-note: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return sha256(key_id.encode() + b"\n" + NOTE_ALG_ED25519 + public_key)[:NOTE_KEY_HASH_LEN]


def parse_checkpoint(data: bytes) -> Checkpoint:
    """SPEC 6: body ``origin\\nsize\\nbase64 root\\n`` (C2SP extension lines are
    allowed and covered by the signature), a blank line, then one or more lines
    ``— <name> <base64(key_hash(4) || sig)>``.  Raises Invalid("checkpoint")."""
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise Invalid("checkpoint", "checkpoint is not UTF-8") from None
    if "\r" in text or not text.endswith("\n"):
        raise Invalid("checkpoint", "checkpoint must use LF line endings and end with a newline")
    sep = text.find("\n\n")
    if sep < 0:
        raise Invalid("checkpoint", "no blank line between body and signatures")
    body_text, sig_text = text[: sep + 1], text[sep + 2:]
    lines = body_text[:-1].split("\n")
    if len(lines) < 3 or any(line == "" for line in lines):
        raise Invalid("checkpoint", "body needs origin, tree size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not DECIMAL_RE.fullmatch(size_text) or int(size_text) >= 2**64:
        raise Invalid("checkpoint", f"tree size {size_text!r} is not a decimal u64")
    try:
        root = b64decode_strict(root_text, "root", "checkpoint")
    except Invalid:
        raise Invalid("checkpoint", "root line is not standard base64") from None
    if len(root) != HASH_LEN:
        raise Invalid("checkpoint", f"root is {len(root)} bytes, not {HASH_LEN}")
    sig_lines = sig_text[:-1].split("\n") if sig_text else []
    if not sig_lines:
        raise Invalid("checkpoint", "no signature lines")
    if len(sig_lines) > MAX_NOTE_SIGNATURES:
        raise Invalid("checkpoint", "too many signature lines")
    sigs = []
    for line in sig_lines:
        if not line.startswith(NOTE_SIG_PREFIX):
            raise Invalid("checkpoint", f"signature line {line[:40]!r} does not start with an em dash")
        parts = line[len(NOTE_SIG_PREFIX):].split(" ")
        if len(parts) != 2 or not parts[0]:
            raise Invalid("checkpoint", f"malformed signature line {line[:60]!r}")
        raw = b64decode_strict(parts[1], "signature", "checkpoint")
        if len(raw) < NOTE_KEY_HASH_LEN + 1:
            raise Invalid("checkpoint", "signature too short")
        sigs.append((parts[0], raw[:NOTE_KEY_HASH_LEN], raw[NOTE_KEY_HASH_LEN:]))
    return Checkpoint(body_text.encode(), origin, int(size_text), root, sigs)


def verify_checkpoint_signature(cp: Checkpoint, key_id: str, public_key: bytes) -> None:
    """SPEC 6: the log key must have signed the note body; signature lines of
    other keys (witnesses) are ignored.  Raises Invalid("checkpoint")."""
    want_hash = note_key_hash(key_id, public_key)
    key = Ed25519PublicKey.from_public_bytes(public_key)
    found = False
    for name, khash, sig in cp.signatures:
        if name != key_id or khash != want_hash:
            continue  # unknown key: ignore (C2SP signed-note)
        found = True
        if not verify_ed25519_strict(key, public_key, sig, cp.body):
            raise Invalid("checkpoint", f"signature by {key_id} does not verify")
    if not found:
        raise Invalid("checkpoint", f"no signature by the log key {key_id}")


# --------------------------------------------------------------------------
# Ledger state: key registry, offices, programs, funds (SPEC 1, 3, 4)
# --------------------------------------------------------------------------


@dataclass
class KeyInfo:
    """One registered signing key (SPEC 3: office_register, key_add, genesis)."""

    key_id: str
    office: str
    roles: frozenset
    public_key: bytes
    verifier: Ed25519PublicKey
    revoked: bool = False


@dataclass
class Spendable:
    """A payout or expenditure a refund may reference (SPEC 3 refund row)."""

    office: str
    program: str
    amount: int
    refunded: int = 0


@dataclass
class LedgerState:
    """Everything replay needs; grows with registries and accounts only."""

    dual_control_fen: int
    ledger_id: Optional[str] = None
    log_key: Optional[tuple[str, bytes]] = None
    keys: dict[str, KeyInfo] = field(default_factory=dict)
    offices: dict[str, Optional[str]] = field(default_factory=dict)  # office -> parent
    programs: set[str] = field(default_factory=set)
    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    spendables: dict[str, Spendable] = field(default_factory=dict)
    appropriated: int = 0
    paid_out: int = 0
    spent: int = 0
    refunded: int = 0

    # -- funds (SPEC 1 conservation) ------------------------------------

    def credit(self, office: str, program: str, amount: int) -> None:
        """Add ``amount`` to fund account (office, program)."""
        key = (office, program)
        self.balances[key] = self.balances.get(key, 0) + amount

    def debit(self, office: str, program: str, amount: int) -> None:
        """SPEC 4 insufficient_funds: a fund account may never go negative."""
        have = self.balances.get((office, program), 0)
        if have < amount:
            raise Invalid(
                "insufficient_funds",
                f"{office}/{program} holds {have} fen, cannot debit {amount}",
            )
        self.balances[(office, program)] = have - amount


# --------------------------------------------------------------------------
# Payload checks (SPEC 3)
# --------------------------------------------------------------------------


def _walk_strings(value: Any, path: str) -> None:
    """SPEC 3: every string at most 500 characters and valid Unicode."""
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise Invalid("schema", f"{path} is longer than {MAX_STRING_CHARS} characters")
        if any("\ud800" <= c <= "\udfff" for c in value):
            raise Invalid("schema", f"{path} contains a lone surrogate")
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk_strings(k, f"{path} key")
            _walk_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk_strings(v, f"{path}[{i}]")


def _str_field(body: dict, name: str, pattern: Optional[re.Pattern] = None) -> str:
    """A required string field, optionally matching an id pattern."""
    value = body.get(name)
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        raise Invalid("schema", f"body.{name} is missing or malformed")
    return value


def _amount(body: dict, name: str = "amount_fen") -> int:
    """SPEC 1 / 4 invalid_amount: integer fen, 1 <= n <= 2^53 - 1."""
    value = body.get(name)
    if not is_int(value):
        raise Invalid("schema", f"body.{name} is not an integer")
    if not MIN_AMOUNT_FEN <= value <= MAX_AMOUNT_FEN:
        raise Invalid("invalid_amount", f"body.{name}={value} outside 1..2^53-1")
    return value


def check_payload_shape(p: Any) -> None:
    """SPEC 3: top-level fields, v=1, id pattern, known kind, real date, body
    fields of that kind (required present, nothing unknown), string lengths,
    amount bounds of ``*_fen`` fields."""
    if not isinstance(p, dict):
        raise Invalid("schema", "payload is not a JSON object")
    keys = set(p)
    if not PAYLOAD_REQUIRED <= keys:
        raise Invalid("schema", f"payload lacks {sorted(PAYLOAD_REQUIRED - keys)}")
    if not keys <= PAYLOAD_REQUIRED | PAYLOAD_OPTIONAL:
        raise Invalid("schema", f"payload has unknown fields {sorted(keys - PAYLOAD_REQUIRED - PAYLOAD_OPTIONAL)}")
    if not is_int(p["v"]) or p["v"] != 1:
        raise Invalid("schema", "v is not 1")
    kind = p["kind"]
    if not isinstance(kind, str) or kind not in BODY_FIELDS:
        raise Invalid("schema", f"unknown kind {kind!r}")
    if not isinstance(p["id"], str) or (kind != "genesis" and not ID_RE.fullmatch(p["id"])):
        raise Invalid("schema", "id is not [A-Za-z0-9._:-]{1,64}")
    if not isinstance(p["ledger"], str) or not p["ledger"]:
        raise Invalid("schema", "ledger is not a non-empty string")
    if not isinstance(p["office"], str) or not (p["office"] == ROOT_OFFICE or ID_RE.fullmatch(p["office"])):
        raise Invalid("schema", "office is not an office id")
    if not is_date(p["at"]):
        raise Invalid("schema", f"at {p['at']!r} is not an existing YYYY-MM-DD date")
    if "memo" in p and not isinstance(p["memo"], str):
        raise Invalid("schema", "memo is not a string")
    body = p["body"]
    if not isinstance(body, dict):
        raise Invalid("schema", "body is not an object")
    required, optional = BODY_FIELDS[kind]
    bkeys = set(body)
    if not required <= bkeys:
        raise Invalid("schema", f"{kind} body lacks {sorted(required - bkeys)}")
    if not bkeys <= required | optional:
        raise Invalid("schema", f"{kind} body has unknown fields {sorted(bkeys - required - optional)}")
    if kind == "household_update" and not (bkeys & optional):
        raise Invalid("schema", "household_update changes nothing")
    _walk_strings(p, "payload")
    for name, value in body.items():
        if name.endswith("_fen") and value is not None:
            _amount(body, name)


def parse_new_keys(entries: Any, what: str, with_roles: bool) -> list[tuple[str, bytes, frozenset]]:
    """Parse ``[{key_id, public_key[, roles]}]`` (SPEC 3 genesis, office_register)."""
    if not isinstance(entries, list) or not entries:
        raise Invalid("schema", f"{what} must be a non-empty list")
    out = []
    fields = {"key_id", "public_key", "roles"} if with_roles else {"key_id", "public_key"}
    for i, k in enumerate(entries):
        if not isinstance(k, dict) or set(k) != fields:
            raise Invalid("schema", f"{what}[{i}] must have exactly {sorted(fields)}")
        out.append(parse_one_key(k, f"{what}[{i}]", with_roles))
    return out


def parse_one_key(k: dict, what: str, with_roles: bool) -> tuple[str, bytes, frozenset]:
    """One key: id pattern, valid non-weak Ed25519 public key, known roles."""
    key_id = k.get("key_id")
    if not isinstance(key_id, str) or not KEY_ID_RE.fullmatch(key_id):
        raise Invalid("schema", f"{what}.key_id is malformed")
    raw = b64decode_strict(k.get("public_key"), f"{what}.public_key", "schema")
    check_public_key(raw, f"{what}.public_key")
    roles: frozenset = frozenset()
    if with_roles:
        r = k.get("roles")
        if not isinstance(r, list) or not all(isinstance(x, str) and x in ROLES for x in r):
            raise Invalid("schema", f"{what}.roles must be a list of {sorted(ROLES)}")
        if len(set(r)) != len(r):
            raise Invalid("schema", f"{what}.roles has duplicates")
        roles = frozenset(r)
    return key_id, raw, roles


# --------------------------------------------------------------------------
# The record-by-record verifier
# --------------------------------------------------------------------------


@dataclass
class RecordInfo:
    """What a hook learns about each accepted record."""

    seq: int
    entry_hash: bytes
    pae_digest: bytes
    recorded_at_ms: int
    root: bytes  # Merkle root of the tree of size seq + 1


class ChainVerifier:
    """Streams records; ``feed`` raises Invalid for the first bad record."""

    def __init__(self, dual_control_fen: int = DEFAULT_DUAL_CONTROL_FEN,
                 on_record: Optional[Callable[[RecordInfo], None]] = None):
        self.next_seq = 0
        self.prev = ZERO_HASH
        self.last_ms: Optional[int] = None
        self.state = LedgerState(dual_control_fen)
        self.tree = MerkleFrontier()
        self.on_record = on_record

    # -- SPEC 5: framing and chain -----------------------------------------

    def feed(self, line: bytes) -> None:
        """Check one JSON Lines record in the order: framing, seq, prev,
        recorded_at, envelope, entry hash, payload, signatures, semantics."""
        seq = self.next_seq
        if not line.strip():
            raise Invalid("bad_record", "blank line")
        rec = strict_json(line, "record", "bad_record")
        if not isinstance(rec, dict) or set(rec) != RECORD_FIELDS:
            raise Invalid("bad_record", f"record must have exactly {sorted(RECORD_FIELDS)}")
        if not is_int(rec["seq"]) or rec["seq"] != seq:
            raise Invalid("bad_record", f"seq is {rec['seq']!r}, expected {seq} (line position)")
        prev = hex32(rec["prev"], "prev")
        if prev != self.prev:
            raise Invalid("bad_record", f"prev {rec['prev']} is not the hash of seq {seq - 1}"
                          if seq else "prev of seq 0 must be 32 zero bytes")
        ms = parse_recorded_at(rec["recorded_at"])
        if self.last_ms is not None and ms < self.last_ms:
            raise Invalid("bad_record", f"recorded_at {rec['recorded_at']} is before seq {seq - 1}'s")
        claimed = hex32(rec["hash"], "hash")
        env = parse_envelope(rec["envelope"])
        pae_bytes = env.pae
        pae_digest = sha256(pae_bytes)
        computed = entry_hash(seq, prev, ms, pae_digest,
                              [(k.encode("utf-8"), s) for k, s in env.signatures])
        if computed != claimed:
            raise Invalid("bad_hash", f"entry hash recomputes to {computed.hex()}, record says {rec['hash']}")
        self.check_event(seq, env, pae_bytes)
        # accepted: advance the chain and the tree
        self.prev = claimed
        self.last_ms = ms
        self.tree.append(claimed)
        self.next_seq += 1
        if self.on_record is not None:
            self.on_record(RecordInfo(seq, claimed, pae_digest, ms, self.tree.root()))

    # -- SPEC 3/4: the event ---------------------------------------------

    def check_event(self, seq: int, env: Envelope, pae_bytes: bytes) -> None:
        """SPEC 4 order: schema, amount bounds, ledger id, keys known, not
        revoked, signatures, role/office, dual control, references, funds."""
        st = self.state
        p = strict_json(env.payload, "payload", "schema")
        check_payload_shape(p)
        kind, office, body = p["kind"], p["office"], p["body"]
        if seq == 0:
            if kind != "genesis":
                raise Invalid("schema", "seq 0 is not a genesis event")
            self.apply_genesis(p, env, pae_bytes)
            return
        if p["ledger"] != st.ledger_id:
            raise Invalid("wrong_ledger", f"ledger {p['ledger']!r} is not {st.ledger_id!r}")
        signers = self.check_signatures(env, pae_bytes)
        self.check_authority(kind, office, body, signers)
        self.apply(kind, office, body, p["id"], signers)

    def check_signatures(self, env: Envelope, pae_bytes: bytes) -> list[KeyInfo]:
        """SPEC 2/4: every keyid known (unknown_key), not revoked (revoked_key),
        and every signature valid under strict Ed25519 (bad_signature)."""
        keys = []
        for keyid, _ in env.signatures:
            info = self.state.keys.get(keyid)
            if info is None:
                raise Invalid("unknown_key", f"key {keyid} is not registered")
            keys.append(info)
        for info in keys:
            if info.revoked:
                raise Invalid("revoked_key", f"key {info.key_id} was revoked")
        for info, (keyid, sig) in zip(keys, env.signatures):
            if not verify_ed25519_strict(info.verifier, info.public_key, sig, pae_bytes):
                raise Invalid("bad_signature", f"signature by {keyid} does not verify")
        return keys

    def apply_genesis(self, p: dict, env: Envelope, pae_bytes: bytes) -> None:
        """SPEC 3 genesis: seq 0, office root, signed by a root key listed in itself;
        defines the ledger id, root keys and the log key."""
        st = self.state
        body = p["body"]
        if p["office"] != ROOT_OFFICE:
            raise Invalid("forbidden", "genesis must be by office root")
        if body["currency"] != "CNY":
            raise Invalid("schema", "genesis currency is not CNY")
        if not isinstance(body["name"], str):
            raise Invalid("schema", "genesis name is not a string")
        roots = parse_new_keys(body["root_keys"], "body.root_keys", with_roles=False)
        log = body["log_key"]
        if not isinstance(log, dict) or set(log) != {"key_id", "public_key"}:
            raise Invalid("schema", "body.log_key must have exactly key_id and public_key")
        log_id, log_pub, _ = parse_one_key(log, "body.log_key", with_roles=False)
        if len({k for k, _, _ in roots}) != len(roots):
            raise Invalid("duplicate_id", "root key ids repeat")
        by_id = {k: raw for k, raw, _ in roots}
        for keyid, sig in env.signatures:
            raw = by_id.get(keyid)
            if raw is None:
                raise Invalid("unknown_key", f"genesis signer {keyid} is not one of its root keys")
            if not verify_ed25519_strict(Ed25519PublicKey.from_public_bytes(raw), raw, sig, pae_bytes):
                raise Invalid("bad_signature", f"signature by {keyid} does not verify")
        st.ledger_id = p["ledger"]
        st.log_key = (log_id, log_pub)
        st.offices[ROOT_OFFICE] = None
        for key_id, raw, _ in roots:
            st.keys[key_id] = KeyInfo(key_id, ROOT_OFFICE, frozenset(), raw,
                                      Ed25519PublicKey.from_public_bytes(raw))

    def check_authority(self, kind: str, office: str, body: dict, signers: list[KeyInfo]) -> None:
        """SPEC 3 "signer role" column and SPEC 4 forbidden / dual_control_required:
        every signing key is a key of the acting office and holds the role the
        kind needs; root acts only on registries; big movements need two
        distinct finance keys."""
        st = self.state
        for k in signers:
            if k.office != office:
                raise Invalid("forbidden", f"key {k.key_id} belongs to office {k.office}, not {office}")
        is_root = office == ROOT_OFFICE
        if kind == "genesis":
            raise Invalid("forbidden", "a second genesis")
        if kind == "program_define":
            if not is_root:
                raise Invalid("forbidden", "program_define needs root")
            return
        if kind == "office_register":
            parent = body.get("parent")
            if is_root:
                return
            if parent is None or parent != office:
                raise Invalid("forbidden", "a child is registered only by its parent or root")
            self._require_role(signers, frozenset({"admin"}), kind)
            return
        if kind in ("key_add", "key_revoke"):
            target = body.get("office_id")
            if is_root:
                return
            if not isinstance(target, str) or target not in st.offices:
                raise Invalid("unknown_reference", f"office {target!r} does not exist")
            if office != target and office != st.offices.get(target):
                raise Invalid("forbidden", f"{office} is neither {target} nor its parent")
            self._require_role(signers, frozenset({"admin"}), kind)
            return
        if is_root:
            raise Invalid("forbidden", f"root may not act as {kind}")
        self._require_role(signers, KIND_ROLES[kind], kind)
        if kind in MONEY_KINDS and body["amount_fen"] >= st.dual_control_fen:
            finance = {k.key_id for k in signers if "finance" in k.roles}
            if len(finance) < 2:
                raise Invalid("dual_control_required",
                              f"{body['amount_fen']} fen needs two distinct finance keys")

    @staticmethod
    def _require_role(signers: list[KeyInfo], roles: frozenset, kind: str) -> None:
        """Every signing key must hold one of ``roles`` (SPEC 3)."""
        for k in signers:
            if not k.roles & roles:
                raise Invalid("forbidden", f"key {k.key_id} lacks role {'/'.join(sorted(roles))} for {kind}")

    def apply(self, kind: str, office: str, body: dict, event_id: str,
              signers: list[KeyInfo]) -> None:
        """Check references and funds, then change the state (SPEC 1, 3, 4)."""
        st = self.state
        if kind == "office_register":
            office_id = _str_field(body, "office_id", ID_RE)
            if office_id in st.offices:
                raise Invalid("duplicate_id", f"office {office_id} already exists")
            parent = body["parent"]
            if parent is not None and (not isinstance(parent, str) or parent not in st.offices
                                       or parent == ROOT_OFFICE):
                raise Invalid("unknown_reference", f"parent office {parent!r} does not exist")
            new_keys = parse_new_keys(body["keys"], "body.keys", with_roles=True)
            self._check_new_key_ids([k for k, _, _ in new_keys])
            st.offices[office_id] = parent
            for key_id, raw, roles in new_keys:
                st.keys[key_id] = KeyInfo(key_id, office_id, roles, raw,
                                          Ed25519PublicKey.from_public_bytes(raw))
        elif kind == "key_add":
            target = _str_field(body, "office_id")
            if target not in st.offices:
                raise Invalid("unknown_reference", f"office {target} does not exist")
            key_id, raw, roles = parse_one_key(body, "body", with_roles=True)
            self._check_new_key_ids([key_id])
            st.keys[key_id] = KeyInfo(key_id, target, roles, raw, Ed25519PublicKey.from_public_bytes(raw))
        elif kind == "key_revoke":
            target = _str_field(body, "office_id")
            key_id = _str_field(body, "key_id")
            info = st.keys.get(key_id)
            if target not in st.offices or info is None or info.office != target:
                raise Invalid("unknown_reference", f"key {key_id} is not a key of office {target}")
            info.revoked = True
        elif kind == "program_define":
            program = _str_field(body, "program_id", ID_RE)
            if program in st.programs:
                raise Invalid("duplicate_id", f"program {program} already exists")
            st.programs.add(program)
        elif kind == "appropriate":
            program = self._program(body, "program")
            amount = _amount(body)
            st.credit(office, program, amount)
            st.appropriated += amount
        elif kind == "transfer":
            program = self._program(body, "program")
            to_office = _str_field(body, "to_office")
            if to_office not in st.offices or to_office == ROOT_OFFICE:
                raise Invalid("unknown_reference", f"office {to_office} does not exist")
            if to_office == office:
                raise Invalid("forbidden", "transfer to oneself")
            amount = _amount(body)
            st.debit(office, program, amount)
            st.credit(to_office, program, amount)
        elif kind == "reallocate":
            src = self._program(body, "from_program")
            dst = self._program(body, "to_program")
            if src == dst:
                raise Invalid("forbidden", "reallocation to the same program")
            amount = _amount(body)
            st.debit(office, src, amount)
            st.credit(office, dst, amount)
        elif kind in ("payout", "expenditure"):
            program = self._program(body, "program")
            amount = _amount(body)
            if event_id in st.spendables:
                raise Invalid("duplicate_id", f"event id {event_id} already names a payout/expenditure")
            st.debit(office, program, amount)
            st.spendables[event_id] = Spendable(office, program, amount)
            if kind == "payout":
                st.paid_out += amount
            else:
                st.spent += amount
        elif kind == "refund":
            ref = _str_field(body, "ref_event")
            amount = _amount(body)
            orig = st.spendables.get(ref)
            if orig is None or orig.office != office:
                raise Invalid("unknown_reference", f"{ref} is not a payout or expenditure of {office}")
            if orig.refunded + amount > orig.amount:
                raise Invalid("invalid_amount",
                              f"refunds of {ref} would total {orig.refunded + amount} > {orig.amount}")
            orig.refunded += amount
            st.credit(orig.office, orig.program, amount)
            st.refunded += amount
        elif kind == "project_register":
            self._program(body, "program")
        # household_*, notice_publish, flag_review: no money, no keys.

    def _program(self, body: dict, name: str) -> str:
        """A program reference must name a defined program (unknown_reference)."""
        program = _str_field(body, name)
        if program not in self.state.programs:
            raise Invalid("unknown_reference", f"program {program} is not defined")
        return program

    def _check_new_key_ids(self, key_ids: list[str]) -> None:
        """Key ids are unique in the ledger (duplicate_id)."""
        if len(set(key_ids)) != len(key_ids):
            raise Invalid("duplicate_id", "key ids repeat within the event")
        for key_id in key_ids:
            if key_id in self.state.keys:
                raise Invalid("duplicate_id", f"key {key_id} already exists")


# --------------------------------------------------------------------------
# Driving a whole export
# --------------------------------------------------------------------------


@dataclass
class Outcome:
    """Result of one run, rendered as text or JSON."""

    ok: bool
    records: int
    root: bytes
    first_bad_seq: Optional[int] = None
    code: Optional[str] = None
    reason: Optional[str] = None
    notes: list[str] = field(default_factory=list)
    checkpoint: Optional[dict] = None
    balances: Optional[dict] = None


def read_lines(handle) -> Iterable[bytes]:
    """Yield raw lines without their trailing LF; a too-long line is yielded
    truncated with a marker so the caller reports it as invalid."""
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            yield None  # type: ignore[misc]
            return
        yield line[:-1] if line.endswith(b"\n") else line


def run_chain(handle, verifier: ChainVerifier, cp_size: Optional[int] = None) -> tuple[Optional[Invalid], Optional[bytes]]:
    """Stream every record through ``verifier``; return (first failure or None,
    Merkle root at ``cp_size`` if the export reached it)."""
    root_at_cp = EMPTY_TREE_ROOT if cp_size == 0 else None
    for line in read_lines(handle):
        if line is None:
            return Invalid("bad_record", f"line longer than {MAX_LINE_BYTES} bytes"), root_at_cp
        try:
            verifier.feed(line)
        except Invalid as exc:
            return exc, root_at_cp
        except Exception as exc:  # defensive: bad input must never crash the auditor
            return Invalid("bad_record", f"unexpected {type(exc).__name__}: {exc}"), root_at_cp
        if cp_size is not None and verifier.tree.size == cp_size:
            root_at_cp = verifier.tree.root()
    return None, root_at_cp


def balances_report(st: LedgerState) -> dict:
    """SPEC 1 conservation summary, shaped like vectors/balances.json."""
    total = sum(st.balances.values())
    return {
        "appropriated_fen": st.appropriated,
        "fund_accounts": {f"{o}/{p}": v for (o, p), v in sorted(st.balances.items())},
        "paid_out_fen": st.paid_out,
        "refunded_fen": st.refunded,
        "spent_fen": st.spent,
        "conserved": st.appropriated == total + st.paid_out + st.spent - st.refunded,
    }


def check_checkpoint(cp: Checkpoint, st: LedgerState, records: int, root_at_cp: Optional[bytes],
                     trusted: Optional[tuple[str, bytes]]) -> tuple[Optional[Invalid], Optional[int], dict]:
    """SPEC 6: signature by the log key, origin, size within the export, root
    equal to the export's root at that size.  Returns (failure, bad seq, info)."""
    info: dict[str, Any] = {"size": cp.size, "root": cp.root.hex(), "origin": cp.origin}
    key = trusted or st.log_key
    if key is None:
        return Invalid("checkpoint", "no log key: export has no genesis and none was given"), None, info
    info["log_key_id"] = key[0]
    try:
        verify_checkpoint_signature(cp, key[0], key[1])
    except Invalid as exc:
        return exc, None, info
    if st.ledger_id is not None and cp.origin != NOTE_ORIGIN_PREFIX + st.ledger_id:
        return Invalid("checkpoint", f"origin {cp.origin!r} is not {NOTE_ORIGIN_PREFIX}{st.ledger_id}"), None, info
    if records < cp.size:
        return (Invalid("truncated", f"export has {records} records, checkpoint commits to {cp.size}"),
                records, info)
    if root_at_cp != cp.root:
        got = root_at_cp.hex() if root_at_cp else "?"
        return (Invalid("checkpoint_root",
                        f"export root at size {cp.size} is {got}, checkpoint says {cp.root.hex()}; "
                        f"the export differs from the checkpointed log before seq {cp.size}"),
                None, info)
    info["verified"] = True
    return None, None, info


# --------------------------------------------------------------------------
# Known-answer checks: merkle.json and entries.json (vectors/)
# --------------------------------------------------------------------------


def _hexes(values: Any, what: str) -> list[bytes]:
    """A JSON list of 64-hex hashes."""
    if not isinstance(values, list):
        raise Invalid("vectors", f"{what} is not a list")
    return [hex32(v, what, "vectors") for v in values]


def _alterations(proof: list[bytes]) -> Iterable[list[bytes]]:
    """Tampered variants of a proof: each node bit-flipped, one dropped, one added."""
    for i in range(len(proof)):
        flipped = bytearray(proof[i])
        flipped[i % HASH_LEN] ^= 0x01
        yield proof[:i] + [bytes(flipped)] + proof[i + 1:]
    if proof:
        yield proof[:-1]
    yield proof + [ZERO_HASH]


def check_merkle_vectors(doc: Any, leaves: list[bytes], roots: list[bytes]) -> str:
    """Verify every root, inclusion proof (RFC 9162 2.1.3.2) and consistency
    proof (RFC 9162 2.1.4.2) of a merkle.json-shaped document against the
    export; check that altered proofs are rejected; and cross-check our own
    proof generator (2.1.3.1, 2.1.4.1) against the verifier for all pairs of
    small sizes.  Raises Invalid("vectors") on any disagreement."""
    if not isinstance(doc, dict) or not {"roots", "inclusion", "consistency"} <= set(doc):
        raise Invalid("vectors", "merkle file needs roots, inclusion, consistency")
    n = len(leaves)
    if not isinstance(doc["roots"], dict):
        raise Invalid("vectors", "roots is not an object")
    for size_text, root_hex in doc["roots"].items():
        if not DECIMAL_RE.fullmatch(size_text) or int(size_text) > n:
            raise Invalid("vectors", f"root size {size_text} outside the export (0..{n})")
        if roots[int(size_text)] != hex32(root_hex, f"roots[{size_text}]", "vectors"):
            raise Invalid("vectors", f"root at size {size_text} differs: export gives {roots[int(size_text)].hex()}")
        if mth(leaves[: int(size_text)]) != roots[int(size_text)]:
            raise Invalid("vectors", f"frontier and recursive MTH disagree at size {size_text}")
    rejected = 0
    for i, item in enumerate(doc["inclusion"]):
        if not isinstance(item, dict) or not all(is_int(item.get(k)) for k in ("index", "size")):
            raise Invalid("vectors", f"inclusion[{i}] is malformed")
        idx, size = item["index"], item["size"]
        if not 0 <= idx < size <= n:
            raise Invalid("vectors", f"inclusion[{i}] index/size outside the export")
        proof = _hexes(item.get("proof"), f"inclusion[{i}].proof")
        if not verify_inclusion(idx, size, leaves[idx], proof, roots[size]):
            raise Invalid("vectors", f"inclusion proof {idx} in {size} does not verify")
        if inclusion_path(idx, leaves[:size]) != proof:
            raise Invalid("vectors", f"our PATH({idx}, D[{size}]) differs from the vector")
        for bad in _alterations(proof):
            if verify_inclusion(idx, size, leaves[idx], bad, roots[size]):
                raise Invalid("vectors", f"altered inclusion proof {idx} in {size} still verifies")
            rejected += 1
        if size > 1 and verify_inclusion(idx ^ 1 if (idx ^ 1) < size else idx - 1, size, leaves[idx], proof, roots[size]):
            raise Invalid("vectors", f"inclusion proof {idx} in {size} verifies at another index")
    for i, item in enumerate(doc["consistency"]):
        if not isinstance(item, dict) or not all(is_int(item.get(k)) for k in ("from", "to")):
            raise Invalid("vectors", f"consistency[{i}] is malformed")
        m, size = item["from"], item["to"]
        if not 0 <= m <= size <= n:
            raise Invalid("vectors", f"consistency[{i}] sizes outside the export")
        proof = _hexes(item.get("proof"), f"consistency[{i}].proof")
        if not verify_consistency(m, size, roots[m], roots[size], proof):
            raise Invalid("vectors", f"consistency proof {m} -> {size} does not verify")
        if consistency_path(m, leaves[:size]) != proof:
            raise Invalid("vectors", f"our PROOF({m}, D[{size}]) differs from the vector")
        for bad in _alterations(proof):
            if verify_consistency(m, size, roots[m], roots[size], bad):
                raise Invalid("vectors", f"altered consistency proof {m} -> {size} still verifies")
            rejected += 1
    generated = 0
    limit = min(n, 64)
    for size in range(1, limit + 1):
        for idx in range(size):
            if not verify_inclusion(idx, size, leaves[idx], inclusion_path(idx, leaves[:size]), roots[size]):
                raise Invalid("vectors", f"generated inclusion {idx} in {size} fails")
            generated += 1
        for m in range(1, size + 1):
            if not verify_consistency(m, size, roots[m], roots[size], consistency_path(m, leaves[:size])):
                raise Invalid("vectors", f"generated consistency {m} -> {size} fails")
            generated += 1
    return (f"merkle: {len(doc['roots'])} roots, {len(doc['inclusion'])} inclusion and "
            f"{len(doc['consistency'])} consistency proofs verified, {rejected} altered proofs "
            f"rejected, {generated} generated proofs round-tripped")


def check_entries_vectors(doc: Any, infos: list[RecordInfo]) -> str:
    """Compare pae_sha256, recorded_at_ms and hash per seq with entries.json."""
    if not isinstance(doc, list):
        raise Invalid("vectors", "entries file is not a list")
    if len(doc) != len(infos):
        raise Invalid("vectors", f"entries file has {len(doc)} entries, export {len(infos)}")
    for item, info in zip(doc, infos):
        if not isinstance(item, dict) or item.get("seq") != info.seq:
            raise Invalid("vectors", f"entries[{info.seq}] is malformed")
        if hex32(item.get("pae_sha256"), "pae_sha256", "vectors") != info.pae_digest:
            raise Invalid("vectors", f"PAE digest of seq {info.seq} differs")
        if item.get("recorded_at_ms") != info.recorded_at_ms:
            raise Invalid("vectors", f"recorded_at_ms of seq {info.seq} differs")
        if hex32(item.get("hash"), "hash", "vectors") != info.entry_hash:
            raise Invalid("vectors", f"entry hash of seq {info.seq} differs")
    return f"entries: {len(doc)} PAE digests, timestamps and entry hashes match"


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The documented CLI."""
    parser = argparse.ArgumentParser(
        prog="verify.py",
        description=(
            "Independently verify a sunledger export (JSON Lines of chain records) "
            "against SPEC.md: hash chain and entry hashes (s5), DSSE envelopes (s2), "
            "payload shape (s3), Ed25519 signatures against the key registry as it "
            "stood at each seq, signer office/role and dual control (s3), conservation "
            "of money (s1), the RFC 6962 Merkle root (s6) and optionally a signed "
            "checkpoint (s6)."
        ),
        epilog=(
            "Exit status: 0 valid (prints 'ok: N records, root HEX'); 1 invalid "
            "(prints 'invalid: first bad seq: N: CODE: REASON' when a record is to "
            "blame -- for a checkpoint longer than the export N is the export length -- "
            "'invalid: checkpoint...: REASON' when only the checkpoint is wrong (bad "
            "signature, other origin, other root), 'invalid: vectors: REASON' when a "
            "--check-* file disagrees); "
            "2 usage error or unreadable file."
        ),
    )
    parser.add_argument("export", metavar="EXPORT", help="chain export, JSON Lines")
    parser.add_argument("--checkpoint", metavar="CP",
                        help="C2SP signed-note checkpoint to verify against the export")
    parser.add_argument("--log-key-id", metavar="ID",
                        help="trusted log key id (with --log-public-key); must match genesis body.log_key")
    parser.add_argument("--log-public-key", metavar="B64",
                        help="trusted log public key, standard base64 of 32 bytes")
    parser.add_argument("--dual-control-fen", metavar="N", type=int, default=DEFAULT_DUAL_CONTROL_FEN,
                        help="dual-control threshold in fen (default %(default)s, SPEC s3)")
    parser.add_argument("--check-merkle", metavar="MERKLE_JSON",
                        help="also verify every root, inclusion and consistency proof in a file "
                             "shaped like vectors/merkle.json against the export (keeps all "
                             "entry hashes in memory)")
    parser.add_argument("--check-entries", metavar="ENTRIES_JSON",
                        help="also compare PAE digests, recorded_at_ms and entry hashes with a "
                             "file shaped like vectors/entries.json")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def _read_file(path: str, what: str) -> bytes:
    """Read a whole small file; OSError becomes a usage error (exit 2)."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


class UsageError(Exception):
    """Exit status 2."""


def verify(args: argparse.Namespace) -> Outcome:
    """Run every requested check and return the outcome."""
    if Ed25519PublicKey is None:
        raise UsageError("the 'cryptography' package is required (pip install cryptography)")
    if (args.log_key_id is None) != (args.log_public_key is None):
        raise UsageError("--log-key-id and --log-public-key go together")
    if args.dual_control_fen < 1:
        raise UsageError("--dual-control-fen must be at least 1")
    trusted: Optional[tuple[str, bytes]] = None
    if args.log_key_id is not None:
        try:
            raw = b64decode_strict(args.log_public_key, "--log-public-key", "usage")
            check_public_key(raw, "--log-public-key")
        except Invalid as exc:
            raise UsageError(exc.message) from None
        trusted = (args.log_key_id, raw)

    cp_bytes = _read_file(args.checkpoint, "checkpoint") if args.checkpoint else None
    merkle_bytes = _read_file(args.check_merkle, "merkle file") if args.check_merkle else None
    entries_bytes = _read_file(args.check_entries, "entries file") if args.check_entries else None

    infos: list[RecordInfo] = []
    keep = args.check_merkle is not None or args.check_entries is not None
    verifier = ChainVerifier(args.dual_control_fen, on_record=infos.append if keep else None)

    cp: Optional[Checkpoint] = None
    cp_error: Optional[Invalid] = None
    if cp_bytes is not None:
        try:
            cp = parse_checkpoint(cp_bytes)
        except Invalid as exc:
            cp_error = exc

    try:
        with open(args.export, "rb") as fh:
            failure, root_at_cp = run_chain(fh, verifier, cp.size if cp else None)
    except OSError as exc:
        raise UsageError(f"cannot read export {args.export}: {exc.strerror or exc}") from None

    st = verifier.state
    out = Outcome(ok=True, records=verifier.next_seq, root=verifier.tree.root())
    if failure is not None:
        return _fail(out, failure, verifier.next_seq)
    out.balances = balances_report(st)
    if not out.balances["conserved"]:  # cannot happen if the replay above is right
        return _fail(out, Invalid("conservation", "totals do not balance"), None)

    if trusted is not None and st.log_key is not None and st.log_key != trusted:
        return _fail(out, Invalid("wrong_log_key",
                                  f"genesis body.log_key ({st.log_key[0]}, "
                                  f"{base64.b64encode(st.log_key[1]).decode()}) is not the trusted "
                                  f"log key ({trusted[0]}, {args.log_public_key})"), 0)
    if cp_error is not None:
        return _fail(out, cp_error, None)
    if cp is not None:
        err, bad_seq, info = check_checkpoint(cp, st, out.records, root_at_cp, trusted)
        out.checkpoint = info
        if err is not None:
            return _fail(out, err, bad_seq)
        out.notes.append(f"checkpoint size {cp.size} signed by {info['log_key_id']}")

    if merkle_bytes is not None or entries_bytes is not None:
        leaves = [i.entry_hash for i in infos]
        roots = [EMPTY_TREE_ROOT] + [i.root for i in infos]
        try:
            if entries_bytes is not None:
                out.notes.append(check_entries_vectors(
                    strict_json_any(entries_bytes, "entries file"), infos))
            if merkle_bytes is not None:
                out.notes.append(check_merkle_vectors(
                    strict_json_any(merkle_bytes, "merkle file"), leaves, roots))
        except Invalid as exc:
            return _fail(out, exc, None)
        except Exception as exc:  # defensive
            return _fail(out, Invalid("vectors", f"unexpected {type(exc).__name__}: {exc}"), None)
    return out


def strict_json_any(data: bytes, what: str) -> Any:
    """Parse a vectors file (floats allowed there are not expected; be strict)."""
    return strict_json(data, what, "vectors")


def _fail(out: Outcome, err: Invalid, bad_seq: Optional[int]) -> Outcome:
    """Mark ``out`` invalid with the given reason."""
    out.ok = False
    out.first_bad_seq = bad_seq
    out.code = err.code
    out.reason = err.message
    return out


def render(out: Outcome, as_json: bool) -> str:
    """One line of text, or one JSON object."""
    if as_json:
        obj: dict[str, Any] = {"ok": out.ok, "records": out.records, "root": out.root.hex()}
        if not out.ok:
            obj.update(first_bad_seq=out.first_bad_seq, code=out.code, reason=out.reason)
        if out.checkpoint is not None:
            obj["checkpoint"] = out.checkpoint
        if out.balances is not None:
            obj["balances"] = out.balances
        if out.notes:
            obj["notes"] = out.notes
        return json.dumps(obj, ensure_ascii=False, sort_keys=True)
    if out.ok:
        extra = "".join(f"; {n}" for n in out.notes)
        return f"ok: {out.records} records, root {out.root.hex()}{extra}"
    if out.first_bad_seq is not None:
        return f"invalid: first bad seq: {out.first_bad_seq}: {out.code}: {out.reason}"
    return f"invalid: {out.code}: {out.reason}"


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        out = verify(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(render(out, args.json))
    return EXIT_OK if out.ok else EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
