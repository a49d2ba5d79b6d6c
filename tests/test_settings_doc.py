"""The settings reference page's table is generated from the settings model and must not drift from it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from learnagg.entrypoints.cli import main
from learnagg.entrypoints.cli.settings_table import (
    TABLE_END,
    TABLE_START,
    iter_settings,
    markdown_table,
    replace_table,
    table_in,
    toml_template,
)
from learnagg.errors import LearnaggError

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reference" / "settings.md"
SCRIPT = ROOT / "scripts" / "settings-table.py"


def test_the_reference_table_is_the_one_generated_from_the_settings_model():
    in_page = table_in(PAGE.read_text(encoding="utf-8"))
    assert in_page == markdown_table(), (
        "docs/reference/settings.md is out of date: run python scripts/settings-table.py"
    )


def test_every_setting_has_one_row_and_a_description():
    settings = list(iter_settings())
    rows = markdown_table().splitlines()[2:]
    assert len(rows) == len(settings) >= 46
    names = [s.env_var for s in settings]
    assert len(set(names)) == len(names)
    # Settings the documentation used to miss are in the table now.
    for name in ("LEARNAGG_ARCHIVAL__PREFIX", "LEARNAGG_REPORT__TIMEZONE", "LEARNAGG_EXHAUST__LEASE_SECONDS"):
        assert any(row.startswith(f"| `{name}` |") for row in rows)


def test_env_var_defaults_and_values_are_rendered():
    rows = {line.split(" | ")[0]: line for line in markdown_table().splitlines()}
    assert rows["| `LEARNAGG_WORKER__BATCH_SIZE`"].startswith("| `LEARNAGG_WORKER__BATCH_SIZE` | `500` | 1 … 100000 |")
    assert "| `LEARNAGG_BUS_URL` | empty |" in rows["| `LEARNAGG_BUS_URL`"]
    assert "`best`, `latest`, `first`, `average`" in rows["| `LEARNAGG_ASSESSMENT__GRADING_METHOD`"]
    assert '`["ORG_ADMIN", "REPORT_ADMIN"]` | JSON list' in rows["| `LEARNAGG_EXHAUST__ROLES`"]
    assert "| unset |" in rows["| `LEARNAGG_EXHAUST__BATCH_NUMBER`"]


def test_a_setting_without_a_description_is_refused():
    class Section(BaseModel):
        described: int = Field(default=1, description="A described value.")
        bare: int = 2

    class Root(BaseModel):
        section: Section = Field(default_factory=Section)

    with pytest.raises(LearnaggError, match=r"setting section\.bare has no description"):
        list(iter_settings(Root))


def test_the_table_is_replaced_between_the_markers_only():
    text = f"intro\n{TABLE_START}\n| old |\n{TABLE_END}\noutro\n"
    assert replace_table(text, "| new |\n") == f"intro\n{TABLE_START}\n| new |\n{TABLE_END}\noutro\n"
    with pytest.raises(LearnaggError, match="expected one"):
        replace_table("no markers", "| new |\n")
    with pytest.raises(LearnaggError, match="expected one"):
        table_in("no markers")


def test_the_script_checks_and_rewrites_a_page(tmp_path):
    stale = tmp_path / "settings.md"
    stale.write_text(f"# x\n\n{TABLE_START}\n| stale |\n{TABLE_END}\n", encoding="utf-8")
    check = subprocess.run([sys.executable, SCRIPT, "--check", stale], capture_output=True, text=True, check=False)
    assert check.returncode == 1 and "out of date" in check.stderr
    write = subprocess.run([sys.executable, SCRIPT, stale], capture_output=True, text=True, check=False)
    assert write.returncode == 0, write.stderr
    assert table_in(stale.read_text(encoding="utf-8")) == markdown_table()
    again = subprocess.run([sys.executable, SCRIPT, "--check", stale], capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "up to date" in again.stdout


def test_learnagg_settings_prints_the_table(capsys):
    assert main(["settings"]) == 0
    assert capsys.readouterr().out == markdown_table()


def test_the_toml_template_uncommented_gives_the_defaults(capsys):
    assert main(["settings", "--format", "toml"]) == 0
    template = capsys.readouterr().out
    assert template == toml_template()
    assert _leaf_values(tomllib.loads(template)) == []  # only empty tables: every value is commented out
    uncommented = re.sub(r"^# (\w+ = )", r"\1", template, flags=re.MULTILINE)
    values = tomllib.loads(uncommented)
    assert values["worker"]["batch_size"] == 500 and values["database_url"] == "sqlite:///learnagg.db"
    for setting in iter_settings():
        node = values
        for part in setting.path[:-1]:
            node = node[part]
        assert node.get(setting.path[-1]) == setting.default, setting.env_var


def _leaf_values(table: dict[str, object]) -> list[object]:
    found: list[object] = []
    for value in table.values():
        found += _leaf_values(value) if isinstance(value, dict) else [value]
    return found
