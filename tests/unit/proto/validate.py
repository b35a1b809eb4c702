#!/usr/bin/python3
"""Checks proto/ against itself and against the C codec, so that neither can drift.

1. every schema is a valid draft 2020-12 schema and its $id matches its file;
2. every sample proto/samples/<schema>.ok-*.json validates, every <schema>.bad-*.json fails,
   and every schema has at least one ok sample;
3. every "<schema-name>\\t<json>" line printed by codec_dump (common/codec.c's own output)
   validates against its schema.

$refs resolve from the local files only (a fetch of any other URL fails the run).
Exit status: 0 if everything passed, 1 otherwise.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys

import jsonschema
from jsonschema import Draft202012Validator, RefResolver
from jsonschema.exceptions import ValidationError

ID_BASE = "https://chat.example/proto/"


def ecma_pattern(pattern):
    """JSON Schema patterns are ECMA-262 regexes, where a final '$' matches only at the end
    of the string. Python's '$' also matches before a final newline, which would let
    "room\\n" through; '\\Z' is the ECMA meaning."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"\Z"
    return pattern


def pattern_keyword(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not re.search(ecma_pattern(pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = jsonschema.validators.extend(Draft202012Validator, {"pattern": pattern_keyword})


def shorten(text, limit=200):
    """Error messages quote the instance; a 4001-character text need not fill the log."""
    return text if len(text) <= limit else text[:limit] + "..."


def refuse_remote(uri):
    raise RuntimeError(f"reference to a schema that is not in proto/: {uri}")


class Checker:
    def __init__(self, proto_dir):
        self.proto = pathlib.Path(proto_dir)
        self.failures = []
        self.passed = 0
        self.schemas = {}  # schema name ("client.send", "msg", "defs") -> schema
        self.store = {}  # $id -> schema

    def fail(self, what):
        self.failures.append(what)

    def load_schemas(self):
        files = [self.proto / "defs.schema.json"]
        # documents of the server API that are not events or frames (moderation-rules)
        files += sorted(p for p in self.proto.glob("*.schema.json") if p.name != "defs.schema.json")
        files += sorted((self.proto / "frames").glob("*.schema.json"))
        files += sorted((self.proto / "events").glob("*.schema.json"))
        for path in files:
            rel = path.relative_to(self.proto).as_posix()
            name = path.name[: -len(".schema.json")]
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                self.fail(f"{rel}: not JSON: {e}")
                continue
            if schema.get("$id") != ID_BASE + rel:
                self.fail(f"{rel}: $id is {schema.get('$id')!r}, expected {ID_BASE + rel!r}")
                continue
            try:
                Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as e:
                self.fail(f"{rel}: invalid schema: {e.message}")
                continue
            self.schemas[name] = schema
            self.store[schema["$id"]] = schema
            self.passed += 1

    def validator(self, name):
        schema = self.schemas.get(name)
        if schema is None:
            return None
        resolver = RefResolver(
            base_uri=schema["$id"],
            referrer=schema,
            store=self.store,
            handlers={"http": refuse_remote, "https": refuse_remote},
        )
        return Validator(schema, resolver=resolver)

    def errors(self, name, doc):
        """Returns the validation errors of doc against schema name (a list, [] if valid)."""
        validator = self.validator(name)
        if validator is None:
            return [f"no schema named {name!r}"]
        try:
            return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {shorten(e.message)}"
                    for e in validator.iter_errors(doc)]
        except RuntimeError as e:
            return [str(e)]

    def check_samples(self):
        with_ok = set()
        samples = sorted((self.proto / "samples").glob("*.json"))
        for path in samples:
            m = re.fullmatch(r"(.+)\.(ok|bad)-[A-Za-z0-9_-]+\.json", path.name)
            if m is None or m.group(1) not in self.schemas or m.group(1) == "defs":
                self.fail(f"samples/{path.name}: name is not <schema>.<ok|bad>-<what>.json")
                continue
            name, verdict = m.group(1), m.group(2)
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                self.fail(f"samples/{path.name}: not JSON: {e}")
                continue
            errs = self.errors(name, doc)
            if verdict == "ok" and errs:
                self.fail(f"samples/{path.name}: should validate: {errs[0]}")
            elif verdict == "bad" and not errs:
                self.fail(f"samples/{path.name}: should not validate")
            else:
                self.passed += 1
                if verdict == "ok":
                    with_ok.add(name)
        for name in sorted(set(self.schemas) - {"defs"} - with_ok):
            self.fail(f"schema {name}: no valid ok sample")

    def check_codec(self, codec_dump):
        out = subprocess.run([codec_dump], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            self.fail(f"{codec_dump} exited with {out.returncode}: {out.stderr.strip()}")
            return
        lines = [line for line in out.stdout.splitlines() if line]
        if not lines:
            self.fail(f"{codec_dump} printed nothing")
        for n, line in enumerate(lines, 1):
            name, sep, text = line.partition("\t")
            if not sep:
                self.fail(f"codec_dump line {n}: no tab")
                continue
            try:
                doc = json.loads(text)
            except ValueError as e:
                self.fail(f"codec_dump line {n} ({name}): not JSON: {e}")
                continue
            errs = self.errors(name, doc)
            if errs:
                self.fail(f"codec_dump line {n} ({name}): {errs[0]}\n    {text}")
            else:
                self.passed += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto-dir", required=True, help="the repository's proto/ directory")
    parser.add_argument("--codec-dump", help="the codec_dump program (skipped if absent)")
    args = parser.parse_args()

    checker = Checker(args.proto_dir)
    checker.load_schemas()
    checker.check_samples()
    if args.codec_dump:
        checker.check_codec(args.codec_dump)
    for failure in checker.failures:
        print(f"FAIL {failure}")
    print(f"{checker.passed} checks passed, {len(checker.failures)} failed")
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main())
