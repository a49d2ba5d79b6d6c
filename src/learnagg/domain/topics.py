"""Topic names of docs/reference/events.md and the short aliases the CLI accepts."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

ALIASES = {
    "assess": "telemetry.assess",
    "progress": "coursebatch.job.request",
    "certificate": "issue.certificate.request",
}


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one environment (`{env}.…`)."""

    env: str = "dev"

    def name(self, suffix: str) -> str:
        """``{env}.<suffix>``."""
        return f"{self.env}.{suffix}"

    @property
    def assess(self) -> str:
        """Assessment batch events (docs/reference/events.md#e1)."""
        return self.name("telemetry.assess")

    @property
    def assess_failed(self) -> str:
        """Failed assessment events."""
        return self.name("telemetry.assess.failed")

    @property
    def progress(self) -> str:
        """Progress events (docs/reference/events.md#e2)."""
        return self.name("coursebatch.job.request")

    @property
    def activity_failed(self) -> str:
        """Failed progress events."""
        return self.name("activity.agg.failed")

    @property
    def certificate_request(self) -> str:
        """Issue-certificate requests (docs/reference/events.md#e3)."""
        return self.name("issue.certificate.request")

    @property
    def certificate_failed(self) -> str:
        """Failed issue-certificate requests."""
        return self.name("issue.certificate.failed")

    @property
    def certificate_generate(self) -> str:
        """Generate-certificate requests (docs/reference/events.md#e4)."""
        return self.name("generate.certificate.request")

    @property
    def contentstate_invalid(self) -> str:
        """Content-state items refused for another user (docs/api.md#content-state-and-assessments)."""
        return self.name("contentstate.invalid")

    def resolve(self, topic: str) -> str:
        """A full topic name from an alias (``assess``), a suffix (``telemetry.assess``) or a full name."""
        if topic in ALIASES:
            return self.name(ALIASES[topic])
        if topic.startswith(f"{self.env}."):
            return topic
        return self.name(topic)


def partition_key(key: str | None, payload: str) -> str | None:
    """The key an event is partitioned by (docs/scale-out.md): the given key, else the learner, else the mid.

    The learner is ``userId`` (assessment events), ``edata.userId`` (progress) or the first of ``edata.userIds``
    (certificate requests); None when the payload names none of these (it is then placed by its own text).
    """
    if key:
        return key
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    user = value.get("userId")
    if isinstance(user, str) and user:
        return user
    edata = value.get("edata")
    if isinstance(edata, dict):
        user = edata.get("userId")
        if isinstance(user, str) and user:
            return user
        users = edata.get("userIds")
        if isinstance(users, list) and users and isinstance(users[0], str) and users[0]:
            return str(users[0])
    mid = value.get("mid")
    return mid if isinstance(mid, str) and mid else None


def partition_of(key: str | None, payload: str, partitions: int) -> int:
    """``crc32(key) mod partitions``; an event without a key is placed by the crc32 of its payload text."""
    if partitions <= 1:
        return 0
    chosen = partition_key(key, payload)
    return zlib.crc32((chosen if chosen is not None else payload).encode("utf-8", "surrogatepass")) % partitions
