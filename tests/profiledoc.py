"""The key reference of docs/profiles.md, generated from the profile's JSON Schema
(src/csv2sr/mapping/schema.json): ``python tests/profiledoc.py`` prints it;
tests/test_profile_docs.py checks that the page holds exactly this text."""

from __future__ import annotations

import json
import sys
from importlib.resources import files
from typing import Any

BEGIN = "<!-- key reference: generated from schema.json (python tests/profiledoc.py) -->"
END = "<!-- end of key reference -->"


def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        files("csv2sr.mapping").joinpath("schema.json").read_text(encoding="utf-8"))
    return data


def _type(node: dict[str, Any]) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.replace('_', '-')})"
    if "oneOf" in node or "anyOf" in node:
        return " or ".join(_type(n) for n in node.get("oneOf", node.get("anyOf", [])))
    kind = node.get("type", "")
    if kind == "array" and "items" in node:
        return f"array of {_type(node['items'])}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"table of {_type(node['additionalProperties'])}"
    if "enum" in node:
        return f"{kind}: " + " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    return str(kind) if isinstance(kind, str) else " or ".join(kind)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _example(node: dict[str, Any]) -> str:
    examples = node.get("examples")
    if not examples:
        return ""
    return "`" + _cell(json.dumps(examples[0], ensure_ascii=False)) + "`"


def _default(node: dict[str, Any]) -> str:
    return "`" + _cell(json.dumps(node["default"])) + "`" if "default" in node else ""


def _rows(node: dict[str, Any], path: str, required: set[str]) -> list[str]:
    lines = []
    for key, child in node.get("properties", {}).items():
        name = f"{path}.{key}" if path else key
        need = " (required)" if key in required else ""
        lines.append(f"| `{name}`{need} | {_type(child)} | {_default(child)} | "
                     f"{_cell(child.get('description', ''))} | {_example(child)} |")
        if child.get("type") == "object" and "properties" in child:
            lines.extend(_rows(child, name, set(child.get("required", []))))
        items = child.get("items", {})
        if child.get("type") == "array" and "properties" in items:
            lines.extend(_rows(items, f"{name}[]", set(items.get("required", []))))
    return lines


def _table(node: dict[str, Any], path: str) -> list[str]:
    return ["| key | type | default | what it says | example |",
            "| --- | --- | --- | --- | --- |",
            *_rows(node, path, set(node.get("required", [])))]


def reference() -> str:
    data = schema()
    out = [BEGIN, "", "### The file", "", _cell(data["description"]), "", *_table(data, "")]
    for name, node in data["$defs"].items():
        out += ["", f"### {name}", "", _cell(node.get("description", ""))]
        if "properties" in node:
            out += ["", *_table(node, "")]
        else:
            out += ["", f"Type: {_type(node)}."]
            if "examples" in node:
                out += ["", "Examples: " + ", ".join(
                    "`" + _cell(json.dumps(e, ensure_ascii=False)) + "`"
                    for e in node["examples"]) + "."]
    out += ["", END]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
