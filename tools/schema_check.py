#!/usr/bin/env python3
"""Check sunledger payloads and export records against the JSON Schemas.

    python3 tools/schema_check.py SCHEMAS_DIR [CASES_FILE] [--records EXPORT_FILE]

    CASES_FILE
        JSON Lines of {"name": str, "payload": "<JSON text>"}
        (other fields are ignored). Prints one line per case:
        "<name>\\t<valid|invalid>". Exit 0 unless the cases file itself is
        unreadable.

    --records EXPORT_FILE
        A ledger export (JSON Lines of chain records, SPEC §5).
        Each record is validated against record.schema.json and its decoded
        payload against payload.schema.json. Prints each failure; exit 1 if
        any record fails.

Why this is more than "load JSON, call validate": JSON Schema sees the value a
JSON library built, not the text, so three rules of SPEC §3 are checked here on
the text instead, the way the ledger's parser sees it:
  * duplicate keys (Python's json keeps the last one silently);
  * integer literals only: JSON Schema's "integer" accepts 1.0, the ledger
    does not, so numbers with a fraction or exponent are parsed as Decimal,
    which is a "number" but never an "integer";
  * strict JSON: no NaN/Infinity, no lone UTF-16 surrogates (serde_json
    refuses both), no byte-order mark.
Regex "pattern" is evaluated with ECMA-262 meaning: ASCII \\d and a "$" that
does not match before a trailing newline (Python's re.search does both
differently).

Schemas are resolved offline: every *.schema.json under SCHEMAS_DIR is loaded
into a referencing Registry under its "$id"; nothing is fetched.

Exit codes: 0 success, 1 validation failures (--records), 2 usage or
environment error (missing jsonschema, unreadable file).
"""

import argparse
import base64
import binascii
import datetime
import decimal
import json
import pathlib
import re
import sys

try:
    import jsonschema
    import referencing
    import referencing.jsonschema
except ImportError as error:  # pragma: no cover - environment problem
    sys.stderr.write(
        "schema_check.py: the Python packages 'jsonschema' (>= 4.18) and "
        "'referencing' are required: python3 -m pip install jsonschema "
        f"({error})\n"
    )
    sys.exit(2)

# SPEC §3: a payload is at most 64 KiB.
PAYLOAD_BYTES_MAX = 64 * 1024
RFC3339_MS_UTC = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z", re.ASCII
)


def fail(message):
    """Usage or environment error: exit 2, distinct from "records failed"."""
    sys.stderr.write(f"schema_check.py: {message}\n")
    sys.exit(2)


class StrictJsonError(ValueError):
    """The text is not JSON as the ledger's parser accepts it."""


def reject_duplicate_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise StrictJsonError(f"duplicate key {key!r}")
        result[key] = value
    return result


def reject_constant(name):
    raise StrictJsonError(f"non-standard constant {name}")


def reject_lone_surrogates(value):
    """Walk the parsed value; strings must be valid Unicode scalar sequences."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise StrictJsonError("lone UTF-16 surrogate in string") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_strict_json(text):
    """Parse JSON text the way the ledger does, or raise StrictJsonError."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise StrictJsonError(f"not UTF-8: {error}") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=reject_duplicate_keys,
            parse_float=decimal.Decimal,
            parse_constant=reject_constant,
        )
    except json.JSONDecodeError as error:
        raise StrictJsonError(f"not JSON: {error}") from None
    reject_lone_surrogates(value)
    return value


def ecma_pattern(validator, pattern, instance, schema):
    """The "pattern" keyword with ECMA-262 semantics for the patterns we use."""
    if not validator.is_type(instance, "string"):
        return
    match = re.search(pattern, instance, re.ASCII)
    # Python's "$" also matches before a final "\n"; ECMA-262's does not.
    if match is None or (pattern.endswith("$") and match.end() != len(instance)):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def is_rfc3339_ms_utc(instance):
    """date-time as the ledger writes it; the date and time must exist."""
    if not isinstance(instance, str):
        return True
    if not RFC3339_MS_UTC.fullmatch(instance):
        return False
    datetime.datetime.strptime(instance, "%Y-%m-%dT%H:%M:%S.%fZ")
    return True


def build_validator_class():
    base = jsonschema.Draft202012Validator
    validators = dict(base.VALIDATORS)
    validators["pattern"] = ecma_pattern
    return jsonschema.validators.extend(base, validators)


def build_format_checker():
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    checker = jsonschema.FormatChecker(formats=list(checker.checkers))
    # Do not depend on the optional rfc3339-validator package.
    checker.checks("date-time", raises=ValueError)(is_rfc3339_ms_utc)
    return checker


def load_registry(schemas_dir):
    resources = []
    for path in sorted(pathlib.Path(schemas_dir).rglob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        if "$id" not in contents:
            fail(f"{path} has no $id")
        try:
            jsonschema.Draft202012Validator.check_schema(contents)
        except jsonschema.SchemaError as error:
            fail(f"{path} is not a valid draft 2020-12 schema: {error.message}")
        resources.append(
            (contents["$id"], referencing.jsonschema.DRAFT202012.create_resource(contents))
        )
    if not resources:
        fail(f"no *.schema.json under {schemas_dir}")
    return referencing.Registry().with_resources(resources)


class Checker:
    def __init__(self, schemas_dir):
        self.schemas_dir = pathlib.Path(schemas_dir)
        self.registry = load_registry(schemas_dir)
        self.validator_class = build_validator_class()
        self.format_checker = build_format_checker()
        self.validators = {}

    def validator(self, file_name):
        if file_name not in self.validators:
            schema_path = self.schemas_dir / file_name
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
            self.validators[file_name] = self.validator_class(
                schema, registry=self.registry, format_checker=self.format_checker
            )
        return self.validators[file_name]

    def errors(self, file_name, instance):
        """Human-readable messages; empty when the instance is valid."""
        found = self.validator(file_name).iter_errors(instance)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in found]

    def payload_errors(self, payload_text):
        if isinstance(payload_text, bytes) and len(payload_text) > PAYLOAD_BYTES_MAX:
            return [f"payload is {len(payload_text)} bytes, more than {PAYLOAD_BYTES_MAX}"]
        try:
            payload = parse_strict_json(payload_text)
        except StrictJsonError as error:
            return [str(error)]
        return self.errors("payload.schema.json", payload)

    def record_errors(self, line):
        try:
            record = parse_strict_json(line)
        except StrictJsonError as error:
            return [str(error)]
        problems = self.errors("record.schema.json", record)
        if problems:
            return problems
        envelope = record["envelope"]
        key_ids = [signature["keyid"] for signature in envelope["signatures"]]
        if len(set(key_ids)) != len(key_ids):
            problems.append(f"envelope: key ids not distinct: {key_ids}")
        for signature in envelope["signatures"]:
            if len(strict_base64(signature["sig"]) or b"") != 64:
                problems.append(f"envelope: signature by {signature['keyid']} is not 64 bytes")
        payload_bytes = strict_base64(envelope["payload"])
        if payload_bytes is None:
            return problems + ["envelope: payload is not canonical base64"]
        return problems + [f"payload: {p}" for p in self.payload_errors(payload_bytes)]


def strict_base64(text):
    """Decode standard padded base64, refusing non-canonical encodings."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(decoded).decode("ascii") != text:
        return None
    return decoded


def check_cases(checker, cases_file):
    names = set()
    for line_number, line in enumerate(read_lines(cases_file), start=1):
        try:
            case = json.loads(line)
            name, payload = case["name"], case["payload"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            fail(f"{cases_file}:{line_number}: not a case with name and payload: {error}")
        if not isinstance(name, str) or not isinstance(payload, str):
            fail(f"{cases_file}:{line_number}: name and payload must be strings")
        if name in names or "\t" in name or "\n" in name:
            fail(f"{cases_file}:{line_number}: bad or repeated name {name!r}")
        names.add(name)
        verdict = "invalid" if checker.payload_errors(payload) else "valid"
        print(f"{name}\t{verdict}")
    return 0


def check_records(checker, export_file):
    failures = 0
    for line_number, line in enumerate(read_lines(export_file), start=1):
        problems = checker.record_errors(line)
        for problem in problems:
            print(f"{export_file}:{line_number}: {problem}")
        failures += bool(problems)
    print(f"{failures} records failed" if failures else "all records valid")
    return 1 if failures else 0


def read_lines(path):
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {error}")
    return [line for line in text.split("\n") if line.strip()]


def main(arguments):
    parser = argparse.ArgumentParser(
        prog="schema_check.py",
        description="Check sunledger payloads and export records against the JSON Schemas.",
    )
    parser.add_argument("schemas_dir", metavar="SCHEMAS_DIR")
    parser.add_argument("cases_file", metavar="CASES_FILE", nargs="?",
                        help='JSON Lines of {"name", "payload"}; prints "<name>\\t<valid|invalid>"')
    parser.add_argument("--records", metavar="EXPORT_FILE",
                        help="ledger export (chain records) to validate; exit 1 on any failure")
    options = parser.parse_args(arguments)
    if options.cases_file is None and options.records is None:
        parser.error("give CASES_FILE, --records EXPORT_FILE, or both")
    if not pathlib.Path(options.schemas_dir).is_dir():
        fail(f"{options.schemas_dir} is not a directory")
    checker = Checker(options.schemas_dir)
    status = 0
    if options.cases_file is not None:
        status = check_cases(checker, options.cases_file)
    if options.records is not None:
        status = max(status, check_records(checker, options.records))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
