"""`learnagg load …`: bulk loads of platform data (courses, users, batches, groups, enrolments)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, TypeVar

import orjson
import typer
from pydantic import ValidationError
from sqlalchemy import Connection

from learnagg import bootstrap
from learnagg.domain import bounds, hierarchy
from learnagg.domain.hierarchy import InvalidHierarchy, parse_hierarchy
from learnagg.entrypoints.api.schemas.groups import GroupLoad
from learnagg.entrypoints.api.schemas.platform import BatchCreate, EnrolmentLoad, UserIn
from learnagg.entrypoints.api.validation import RequestModel, to_api_error
from learnagg.entrypoints.cli.common import input_lines, open_app
from learnagg.errors import InputError
from learnagg.services.batches import ItemRefused, create_batches
from learnagg.services.courses import load_courses
from learnagg.services.enrolments import load_enrolments
from learnagg.services.groups import insert_groups
from learnagg.services.users import upsert_users

app = typer.Typer(help="Load platform data in bulk.", no_args_is_help=True)

M = TypeVar("M", bound=RequestModel)
FileArg = Annotated[str, typer.Argument(help="JSON lines, one object per line; - for stdin.")]
# A course tree nests two JSON levels (an object in a `children` list) per hierarchy level, and the hierarchy
# parser refuses trees deeper than its own limit with a better message: the JSON nesting bound starts below it.
_TREE_LEVEL = -2 * (hierarchy.MAX_DEPTH + 1)


def _bounded(file: str, number: int, obj: Any, level: int = 0) -> Any:
    """The decoded line, refused (``FILE:LINE: …``) when it holds a NUL character or nests too deep."""
    rule = bounds.json_violation(obj, level=level)
    if rule is not None:
        raise InputError(f"{file}:{number}: the line {rule}")
    return obj


@app.command("courses")
def courses(
    file: Annotated[str, typer.Argument(help="JSON lines, one course hierarchy per line (docs/api.md); - for stdin.")],
) -> None:
    """Load course hierarchies; a bad line refuses the whole file, naming its line number."""
    items: list[tuple[Any, Any]] = []
    for number, line in input_lines(file):
        if not line.strip():
            continue
        try:
            obj = _bounded(file, number, orjson.loads(line), _TREE_LEVEL)
            tree = obj.get("hierarchy", obj) if isinstance(obj, dict) else obj
            items.append((parse_hierarchy(tree), tree))
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{file}:{number}: not JSON: {exc}") from exc
        except InvalidHierarchy as exc:
            raise InputError(f"{file}:{number}: {exc}") from exc
    with open_app() as la, la.store.write() as conn:
        count = load_courses(conn, la.store.dialect, items, la.clock())
    print(f"loaded {count} course(s)", file=sys.stderr)


def _objects(file: str) -> Iterator[tuple[int, Any]]:
    """(line number, decoded object) of every non-blank line; a ``{"request": {...}}`` wrapper is unwrapped."""
    for number, line in input_lines(file):
        if not line.strip():
            continue
        try:
            obj = _bounded(file, number, orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{file}:{number}: not JSON: {exc}") from exc
        if isinstance(obj, dict) and isinstance(obj.get("request"), dict):
            obj = obj["request"]
        yield number, obj


def _parse(file: str, model: type[M]) -> tuple[list[M], list[int]]:
    """Every line checked with the API's request model; the first bad line refuses the file (``FILE:LINE: why``)."""
    items: list[M] = []
    numbers: list[int] = []
    for number, obj in _objects(file):
        try:
            items.append(model.model_validate(obj))
        except ValidationError as exc:
            raise InputError(f"{file}:{number}: {to_api_error(exc.errors()).message}") from exc
        numbers.append(number)
    return items, numbers


def _write(file: str, numbers: Sequence[int], write: Callable[[Connection, bootstrap.App], int], things: str) -> None:
    """Run ``write`` in one write transaction; a refused item names its line and nothing is written."""
    with open_app() as la:
        try:
            with la.store.write() as conn:
                count = write(conn, la)
        except ItemRefused as exc:
            raise InputError(f"{file}:{numbers[exc.index]}: {exc.message}") from exc
    print(f"loaded {count} {things}", file=sys.stderr)


@app.command("users")
def load_users(file: FileArg) -> None:
    """Load users: one `POST /v1/user/load` user object per line; each is a full upsert (docs/api.md)."""
    items, numbers = _parse(file, UserIn)
    records = [u.record() for u in items]
    _write(file, numbers, lambda conn, la: upsert_users(conn, la.store.dialect, records), "user(s)")


@app.command("batches")
def load_batches(file: FileArg) -> None:
    """Load batches: one `POST /v1/course/batch/create` request per line; a batch loaded again is replaced."""
    items, numbers = _parse(file, BatchCreate)
    batches = [b.to_batch() for b in items]

    def write(conn: Connection, la: bootstrap.App) -> int:
        zone = la.settings.timezone
        ids = create_batches(conn, la.store.dialect, batches, created_by=None, now=la.clock(), zone=zone, replace=True)
        return len(ids)

    _write(file, numbers, write, "batch(es)")


@app.command("groups")
def load_groups(file: FileArg) -> None:
    """Load groups: a `POST /v1/group/create` request per line, plus optional ``id``, ``createdBy`` and member
    ``status`` (``active``, ``inactive`` or ``invited``, kept as given: no member consent applies to an operator's
    file); a group loaded again is updated, its listed members overwritten."""
    items, numbers = _parse(file, GroupLoad)
    new = [g.to_group() for g in items]
    _write(
        file,
        numbers,
        lambda conn, la: insert_groups(conn, la.store.dialect, new, la.clock(), replace=True),
        "group(s)",
    )


@app.command("enrolments")
def load_enrolments_command(file: FileArg) -> None:
    """Load enrolments: ``{userId, courseId, batchId, status?, progress?, enrolledDate?, completedOn?}`` per line
    (epoch ms); each becomes an active enrolment, other columns of an existing row are kept."""
    items, numbers = _parse(file, EnrolmentLoad)
    records = [e.record() for e in items]

    def write(conn: Connection, la: bootstrap.App) -> int:
        return load_enrolments(conn, la.store.dialect, records, now=la.clock(), zone=la.settings.timezone)

    _write(file, numbers, write, "enrolment(s)")
