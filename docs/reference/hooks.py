"""MkDocs hooks: the reference parts of the docs are generated from the code at every build, so
they cannot drift from it.

- `reference/api.md`: the REST API, rendered from the FastAPI app's OpenAPI document, which is
  published beside it as `reference/openapi.json`.
- In any page, `<!-- fmn:config-sample -->` becomes deploy/fmn.toml.sample (itself generated
  from the settings classes and tested), `<!-- fmn:metrics -->` the Prometheus metrics the code
  defines, and `<!-- fmn:cli -->` the help of every `fmn` command.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import click
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "fmn.toml.sample"
# Modules whose Prometheus metrics the admin guide lists, with the process that records them.
METRIC_MODULES = {
    "fmn.api.metrics": "api",
    "fmn.consumer.metrics": "consumer",
    "fmn.directory.cache": "consumer, api",
    "fmn.senders.metrics": "senders",
}
METHODS = ("get", "post", "put", "patch", "delete")


# ---- the OpenAPI reference --------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    from fmn.api.app import create_app
    from fmn.core.settings import Settings

    # The defaults alone: the document must not depend on the machine building the docs.
    spec: dict[str, Any] = create_app(Settings.model_construct()).openapi()
    return spec


def _cell(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#schema-{name.lower()})"
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(_type(s) for s in schema.get("anyOf") or schema["oneOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        values = schema["additionalProperties"]
        return f"object of {_type(values) if isinstance(values, dict) else 'any'}"
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def _body_type(content: dict[str, Any] | None) -> str:
    if not content:
        return ""
    media, body = next(iter(content.items()))
    schema = body.get("schema", {})
    return _type(schema) if schema else media


def _operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    out = [f"### `{method.upper()} {path}`", "", f"**{op.get('summary', '')}**", ""]
    if op.get("description"):
        out += [op["description"], ""]
    out += ["Login required." if op.get("security") else "No login needed.", ""]
    params = op.get("parameters", [])
    if params:
        out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            description = p.get("description") or p.get("schema", {}).get("description")
            out.append(
                f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
                f"{'yes' if p.get('required') else 'no'} | {_cell(description)} |"
            )
        out.append("")
    body = op.get("requestBody")
    if body:
        out += [f"Request body: {_body_type(body.get('content'))}", ""]
    out += ["| status | meaning | body |", "|---|---|---|"]
    for status, response in op.get("responses", {}).items():
        body_type = _body_type(response.get("content"))
        out.append(f"| {status} | {_cell(response.get('description'))} | {body_type} |")
    return [*out, ""]


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f'<a id="schema-{name.lower()}"></a>', "", f"### {name}", ""]
    if schema.get("description"):
        out += [_cell(schema["description"]), ""]
    properties = schema.get("properties")
    if properties:
        required = set(schema.get("required", ()))
        out += ["| field | type | required | description |", "|---|---|---|---|"]
        for field, spec in properties.items():
            out.append(
                f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | "
                f"{_cell(spec.get('description'))} |"
            )
    else:
        out.append(f"Type: {_type(schema)}")
    return [*out, ""]


def render_openapi(spec: dict[str, Any]) -> str:
    out = [
        "# API reference",
        "",
        f"{spec['info']['title']}, version {spec['info']['version']}: every endpoint and schema",
        "of the REST API, generated from the code when these pages are built. The same",
        "document is served by the API at `/api/v1/openapi.json` (with an interactive page at",
        "`/api/v1/docs`) and is here as [openapi.json](openapi.json).",
        "[The API contract](../api.md) explains the conventions (authentication, pagination,",
        "errors).",
        "",
    ]
    by_tag: dict[str, list[list[str]]] = {}
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append(_operation(method, path, op))
    for tag, operations in by_tag.items():
        out += [f"## {tag}", ""]
        for lines in operations:
            out += lines
    out += ["## Schemas", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        out += _schema(name, schema)
    return "\n".join(out)


# ---- includes ---------------------------------------------------------------------------------


def metrics_table() -> str:
    from prometheus_client.metrics import MetricWrapperBase

    rows = ["| metric | type | labels | recorded by | meaning |", "|---|---|---|---|---|"]
    for module_name, process in METRIC_MODULES.items():
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if not isinstance(value, MetricWrapperBase):
                continue
            name = value._name + ("_total" if value._type == "counter" else "")
            labels = ", ".join(f"`{label}`" for label in value._labelnames)
            rows.append(
                f"| `{name}` | {value._type} | {labels} | {process} | "
                f"{_cell(value._documentation)} |"
            )
    return "\n".join(rows)


def cli_reference() -> str:
    from fmn.cli import cli

    out: list[str] = []

    def walk(command: click.Command, path: list[str]) -> None:
        ctx = click.Context(command, info_name=" ".join(path))
        out.extend([f"### `{' '.join(path)}`", "", "```text", command.get_help(ctx), "```", ""])
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None:
                    walk(sub, [*path, name])

    walk(cli, ["fmn"])
    return "\n".join(out)


INCLUDES = {
    "<!-- fmn:config-sample -->": lambda: f"```toml\n{SAMPLE.read_text()}```",
    "<!-- fmn:metrics -->": metrics_table,
    "<!-- fmn:cli -->": cli_reference,
}


# ---- MkDocs events ----------------------------------------------------------------------------


def on_files(files: Files, config: MkDocsConfig) -> Files:
    spec = openapi_document()
    files.append(File.generated(config, "reference/api.md", content=render_openapi(spec)))
    files.append(
        File.generated(config, "reference/openapi.json", content=json.dumps(spec, indent=2))
    )
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    for marker, make in INCLUDES.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
