"""The one progress interface: what archival, deletion, the migration and imports report, and settings-sized chunks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from learnagg import bootstrap
from learnagg.adapters.objectstore import ObjectStore
from learnagg.batch.archival import run_archive
from learnagg.batch.archival_delete import run_delete
from learnagg.batch.imports import import_file
from learnagg.batch.migrate_scores import STEP_BACKFILL, STEP_LEGACY, migrate_scores
from learnagg.batch.progress import NoProgress, Phases, Progress
from learnagg.settings import Settings
from tests.batch.test_archival import sample
from tests.batch.test_archival import seed as seed_attempts
from tests.batch.test_migrate_scores import A1_, agg_row, attempt_row
from tests.batch.test_migrate_scores import seed as seed_scores
from tests.conftest import T


@dataclass
class Step:
    """What one step reported: its totals, unit, and every increment."""

    total: int | None
    files: int
    unit: str
    done: list[int] = field(default_factory=list)
    files_done: int = 0


class Recorder:
    """A Progress that keeps every report, step by step."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}

    def start(self, step: str, total: int | None = None, *, files: int = 0, unit: str = "rows") -> None:
        self.steps[step] = Step(total, files, unit)

    def advance(self, step: str, done: int = 0, *, files: int = 0) -> None:
        self.steps[step].done.append(done)
        self.steps[step].files_done += files


def test_the_reporters_satisfy_the_interface():
    said: list[str] = []
    reporters: list[Progress] = [NoProgress(), Phases(said.append), Recorder()]
    for reporter in reporters:
        reporter.start("seeding (not timed)")
        reporter.start("copy", 10, files=2, unit="bytes")
        reporter.advance("copy", 5, files=1)
    assert said == ["seeding (not timed)", "copy"]


def test_archive_then_delete_report_their_rows_and_files(app: bootstrap.App, tmp_path: Path):
    seed_attempts(app, sample())
    blobs = ObjectStore(str(tmp_path / "blobs"))
    archived = Recorder()
    summary = run_archive(app, blobs, progress=archived)
    [(name, step)] = archived.steps.items()
    assert (name, step.total, step.files, step.unit) == ("archive", summary.rows, 4, "rows")
    assert (sum(step.done), step.files_done) == (19, 4)

    deleted = Recorder()
    run_delete(app, blobs, progress=deleted)
    [(name, step)] = deleted.steps.items()
    # Each file is read twice, to verify it and to delete its rows.
    assert (name, step.total, step.files, sum(step.done), step.files_done) == ("verify+delete", 38, 4, 38, 4)


def test_the_migration_reports_both_steps_in_chunks_sized_by_settings(database_url: str):
    settings = Settings(database_url=database_url, migration={"chunk_rows": 2, "chunk_learners": 3})
    app = bootstrap.build(settings, clock=lambda: T)
    try:
        seed_scores(
            app,
            rows=[agg_row(user=f"u{i:02}", agg={"completedCount": i}) for i in range(5)],
            attempts=[attempt_row(A1_, "at-1", float(i), 10.0, 10, user=f"u{i:02}") for i in range(7)],
        )
        progress = Recorder()
        migrate_scores(app, progress=progress)
    finally:
        app.close()
    legacy, backfill = progress.steps[STEP_LEGACY], progress.steps[STEP_BACKFILL]
    assert (legacy.total, legacy.unit, legacy.done) == (5, "rows", [2, 2, 1])
    assert (backfill.total, backfill.unit, backfill.done) == (7, "learners", [3, 3, 1])


def test_arguments_win_over_the_chunk_settings(database_url: str):
    settings = Settings(database_url=database_url, migration={"chunk_rows": 2})
    app = bootstrap.build(settings, clock=lambda: T)
    try:
        seed_scores(app, rows=[agg_row(user=f"u{i:02}", agg={"completedCount": i}) for i in range(5)])
        progress = Recorder()
        migrate_scores(app, legacy_only=True, chunk_rows=4, progress=progress)
    finally:
        app.close()
    assert list(progress.steps) == [STEP_LEGACY]
    assert progress.steps[STEP_LEGACY].done == [4, 1]


EXPORT = "activity_type,activity_id,user_id,context_id,agg\n" + "".join(
    f"Course,do_c1,u{i},cb:b1,{{'completedCount': {i}}}\n" for i in range(5)
)


def test_an_import_reports_the_bytes_of_its_file_in_chunks_sized_by_settings(database_url: str, tmp_path: Path):
    path = tmp_path / "uaa.csv"
    path.write_text(EXPORT)
    app = bootstrap.build(Settings(database_url=database_url, imports={"chunk_rows": 2}), clock=lambda: T)
    try:
        progress = Recorder()
        result = import_file(app, "user_activity_agg", str(path), progress=progress)
    finally:
        app.close()
    assert result.records == 5
    [(name, step)] = progress.steps.items()
    assert (name, step.total, step.unit) == ("user_activity_agg", len(EXPORT), "bytes")
    assert sum(step.done) == len(EXPORT)
    assert len(step.done) == 3  # after the chunks of 2 and 2 rows, and at the end
