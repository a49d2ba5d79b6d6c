"""The exhaust runner (docs/batch.md#exhaust-reports): pending requests → report files → SUCCESS or FAILED.

Claims: a request is taken with one conditional update to PROCESSING with a lease (`lease_until`) and this run as
its holder (`lease_owner`). The update only matches the request as this run read it (status, iteration, submission
time) and still pickable, so a runner holding an older read cannot take a request another runner has finished or
failed meanwhile. The lease is renewed by a heartbeat while the request runs, and every later write (produced
batches, outcome) only applies while this run still holds it: two runners (`learnagg serve` and `learnagg exhaust
run`, on any machines) never produce the same request twice (docs/batch.md). Each finished batch is recorded in
`processed_batches` at once: after a crash the request is picked again when its lease has ended, and only the
batches not yet recorded are produced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.engine import RowMapping

from learnagg.adapters.exhaust_keys import ExhaustKeys, KeyUnreadable, exhaust_keys
from learnagg.adapters.objectstore import ObjectStore, ObjectStoreError
from learnagg.adapters.store.batch_leases import new_owner, renewing
from learnagg.adapters.store.tables import course, course_batch, job_request
from learnagg.app import App
from learnagg.batch.exhaust_files import BatchError, ReportWriter, produce_batch, write_report
from learnagg.batch.spark.reports import write_report_spark
from learnagg.batch.spark.session import engine_of
from learnagg.domain import exhaust as dx
from learnagg.errors import first_line
from learnagg.streams.loop import LoopService

log = logging.getLogger("learnagg.exhaust")
_j = job_request.c
RETIRED_STATUS = "retired"


@dataclass
class RunSummary:
    """What one run did (the `--json` object of `learnagg exhaust run`)."""

    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    requeued: int = 0  # back to SUBMITTED: the channel's limits for this run were reached (docs/batch.md)
    duplicates: int = 0  # requests that copied the outcome of an identical one (docs/batch.md#exhaust-reports)
    lost: int = 0  # requests whose lease another runner took over: that runner finishes them
    batches: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Batch:
    """A resolved batch of a request (docs/batch.md#exhaust-reports)."""

    batch_id: str
    course_id: str
    course_status: str | None


@dataclass
class Outcome:
    """How a request ends: the column values copied to every identical request (docs/batch.md#exhaust-reports)."""

    status: str
    values: dict[str, Any]


def pickable(now: int, batch_number: int | None) -> Any:
    """SUBMITTED, or FAILED with iteration < 3, plus PROCESSING requests whose lease has ended (docs/batch.md)."""
    iteration_ok = func.coalesce(_j.iteration, 0) < dx.MAX_ITERATIONS
    stale = and_(_j.status == dx.PROCESSING, or_(_j.lease_until.is_(None), _j.lease_until < now))
    where = and_(iteration_ok, or_(_j.status.in_((dx.SUBMITTED, dx.FAILED)), stale))
    return where if batch_number is None else and_(where, _j.batch_number == batch_number)


def _same(column: Any, value: Any) -> Any:
    """``column`` equals ``value``, null included."""
    return column.is_(None) if value is None else column == value


def resolve_batches(conn: Connection, sel: dx.BatchSelection) -> list[Batch]:
    """The batches of a selection from `course_batch`, in request order (search: by batch id; docs/batch.md)."""
    b, c = course_batch.c, course.c
    stmt = select(b.batchid, b.courseid, c.status).select_from(
        course_batch.outerjoin(course, c.course_id == b.courseid)
    )
    if not sel.search:
        if not sel.batch_ids:
            return []
        found = {r.batchid: Batch(*r) for r in conn.execute(stmt.where(b.batchid.in_(sel.batch_ids)))}
        return [found[i] for i in sel.batch_ids if i in found]
    if sel.course_ids is None and sel.channel is None:
        return []  # a search without filters selects nothing rather than every batch of the platform
    if sel.course_ids is not None:
        stmt = stmt.where(b.courseid.in_(sel.course_ids))
    if sel.channel is not None:
        stmt = stmt.where(c.channel == sel.channel)
    return sorted((Batch(*r) for r in conn.execute(stmt)), key=lambda x: x.batch_id)


class ExhaustRunner:
    """One run over the pending requests of some datasets (docs/batch.md#exhaust-reports)."""

    def __init__(
        self,
        app: App,
        blobs: ObjectStore,
        *,
        keys: ExhaustKeys | None = None,
        datasets: Sequence[str] | None = None,
        stopping: Callable[[], bool] = lambda: False,
        engine: str | None = None,
    ) -> None:
        """Run ``datasets`` (both exhausts when None) on ``engine`` (setting ``batch.engine`` when None; docs/spark.md);
        ``stopping`` is asked between requests."""
        self.write: ReportWriter = write_report_spark if engine_of(app.settings, engine) == "spark" else write_report
        self.app = app
        self.blobs = blobs
        self.keys = keys or exhaust_keys(app.settings.exhaust.secret_key, app.store, app.clock())
        self.datasets = list(datasets or dx.REPORT_KEYS)
        self.stopping = stopping
        self.settings = app.settings.exhaust
        self.usage: dict[str, list[int]] = {}  # channel → [batches, bytes] produced in this run (docs/batch.md)
        self.summary = RunSummary()
        self.owner = new_owner()
        self.lost = threading.Event()  # set by the heartbeat when a claimed request is no longer this run's

    def run(self) -> RunSummary:
        """Process every pending request once, dataset after dataset, in `dt_job_submitted` order."""
        started = time.perf_counter()
        for dataset in self.datasets:
            for group in self._groups(dataset):
                if self.stopping():
                    break
                self._run_group(group)
        self.summary.seconds = round(time.perf_counter() - started, 3)
        return self.summary

    def _groups(self, dataset: str) -> list[list[tuple[RowMapping, str | None]]]:
        """Pending requests grouped by their dedup hash (and channel), each with its clear password."""
        now = self.app.clock()
        stmt = (
            select(job_request)
            .where(_j.job_id == dataset, pickable(now, self.settings.batch_number))
            .order_by(_j.dt_job_submitted, _j.request_id)
        )
        with self.app.store.read() as conn:
            rows = list(conn.execute(stmt).mappings())
        groups: dict[Any, list[tuple[RowMapping, str | None]]] = {}
        for row in rows:
            try:
                password = self.keys.decrypt(row["encryption_key"])
                # The channel too: step 7 keeps other channels' learners out, so two channels never share files.
                key: Any = (dx.dedup_hash(row["request_data"], password, row["requested_by"]), row["requested_channel"])
            except KeyUnreadable:
                password, key = None, ("unreadable", row["request_id"])
            groups.setdefault(key, []).append((row, password))
        return list(groups.values())

    def _claim(self, row: RowMapping) -> bool:
        now = self.app.clock()
        stmt = (
            update(job_request)
            .where(
                _j.request_id == row["request_id"],
                pickable(now, self.settings.batch_number),
                # Unchanged since it was read: another runner may have run it meanwhile.
                _j.status == row["status"],
                func.coalesce(_j.iteration, 0) == (row["iteration"] or 0),
                _same(_j.dt_job_submitted, row["dt_job_submitted"]),
                _same(_j.lease_until, row["lease_until"]),
            )
            .values(status=dx.PROCESSING, lease_until=now + self.settings.lease_seconds * 1000, lease_owner=self.owner)
        )
        with self.app.store.write() as conn:
            return bool(conn.execute(stmt).rowcount)

    def _run_group(self, group: list[tuple[RowMapping, str | None]]) -> None:
        claimed = [(row, password) for row, password in group if self._claim(row)]
        if not claimed:
            return
        self.lost.clear()
        ids = [row["request_id"] for row, _ in claimed]
        leader, password = claimed[0]
        self.summary.requests += len(ids)
        self.summary.duplicates += len(ids) - 1
        started = time.perf_counter()
        with self._heartbeat(ids):
            try:
                outcome = self._process(leader, password, ids)
            except Exception as exc:  # any other error fails the request, the run goes on (docs/batch.md)
                log.exception("exhaust request %s failed", leader["request_id"])
                outcome = self._failed([dx.internal_error(first_line(exc))])
        if outcome.status in (dx.SUCCESS, dx.FAILED):
            outcome.values["execution_time"] = int((time.perf_counter() - started) * 1000)
        self._finish(claimed, outcome)

    def _heartbeat(self, ids: list[str]) -> AbstractContextManager[None]:
        """Renew the lease of the claimed requests every third of its length while they are processed."""
        lease_ms = self.settings.lease_seconds * 1000

        def beat() -> None:
            with self.app.store.write() as conn:
                renewed = conn.execute(
                    update(job_request)
                    .where(_j.request_id.in_(ids), _j.status == dx.PROCESSING, _j.lease_owner == self.owner)
                    .values(lease_until=self.app.clock() + lease_ms)
                ).rowcount
            if renewed < len(ids):
                self.lost.set()

        return renewing(self.settings.lease_seconds / 3, beat, f"exhaust requests {', '.join(ids)}")

    def _failed(self, messages: list[str]) -> Outcome:
        return Outcome(dx.FAILED, {"err_message": dx.err_message(messages), "download_urls": []})

    def _process(self, row: RowMapping, password: str | None, ids: list[str]) -> Outcome:
        """Steps 3–8 for one request; the batches it produces are recorded for every identical request."""
        if row["encryption_key"] and password is None:
            return self._failed(["the request's encryption key cannot be decrypted with the current secret"])
        limit = self.settings.batch_limit_per_request
        sel = dx.selection(row["request_data"], limit)
        if isinstance(sel, str):
            return self._failed([sel])
        with self.app.store.read() as conn:
            batches = resolve_batches(conn, sel)
        if not batches:
            return self._failed([dx.NO_DATA])
        batches = [b for b in batches if (b.course_status or "").lower() != RETIRED_STATUS]
        if not batches:
            return self._failed([dx.RETIRED])
        if len(batches) > limit:
            return self._failed([dx.batch_limit_message(limit)])
        processed: list[dict[str, Any]] = [p for p in row["processed_batches"] or [] if isinstance(p, dict)]
        done = {p.get("batchId") for p in processed}
        channel = row["requested_channel"]
        usage = self.usage.setdefault(channel, [0, 0])
        encryption = (row["request_data"] or {}).get("zipEncryption") or self.settings.zip.encryption
        errors: list[str] = []
        for batch in batches:
            if batch.batch_id in done:
                continue
            if self.lost.is_set():
                return Outcome(dx.PROCESSING, {})  # another runner holds the request now: stop producing
            if usage[0] >= self.settings.batches_per_channel or usage[1] >= self.settings.file_size_per_channel:
                return Outcome(dx.SUBMITTED, {"processed_batches": processed})
            try:
                produced = produce_batch(
                    self.app,
                    self.blobs,
                    job_id=row["job_id"],
                    request_id=row["request_id"],
                    batch_id=batch.batch_id,
                    course_id=batch.course_id,
                    channel=channel,
                    now=self.app.clock(),
                    password=password,
                    encryption=encryption,
                    write=self.write,
                )
            except BatchError as exc:
                errors.append(str(exc))
                continue
            except ObjectStoreError as exc:
                errors.append(f"Batch {batch.batch_id}: {first_line(exc)}")
                continue
            entry = {"channel": channel, "batchId": batch.batch_id, "filePath": produced.key, "fileSize": produced.size}
            processed.append(entry)
            usage[0] += 1
            usage[1] += produced.size
            self.summary.batches += 1
            self.summary.bytes += produced.size
            if not self._record(ids, processed):
                return Outcome(dx.PROCESSING, {})
        if errors:
            failed = self._failed(errors)
            failed.values["processed_batches"] = processed
            return failed
        urls = [p["filePath"] for p in processed if isinstance(p.get("filePath"), str)]
        return Outcome(dx.SUCCESS, {"download_urls": urls, "processed_batches": processed, "err_message": None})

    def _record(self, ids: list[str], processed: list[dict[str, Any]]) -> bool:
        """Keep the produced batches at once (the resume point after a crash); False when the lease was lost."""
        now = self.app.clock()
        with self.app.store.write() as conn:
            done = conn.execute(
                update(job_request)
                .where(_j.request_id.in_(ids), _j.lease_owner == self.owner, _j.status == dx.PROCESSING)
                .values(processed_batches=processed, dt_file_created=now)
            ).rowcount
            if done < len(ids):
                self.lost.set()
        return not self.lost.is_set()

    def _finish(self, claimed: list[tuple[RowMapping, str | None]], outcome: Outcome) -> None:
        """Write the outcome to every claimed request; each FAILED adds 1 to its own iteration (step 6)."""
        if outcome.status == dx.PROCESSING:  # the lease was lost: the new holder writes the outcome
            self.summary.lost += len(claimed)
            return
        now = self.app.clock()
        values = {**outcome.values, "status": outcome.status, "lease_until": None, "lease_owner": None}
        if outcome.status in (dx.SUCCESS, dx.FAILED):
            values["dt_job_completed"] = now
        mine = list(claimed)
        with self.app.store.write() as conn:
            for row, p in claimed:
                extra = {"iteration": (row["iteration"] or 0) + 1} if outcome.status == dx.FAILED else {}
                written = conn.execute(
                    update(job_request)
                    .where(_j.request_id == row["request_id"], _j.lease_owner == self.owner)
                    .values(**values, **extra)
                ).rowcount
                if not written:  # taken over after a missed heartbeat: that runner's outcome stands
                    mine.remove((row, p))
                    self.summary.lost += 1
        claimed = mine
        if outcome.status == dx.SUCCESS:
            self.summary.succeeded += len(claimed)
        elif outcome.status == dx.FAILED:
            self.summary.failed += len(claimed)
            for row, _ in claimed:
                self.summary.failures.append({"requestId": row["request_id"], "error": values["err_message"]})
        else:
            self.summary.requeued += len(claimed)


def run_exhaust(
    app: App,
    blobs: ObjectStore,
    *,
    datasets: Sequence[str] | None = None,
    keys: ExhaustKeys | None = None,
    stopping: Callable[[], bool] = lambda: False,
    engine: str | None = None,
) -> RunSummary:
    """Run the pending exhaust requests once (docs/batch.md#exhaust-reports).

    Args:
        app: the application (store, clock, settings ``exhaust.*``, ``report.*``, ``archival.prefix``).
        blobs: where report files go (and archived attempts are read from).
        datasets: ``progress-exhaust`` and/or ``response-exhaust``; both when None.
        keys: the exhaust keys (built from the settings or the database when None).
        stopping: asked between requests; True ends the run early.
        engine: ``python`` or ``spark`` (docs/spark.md); setting ``batch.engine`` when None.
    """
    return ExhaustRunner(app, blobs, keys=keys, datasets=datasets, stopping=stopping, engine=engine).run()


class ExhaustService(LoopService):
    """The runner inside `learnagg serve` (embedded mode): one run every ``exhaust.poll_interval_seconds``."""

    def __init__(self, app: App, blobs: ObjectStore) -> None:
        """Run over ``app``'s store, writing files to ``blobs``."""
        super().__init__()
        self.app = app
        self.blobs = blobs
        self.poll_interval = app.settings.exhaust.poll_interval_seconds

    def run_once(self) -> int:
        """One run; returns the number of requests processed (errors are logged, never raised)."""
        try:
            summary = run_exhaust(self.app, self.blobs, stopping=lambda: self.stopping)
        except Exception:  # the database or the store is down: try again at the next tick
            log.exception("exhaust run failed")
            return 0
        if summary.requests:
            log.info("exhaust run: %s", summary.to_json())
        return summary.requests

    def start(self, loops: int | None = None, *, until_idle: bool = False) -> int:
        """Run every poll interval until stopped (or ``loops`` times): a busy run does not start the next one at
        once, so a channel over its limits waits for the next tick (docs/batch.md#exhaust-reports)."""
        total = done = 0
        while not self.stopping and (loops is None or done < loops):
            handled = self.run_once()
            total += handled
            done += 1
            if until_idle and handled == 0:
                break
            if loops is None or done < loops:
                self._stop.wait(self.poll_interval)
        return total
