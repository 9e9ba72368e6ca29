"""Validates JSON documents against one JSON Schema (Draft 2020-12), with
the `jsonschema` package of the project's virtualenv: one document a line
on stdin, one answer a line on stdout, `{"ok": true}` or the errors. The
test harness keeps one running per schema (tests/src/schema.rs)."""

import json
import sys

from jsonschema import Draft202012Validator


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for line in sys.stdin:
        try:
            instance = json.loads(line)
        except ValueError as e:
            print(json.dumps({"ok": False, "errors": [f"not JSON: {e}"]}), flush=True)
            continue
        errors = [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        ]
        print(json.dumps({"ok": not errors, "errors": errors[:5]}), flush=True)


if __name__ == "__main__":
    main()
