"""Packaging and CLI conventions: `python -m learnagg`, `--version`, shell completion, optional extras."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import learnagg
from learnagg.entrypoints.cli import main

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# The packages of the optional extras; the embedded default (SQLite, embedded log, local folder) needs none.
EXTRA_MODULES = ("psycopg", "redis", "s3fs", "pyspark", "psutil")
# Runs the CLI with the extras' packages made unimportable, as in an install without extras.
WITHOUT_EXTRAS = (
    "import sys\n"
    f"for name in {EXTRA_MODULES!r}:\n"
    "    sys.modules[name] = None\n"
    "from learnagg.entrypoints.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNAGG_")}
    return env | settings


def _without_extras(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = _env(**({"LEARNAGG_DATABASE_URL": f"sqlite:///{tmp_path}/learnagg.db"} | settings))
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_python_dash_m_learnagg_is_the_cli(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "learnagg", "--help"], cwd=tmp_path, env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: learnagg" in done.stdout and "worker" in done.stdout and "--version" in done.stdout
    version = subprocess.run(
        [sys.executable, "-m", "learnagg", "--version"], cwd=tmp_path, env=_env(), capture_output=True, text=True
    )
    assert (version.returncode, version.stdout) == (0, f"learnagg {learnagg.__version__}\n")


def test_version_is_the_installed_distribution_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"learnagg {metadata.version('learnagg')}\n"
    assert learnagg.__version__ == metadata.version("learnagg")


def test_shell_completion_is_on(tmp_path):
    env = _env(_LEARNAGG_COMPLETE="complete_bash", COMP_WORDS="learnagg se", COMP_CWORD="1")
    done = subprocess.run([sys.executable, "-m", "learnagg"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert {"serve", "settings"} <= set(done.stdout.split())
    assert main(["--help"]) == 0


def test_the_license_is_an_spdx_expression_and_the_version_has_one_source():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"  # the table form is deprecated by setuptools and warns on every install
    assert "version" in project["dynamic"] and "version" not in project
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "learnagg.__version__"}


def test_backends_are_extras_and_the_test_extra_includes_them():
    core = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"postgres", "redis", "s3", "spark", "bench", "test"} <= set(extras)
    assert not core & {"psycopg", "redis", "s3fs", "pyspark", "psutil"}
    assert "cryptography" in core  # imported by adapters/exhaust_keys.py
    test_extra = {Requirement(r).name: Requirement(r).extras for r in extras["test"]}
    assert {"postgres", "redis", "bench"} <= test_extra["learnagg"]


def _module_level_imports(path: Path) -> set[str]:
    """Top-level package names imported when the module loads (imports inside functions are lazy)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _core_closure() -> set[str]:
    """The distributions installed by `pip install learnagg` without extras."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        for raw in metadata.requires(req.name) or []:
            sub = Requirement(raw)
            wanted = [{"extra": extra} for extra in req.extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in wanted):
                todo.append(sub)
    return seen


def test_every_module_level_import_is_a_core_dependency():
    provided = metadata.packages_distributions()
    closure = _core_closure()
    missing = []
    for path in sorted((ROOT / "src" / "learnagg").rglob("*.py")):
        for name in _module_level_imports(path) - set(sys.stdlib_module_names) - {"learnagg"}:
            dists = {canonicalize_name(d) for d in provided.get(name, [name])}
            if not dists & closure:
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert missing == []


def test_the_embedded_default_runs_without_any_extra(tmp_path):
    done = _without_extras(tmp_path, "demo", "--learners", "2")
    assert done.returncode == 0, done.stderr
    assert "worker:" in done.stdout and "0 failed" in done.stdout


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"LEARNAGG_DATABASE_URL": "postgresql://u@127.0.0.1:9/x"}, "pip install 'learnagg[postgres]'"),
        (
            {"LEARNAGG_REDIS_URL": "redis://127.0.0.1:9/0", "LEARNAGG_GROUP_AGG__CACHE__ENABLED": "true"},
            "LEARNAGG_REDIS_URL needs the package redis: pip install 'learnagg[redis]'",
        ),
    ],
)
def test_a_configured_backend_without_its_extra_is_one_line_naming_it(tmp_path, settings, expected):
    done = _without_extras(tmp_path, "init", **settings)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("learnagg: error: ") and expected in line


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LEARNAGG_WORKER__BATCH_SIZE", "abc", "invalid setting LEARNAGG_WORKER__BATCH_SIZE: Input should be"),
        ("LEARNAGG_AUTH__MODE", "s3cr3t-mode", "invalid setting LEARNAGG_AUTH__MODE: Input should be 'jwt' or"),
        ("LEARNAGG_AUTH__PUBLIC_KEYS", "not-json", 'invalid settings: error parsing value for field "auth"'),
    ],
)
def test_an_invalid_setting_is_one_line_naming_its_variable(tmp_path, capsys, monkeypatch, variable, value, expected):
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", f"sqlite:///{tmp_path}/learnagg.db")
    monkeypatch.setenv(variable, value)
    assert main(["init"]) == 1
    _, err = capsys.readouterr()
    [line] = err.strip().splitlines()
    assert line.startswith(f"learnagg: error: {expected}") and "s3cr3t" not in line, line
