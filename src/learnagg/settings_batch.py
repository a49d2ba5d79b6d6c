"""The settings sections of the batch jobs (archival, migrations, imports, reports and their runner); the tree that
holds them is `learnagg.settings.Settings`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ArchivalSettings(BaseModel):
    """Assessment archival (docs/batch.md#assessment-archival)."""

    prefix: str = Field(default="archived-data/", description="Key prefix of archived files in the object store.")
    chunk_rows: int = Field(
        default=10_000,
        ge=100,
        description="Rows per database read while archiving a partition (memory stays flat whatever the table size).",
    )
    lease_seconds: float = Field(
        default=60, gt=0, le=3600, description="Seconds a run claims a partition (or archive), renewed while it works."
    )
    workers: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Processes that archive partitions (and delete archives) at once, each under its own lease; "
        "0: one per core.",
    )


class MigrationSettings(BaseModel):
    """The score-metric migration (`learnagg migrate`): rows and learners per transaction."""

    chunk_rows: int = Field(
        default=1000, ge=1, le=1_000_000, description="user_activity_agg rows per transaction (legacy-int step)."
    )
    chunk_learners: int = Field(default=500, ge=1, le=100_000, description="Learners per transaction (backfill step).")


class ImportSettings(BaseModel):
    """`learnagg import`: reference exports loaded in one transaction."""

    chunk_rows: int = Field(default=5000, ge=1, le=1_000_000, description="Rows per batched upsert.")


class ReportSettings(BaseModel):
    """Report files of the exhaust jobs (docs/reference/data-model.md#c3, docs/batch.md#exhaust-reports)."""

    timezone: str = Field(default="Asia/Kolkata", description="Time zone of dates in report files and their names.")


class ExhaustZipSettings(BaseModel):
    """Zip protection of exhaust files (docs/batch.md#exhaust-reports, docs/reference/compatibility.md#12)."""

    encryption: Literal["aes256", "zipcrypto"] = Field(
        default="aes256",
        description="Zip encryption of requests with an encryption key; a request may ask for `zipcrypto` "
        "(`zipEncryption`).",
    )


class ExhaustSettings(BaseModel):
    """Exhaust requests and their runner (docs/api.md#report-requests, docs/batch.md#exhaust-reports)."""

    roles: list[str] = Field(
        default_factory=lambda: ["ORG_ADMIN", "REPORT_ADMIN"],
        description="Callers must hold one of these roles, and their root org must be the `X-Channel-ID`.",
    )
    batch_limit_per_request: int = Field(default=20, ge=1, description="Most batches one exhaust request may name.")
    batches_per_channel: int = Field(
        default=30,
        ge=1,
        description="Batches per channel and per run; once reached, the channel's requests wait for the next run.",
    )
    file_size_per_channel: int = Field(
        default=1 << 30,
        ge=1,
        description="Bytes of report files per channel and per run; once reached, the channel's requests wait for "
        "the next run.",
    )
    url_expiry_minutes: int = Field(default=30, ge=1, description="Lifetime of download links, in minutes.")
    zip: ExhaustZipSettings = Field(default_factory=ExhaustZipSettings)
    poll_interval_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between two runs of the exhaust runner inside `learnagg serve`."
    )
    lease_seconds: int = Field(
        default=300,
        ge=10,
        description="A request being processed is leased this long, renewed while it runs; after a crash it is "
        "picked again (resuming from its processed batches) once the lease has ended.",
    )
    batch_number: int | None = Field(
        default=None, description="Only requests with this `batch_number` are run; unset: every request."
    )
    secret_key: str = Field(
        default="",
        description="Secret from which the keys encrypting `encryption_key` at rest and signing download links are "
        "derived; empty: generated once and kept in the database.",
    )
    public_url: str = Field(
        default="",
        description="Prefix of download links (`https://reports.example.org`); empty: the address the API was "
        "called at.",
    )
    platform_admin_any_channel: bool = Field(
        default=False,
        description="A platform admin may submit, list and download any channel's reports without an exhaust role "
        "there.",
    )
