"""Command-line error paths: usage errors are one line with a help hint, no arguments prints the help once."""

from __future__ import annotations

from pathlib import Path

import pytest

import learnagg
from learnagg.entrypoints.cli import main


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(("argv", "usage"), [([], "Usage: learnagg "), (["load"], "Usage: learnagg load ")])
def test_no_arguments_prints_the_help_once(argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.count(usage) == 1, out
    assert err == ""


def test_unknown_option_is_one_line_with_the_command_help_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--bogus"]) == 2
    assert _one_error_line(capsys) == "learnagg: error: No such option: --bogus (see 'learnagg worker --help')"


def test_unknown_command_is_one_line_with_the_top_level_help_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("learnagg: error: No such command 'nope'")
    assert line.endswith(" (see 'learnagg --help')")


def test_bad_option_value_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "user_activity_agg", "x.csv", "--chunk-rows", "many"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("learnagg: error: Invalid value for '--chunk-rows'")
    assert line.endswith(" (see 'learnagg import --help')")


def test_no_module_imports_typer_private_click_copy() -> None:
    package = Path(learnagg.__file__).parent
    offenders = [str(p.relative_to(package)) for p in package.rglob("*.py") if "typer._click" in p.read_text("utf-8")]
    assert offenders == []
