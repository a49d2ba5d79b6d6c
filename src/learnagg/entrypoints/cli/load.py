"""`learnagg load …`: bulk loads of platform data."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer

from learnagg.domain.hierarchy import InvalidHierarchy, parse_hierarchy
from learnagg.entrypoints.cli.common import open_app, open_input
from learnagg.errors import InputError
from learnagg.services.courses import load_courses

app = typer.Typer(help="Load platform data in bulk.", no_args_is_help=True)


@app.command("courses")
def courses(
    file: Annotated[str, typer.Argument(help="JSON lines, one SPEC §5.9 hierarchy object per line; - for stdin.")],
) -> None:
    """Load course hierarchies; a bad line refuses the whole file, naming its line number."""
    items: list[tuple[Any, Any]] = []
    with open_input(file) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                hierarchy = obj.get("hierarchy", obj) if isinstance(obj, dict) else obj
                items.append((parse_hierarchy(hierarchy), hierarchy))
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{file}:{number}: not JSON: {exc}") from exc
            except InvalidHierarchy as exc:
                raise InputError(f"{file}:{number}: {exc}") from exc
    with open_app() as la, la.store.write() as conn:
        count = load_courses(conn, la.store.dialect, items, la.clock())
    print(f"loaded {count} course(s)", file=sys.stderr)
