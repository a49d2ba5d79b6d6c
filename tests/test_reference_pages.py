"""The generated reference pages (settings, command line, HTTP routes) match the code and cover all of it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import typer

from learnagg.entrypoints.cli import app as cli_app

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "reference-pages.py"
REFERENCE = ROOT / "docs" / "reference"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference_pages", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pages_are_up_to_date():
    done = subprocess.run([sys.executable, SCRIPT, "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr + "\nrun python scripts/reference-pages.py"


def test_every_command_and_option_is_in_the_cli_page():
    page = (REFERENCE / "cli.md").read_text(encoding="utf-8")
    assert page == _script().cli_page()
    root = typer.main.get_command(cli_app)
    pending = [(("learnagg",), root)]
    seen = 0
    while pending:
        path, command = pending.pop()
        assert f"## `{' '.join(path)}`" in page
        seen += 1
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert f"`{opt}`" in page, (path, opt)
        pending += [((*path, name), sub) for name, sub in getattr(command, "commands", {}).items()]
    assert seen >= 30
    assert "| `--metrics-port` |" in page and "## `learnagg archive run`" in page


def test_every_route_is_in_the_http_api_page():
    module = _script()
    document = module.openapi_document()
    page = (REFERENCE / "http-api.md").read_text(encoding="utf-8")
    assert page == module.http_api_page(document)
    routes = [(method.upper(), path) for path, ops in document["paths"].items() for method in ops]
    assert len(routes) >= 30
    for method, path in routes:
        assert f"## `{method} {path}`" in page
    assert "INVALID_PARAMETER_VALUE" in page and "`ErrorEnvelope`" in page


def test_a_stale_page_fails_the_check(tmp_path, monkeypatch):
    module = _script()
    stale = tmp_path / "cli.md"
    stale.write_text("# stale\n", encoding="utf-8")
    monkeypatch.setattr(module, "pages", lambda: {stale: lambda _current: module.cli_page()})
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["reference-pages.py", "--check"])
    assert module.main() == 1
    monkeypatch.setattr(sys, "argv", ["reference-pages.py"])
    assert module.main() == 0
    assert stale.read_text(encoding="utf-8") == module.cli_page()
