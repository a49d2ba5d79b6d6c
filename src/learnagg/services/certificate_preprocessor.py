"""The certificate pre-processor (SPEC §4.4): issue-certificate requests → generate-certificate requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from learnagg.services.jobs import BatchResult, Incoming

COLLECTION_CERT_PRE_PROCESSOR = "CollectionCertPreProcessor"
COUNTERS: dict[str, str] = {}


def parse_certificate_request(raw: object) -> Any:
    """Placeholder until the job is built."""
    return raw


class CertificatePreProcessor:
    """Placeholder until the job is built."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def handle(self, conn: Connection, batch: Sequence[Incoming[Any]]) -> BatchResult:
        """Placeholder: handles nothing."""
        return BatchResult()
