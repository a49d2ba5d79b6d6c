"""Exhaust request use cases (docs/api.md#report-requests): submit, read, list, and download a request's files."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import Connection, select, update
from sqlalchemy.engine import RowMapping

from learnagg.adapters.exhaust_keys import ExhaustKeys, KeyUnreadable
from learnagg.adapters.store.tables import job_request, users
from learnagg.app import App
from learnagg.domain import bounds
from learnagg.domain import exhaust as dx
from learnagg.domain.dates import format_date
from learnagg.domain.identity import PLATFORM_ADMIN, Caller
from learnagg.errors import LearnaggError

ORG_ADMIN = "ORG_ADMIN"  # reads every request of its channel (the "an admin")
DOWNLOAD_PATH = "/v1/dataset/request/download"
FORBIDDEN = "You are not authorized."
LINK_INVALID = "Download link is invalid or has expired"
FILE_NOT_FOUND = "File not found"
DEFAULT_LIMIT, MAX_LIMIT = 10, 1000
_LIMIT_DIGITS = 9  # a larger limit means "all" and is cut to MAX_LIMIT anyway
_EXPIRY_DIGITS = 15  # epoch milliseconds until the year 33658
# A tag is part of the table's primary key: PostgreSQL refuses index entries over about 2.7 kB.
MAX_TAG_BYTES = 1000
_j = job_request.c


class ExhaustRefused(LearnaggError):
    """A refused exhaust call, answered with the analytics envelope (docs/api.md#report-requests): HTTP status and
    message."""

    def __init__(self, status: int, message: str) -> None:
        """Refuse with ``status`` (400, 401, 403, 404) and ``message``."""
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Access:
    """A caller allowed on a channel: the requester of their own requests, or an admin of all of them."""

    user_id: str
    channel: str
    admin: bool  # PLATFORM_ADMIN, or ORG_ADMIN of the channel
    platform_admin: bool

    def may_read(self, row: Mapping[str, Any] | RowMapping) -> bool:
        """The issue's rule: only the requester or an admin reads a request (and downloads its files)."""
        return self.admin or row["requested_by"] == self.user_id


def _roles(conn: Connection, caller: Caller) -> tuple[set[str], str | None]:
    row = conn.execute(select(users.c.roles, users.c.root_org_id).where(users.c.id == caller.user_id)).first()
    stored = row.roles if row is not None and isinstance(row.roles, list) else []
    return {r for r in stored if isinstance(r, str)} | set(caller.token_roles), row.root_org_id if row else None


def authorise(conn: Connection, app: App, caller: Caller, channel: str | None) -> Access:
    """docs/api.md#report-requests access: ``X-Channel-ID`` present (400), a role of ``exhaust.roles`` and root org =
    channel (403).

    A platform admin is no exception: reports hold learners' personal data, so they too need an exhaust role with
    the channel's root org, unless ``exhaust.platform_admin_any_channel`` is set (docs/threat-model.md).
    """
    if dx.is_blank(channel):
        raise ExhaustRefused(400, dx.CHANNEL_MISSING)
    assert channel is not None
    roles, root_org = _roles(conn, caller)
    platform_admin = PLATFORM_ADMIN in roles
    if roles & set(app.settings.exhaust.roles) and root_org == channel:
        admin = platform_admin or ORG_ADMIN in roles
        return Access(caller.user_id, channel, admin=admin, platform_admin=platform_admin)
    if platform_admin and app.settings.exhaust.platform_admin_any_channel:
        return Access(caller.user_id, channel, admin=True, platform_admin=True)
    raise ExhaustRefused(403, FORBIDDEN)


def ascii_int(text: str | None, max_digits: int) -> int | None:
    """``text`` as a non-negative integer when it is only ASCII digits, at most ``max_digits`` of them; else None.

    ``str.isdigit`` alone also accepts ``²`` and ``١٢``, which ``int`` then refuses or reads as a number.
    """
    if text is None or not text.isascii() or not text.isdigit() or len(text) > max_digits:
        return None
    return int(text)


def page_size(text: str | None) -> int:
    """The ``limit`` of a list: default 10, a positive integer (400 otherwise), at most :data:`MAX_LIMIT`."""
    if text is None:
        return DEFAULT_LIMIT
    value = ascii_int(text.strip(), _LIMIT_DIGITS)
    if value is None or value < 1:
        raise ExhaustRefused(400, f"limit should be a positive integer, not {text[:32]!r}")
    return min(value, MAX_LIMIT)


def _bounds_error(request: Mapping[str, Any], max_items: int) -> str | None:
    """The first input bound a valid-looking submit body breaks (docs/api.md): tag length, and in datasetConfig
    nesting, NUL, numbers and list lengths; None when every bound holds."""
    if len(request["tag"].encode()) > MAX_TAG_BYTES:
        return f"tag is longer than {MAX_TAG_BYTES} bytes"
    config = request["datasetConfig"]
    rule = bounds.json_violation(config, level=1, numbers=True)
    if rule is not None:
        return bounds.violation("datasetConfig", rule)
    longest = _longest_list(config)  # nesting is bounded by now
    if longest > max_items:
        return f"datasetConfig has a list of {longest} items (at most {max_items})"
    return None


def _longest_list(value: object) -> int:
    if isinstance(value, dict):
        return max((_longest_list(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max([len(value), *(_longest_list(v) for v in value)])  # a list: an empty one is 0
    return 0


Link = Callable[[str, str], str]  # (request id, file name) → a signed, time-limited URL


def job_object(row: Mapping[str, Any] | RowMapping, *, expires_at: int, link: Link) -> dict[str, Any]:
    """The job object of docs/api.md#report-requests; ``dtJobCompleted``, ``executionTime``, links and expiry only when
    finished."""
    status = row["status"]
    finished = status in (dx.SUCCESS, dx.FAILED)
    stats: dict[str, Any] = {"dtJobSubmitted": row["dt_job_submitted"]}
    job: dict[str, Any] = {
        "requestId": row["request_id"],
        "tag": row["tag"],
        "dataset": row["job_id"],
        "requestedBy": row["requested_by"],
        "requestedChannel": row["requested_channel"],
        "status": status,
        "lastUpdated": row["dt_job_completed"] or row["dt_job_submitted"],
        "datasetConfig": row["request_data"],
        "attempts": row["iteration"] or 0,
        "jobStats": stats,
    }
    if finished:
        stats["dtJobCompleted"] = row["dt_job_completed"]
        stats["executionTime"] = row["execution_time"]
        files = [posixpath.basename(k) for k in row["download_urls"] or [] if isinstance(k, str)]
        job["downloadUrls"] = [link(row["request_id"], name) for name in files]
        job["expiresAt"] = expires_at
    job["statusMessage"] = row["err_message"] or ""
    return job


class ExhaustRequests:
    """The use cases of one API call: the app, "now" (docs/reference/data-model.md#c2), the keys and the links' base
    URL."""

    def __init__(self, app: App, keys: ExhaustKeys, now: int, base_url: str) -> None:
        """``base_url`` prefixes download links (setting ``exhaust.public_url`` wins when set)."""
        self.app = app
        self.keys = keys
        self.now = now
        self.base_url = (app.settings.exhaust.public_url or base_url).rstrip("/")
        self.expires_at = now + app.settings.exhaust.url_expiry_minutes * 60_000

    def link(self, request_id: str, file_name: str) -> str:
        """A signed download link valid until ``expires_at``."""
        query = urlencode(
            {"expires": self.expires_at, "signature": self.keys.sign_link(request_id, file_name, self.expires_at)}
        )
        return f"{self.base_url}{DOWNLOAD_PATH}/{quote(request_id)}/{quote(file_name)}?{query}"

    def _job(self, row: RowMapping) -> dict[str, Any]:
        return job_object(row, expires_at=self.expires_at, link=self.link)

    def submit(self, caller: Caller, channel: str | None, body: object) -> dict[str, Any]:
        """``POST …/request/submit``: insert, reopen a failed request, or return the existing one
        (docs/api.md#report-requests)."""
        request: dict[str, Any] = body if isinstance(body, dict) else {}
        settings = self.app.settings
        with self.app.store.write() as conn:
            access = authorise(conn, self.app, caller, channel)
            error = dx.submit_error(request) or _bounds_error(request, settings.api.max_list_items)
            if error is not None:
                raise ExhaustRefused(400, error)
            requested_by = request.get("requestedBy")
            if dx.is_blank(requested_by) or not isinstance(requested_by, str):
                requested_by = access.user_id
            elif requested_by != access.user_id and not access.platform_admin:
                raise ExhaustRefused(403, FORBIDDEN)  # nobody submits in another user's name but a platform admin
            config: dict[str, Any] = request["datasetConfig"]
            day = format_date(self.now, settings.timezone)
            config_type = config.get("type") if "type" in config else None
            rid = dx.request_id(request["dataset"], request["tag"], requested_by, access.channel, day, config_type)
            data = dict(config)
            if request.get("zipEncryption") is not None:
                data["zipEncryption"] = request["zipEncryption"]  # kept with the config: part of the dedup hash
            key = request.get("encryptionKey") if not dx.is_blank(request.get("encryptionKey")) else None
            values = {
                "tag": dx.stored_tag(request["tag"], access.channel),
                "request_id": rid,
                "job_id": request["dataset"],
                "requested_by": requested_by,
                "requested_channel": access.channel,
                "status": dx.SUBMITTED,
                "request_data": data,
                "dt_job_submitted": self.now,
                "iteration": 0,
                "encryption_key": self.keys.encrypt(key),
                "processed_batches": [],
            }
            row = self._submit(conn, values, key)
            return self._job(row)

    def _submit(self, conn: Connection, values: dict[str, Any], key: str | None) -> RowMapping:
        find = self.app.store.dialect.lock_for_update(select(job_request).where(_j.request_id == values["request_id"]))
        row = conn.execute(find).mappings().first()
        if row is None:
            conn.execute(self.app.store.dialect.upsert(job_request), values)  # a concurrent twin: do nothing
        elif row["status"] == dx.FAILED:
            # Same-day resubmission of a failed request: back to SUBMITTED with iteration 0, so the runner tries it
            # again even after three failures (docs/reference/compatibility.md#22); the corrected config and key are
            # taken, and the batches already produced are kept only when neither changed.
            try:
                same_key = self.keys.decrypt(row["encryption_key"]) == key
            except KeyUnreadable:
                same_key = False
            same = same_key and row["request_data"] == values["request_data"]
            conn.execute(
                update(job_request)
                .where(_j.request_id == row["request_id"])
                .values(
                    status=dx.SUBMITTED,
                    request_data=values["request_data"],
                    encryption_key=values["encryption_key"],
                    dt_job_submitted=self.now,
                    dt_job_completed=None,
                    execution_time=None,
                    err_message=None,
                    download_urls=None,
                    iteration=0,
                    lease_until=None,
                    lease_owner=None,
                    processed_batches=row["processed_batches"] if same else [],
                )
            )
        return conn.execute(select(job_request).where(_j.request_id == values["request_id"])).mappings().one()

    def read(self, caller: Caller, channel: str | None, tag: str, request_id: str | None) -> dict[str, Any] | None:
        """``GET …/request/read/{tag}?requestId=…``: the job, or None when no request matches
        (docs/api.md#report-requests)."""
        with self.app.store.read() as conn:
            access = authorise(conn, self.app, caller, channel)
            if dx.is_blank(request_id):
                raise ExhaustRefused(400, dx.REQUEST_ID_EMPTY)
            stmt = select(job_request).where(_j.request_id == request_id, _j.tag == dx.stored_tag(tag, access.channel))
            row = conn.execute(stmt).mappings().first()
        if row is None:
            return None
        if not access.may_read(row):
            raise ExhaustRefused(403, dx.NOT_REQUESTER)
        return self._job(row)

    def list(self, caller: Caller, channel: str | None, tag: str, limit_text: str | None) -> dict[str, Any]:
        """``GET …/request/list/{tag}?limit=N``: newest submission first; others' requests only for admins.

        ``limit`` is read only once the caller is allowed on the channel: refusals come first.
        """
        with self.app.store.read() as conn:
            access = authorise(conn, self.app, caller, channel)
            limit = page_size(limit_text)
            stmt = select(job_request).where(_j.tag == dx.stored_tag(tag, access.channel))
            if not access.admin:
                stmt = stmt.where(_j.requested_by == access.user_id)
            stmt = stmt.order_by(_j.dt_job_submitted.desc(), _j.request_id).limit(limit)
            jobs = [self._job(row) for row in conn.execute(stmt).mappings()]
        return {"count": len(jobs), "jobs": jobs}

    def download(
        self, caller: Caller | None, request_id: str, file_name: str, expires: str | None, signature: str | None
    ) -> str:
        """The object key of one file of a request, once the link or the caller is found allowed.

        A signed link that has not expired is enough on its own; a caller who also presents an identity must be
        the requester or an admin. Without a signature the caller must be the requester or an admin. The link or
        the identity is checked before the request is looked up, and a caller without a link who may not read a
        request is refused the same way whether it exists or not: no answer tells a stranger which exist.
        """
        linked = signature is not None or expires is not None
        if linked:
            expiry = ascii_int(expires, _EXPIRY_DIGITS)
            if expiry is None or expiry <= self.now:
                raise ExhaustRefused(403, LINK_INVALID)
            if not self.keys.link_ok(request_id, file_name, expiry, signature or ""):
                raise ExhaustRefused(403, LINK_INVALID)
        elif caller is None:
            raise ExhaustRefused(401, FORBIDDEN)
        with self.app.store.read() as conn:
            row = conn.execute(select(job_request).where(_j.request_id == request_id)).mappings().first()
            if caller is not None and not self._may_download(conn, caller, row):
                if row is None and linked:
                    raise ExhaustRefused(404, FILE_NOT_FOUND)  # the link proves the request was theirs to know
                raise ExhaustRefused(403, dx.NOT_REQUESTER)
        keys = [k for k in (row["download_urls"] or []) if isinstance(k, str)] if row is not None else []
        key = next((k for k in keys if posixpath.basename(k) == file_name), None)
        if key is None:
            raise ExhaustRefused(404, FILE_NOT_FOUND)
        return key

    def _may_download(self, conn: Connection, caller: Caller, row: RowMapping | None) -> bool:
        if row is None:
            return False
        try:
            return authorise(conn, self.app, caller, row["requested_channel"]).may_read(row)
        except ExhaustRefused:
            return False
