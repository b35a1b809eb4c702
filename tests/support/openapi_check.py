"""Checks the server API's OpenAPI document itself: a valid OpenAPI 3.1 document, loadable by
schemathesis (which 181 runs with it), self-contained, and keeping the conventions every
operation shares (X-Request-Id on every response, 401 and 429 with Retry-After everywhere).
Usage: openapi_check.py proto/openapi.yaml; exits 1 listing what is wrong."""

import json
import os
import sys

import yaml
from openapi_spec_validator import validate


def refs(node, path=""):
    """Yields (where, $ref value) for every $ref in node."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield path, v
            else:
                yield from refs(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from refs(v, f"{path}/{i}")


def deref(doc, node):
    """The object a local $ref points at (or node itself)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
        seen += 1
        if seen > 10:
            raise ValueError("$ref loop")
    return node


def main():
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    problems = []
    try:
        validate(doc)
    except Exception as e:  # the validator's own message says what and where
        problems.append(f"not a valid OpenAPI document: {e}")
    if not str(doc.get("openapi", "")).startswith("3.1"):
        problems.append("openapi is not 3.1.x")
    for where, ref in refs(doc):
        if not ref.startswith("#/"):
            problems.append(f"{where}: $ref {ref} is not local")

    operations = 0
    for tpl, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            operations += 1
            name = f"{method.upper()} {tpl}"
            responses = op.get("responses", {})
            for code in ("401", "429"):
                if code not in responses:
                    problems.append(f"{name}: no {code} response")
            for code, resp in responses.items():
                headers = deref(doc, resp).get("headers", {})
                if "X-Request-Id" not in headers:
                    problems.append(f"{name} {code}: no X-Request-Id header")
                if code == "429" and "Retry-After" not in headers:
                    problems.append(f"{name} 429: no Retry-After header")
                content = deref(doc, resp).get("content")
                if code != "204" and content is None:
                    problems.append(f"{name} {code}: no body schema")
                if code == "204" and content is not None:
                    problems.append(f"{name} 204: has a body")
            body = op.get("requestBody")
            if body is not None:
                schema = deref(doc, body["content"]["application/json"]["schema"])
                if schema.get("additionalProperties") is not False:
                    problems.append(f"{name}: request body allows unknown fields")
                if "413" not in responses:
                    problems.append(f"{name}: takes a body but has no 413")

    # Links (schemathesis' stateful phase follows them) name operations that exist, with
    # parameters those operations have.
    op_params = {}
    for tpl, item in doc.get("paths", {}).items():
        shared = [deref(doc, p)["name"] for p in item.get("parameters", [])]
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                own = [deref(doc, p)["name"] for p in op.get("parameters", [])]
                op_params[op["operationId"]] = set(shared + own)

    def links_of(node):
        # Links live in responses (of operations and in components/responses); a schema's
        # property may be named "links" too (the moderation rule set's).
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "links" and isinstance(v, dict) and "type" not in v and \
                        "$ref" not in v and "properties" not in v:
                    yield from v.items()
                elif k != "schema" and k != "schemas":
                    yield from links_of(v)
        elif isinstance(node, list):
            for v in node:
                yield from links_of(v)

    for name, link in links_of(doc):
        target = link.get("operationId")
        if target not in op_params:
            problems.append(f"link {name}: no operation {target}")
            continue
        for param in link.get("parameters", {}):
            if param not in op_params[target]:
                problems.append(f"link {name}: {target} has no parameter {param}")

    # The moderation rule set is a copy of proto/moderation-rules.schema.json (its $defs as
    # rules_*): the two must not drift apart.
    rules_path = os.path.join(os.path.dirname(os.path.abspath(path)), "moderation-rules.schema.json")
    if os.path.exists(rules_path):
        with open(rules_path, encoding="utf-8") as f:
            rules = json.load(f)

        def rewrite(node):
            if isinstance(node, dict):
                return {k: ("#/components/schemas/rules_" + v[len("#/$defs/"):]
                            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/")
                            else rewrite(v)) for k, v in node.items() if k != "description"}
            if isinstance(node, list):
                return [rewrite(x) for x in node]
            return node

        schemas = doc.get("components", {}).get("schemas", {})
        want = {"rule_set": {k: v for k, v in rules.items()
                             if k not in ("$schema", "$id", "title", "$defs")}}
        want.update({"rules_" + k: v for k, v in rules.get("$defs", {}).items()})
        for name, schema in want.items():
            if rewrite(schemas.get(name)) != rewrite(schema):
                problems.append(f"components/schemas/{name} differs from {rules_path}")

    # schemathesis must be able to turn every operation into requests.
    import schemathesis

    schema = schemathesis.openapi.from_path(path)
    loaded = 0
    for result in schema.get_all_operations():
        try:
            result.ok()
            loaded += 1
        except Exception as e:
            problems.append(f"schemathesis cannot load an operation: {e}")
    if loaded != operations:
        problems.append(f"schemathesis loaded {loaded} operations of {operations}")

    for p in problems:
        print("FAIL -", p)
    print(f"{operations} operations; {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
