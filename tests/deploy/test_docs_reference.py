"""The generated parts of the docs (docs/reference/hooks.py): the API reference covers every
path of the OpenAPI document, and the admin guide's includes expand to every configuration key,
every metric and every command."""

from __future__ import annotations

import importlib.util
import tomllib
from types import ModuleType
from unittest import mock

from tests.deploy.conftest import ROOT


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fmn_docs_hooks", ROOT / "docs/reference/hooks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_has_every_operation_and_schema() -> None:
    module = hooks()
    spec = module.openapi_document()
    page = module.render_openapi(spec)
    for path, item in spec["paths"].items():
        for method in item:
            if method in module.METHODS:
                assert f"### `{method.upper()} {path}`" in page
    for name in spec["components"]["schemas"]:
        assert f'<a id="schema-{name.lower()}"></a>' in page


def test_admin_guide_includes_expand() -> None:
    module = hooks()
    guide = (ROOT / "docs" / "admin-guide.md").read_text()
    page = module.on_page_markdown(guide, mock.Mock(), mock.Mock(), mock.Mock())
    assert "<!-- fmn:" not in page
    sample = tomllib.loads((ROOT / "deploy" / "fmn.toml.sample").read_text())
    for section, keys in sample.items():
        if isinstance(keys, dict):
            assert f"[{section}]" in page
    assert "`fmn_consumer_messages_total`" in page and "`fmn_api_requests_total`" in page
    for command in ("fmn status", "fmn deadletter replay", "fmn import-fmn3", "fmn rules export"):
        assert f"### `{command}`" in page
