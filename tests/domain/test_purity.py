"""ARCHITECTURE rule: `domain/` imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import learnagg.domain

DOMAIN = Path(learnagg.domain.__file__).parent


def test_domain_imports_only_the_standard_library_and_itself():
    offenders = []
    for path in sorted(DOMAIN.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if not (name.startswith("learnagg.domain") or top in sys.stdlib_module_names or top == "__future__"):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
