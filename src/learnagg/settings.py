"""One typed settings tree (pydantic-settings, prefix ``LEARNAGG_``, nested with ``__``), SPEC setting names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

GradingMethod = Literal["best", "latest", "first", "average"]


class AttemptsSettings(BaseModel):
    """How many attempts the read APIs return (SPEC §5.6, §5.8)."""

    limit: int = Field(default=25, ge=1, le=1000)


class AssessmentSettings(BaseModel):
    """Assessment aggregator settings (SPEC §4.1, §4.2)."""

    grading_method: GradingMethod = "best"
    strict_leaf_validation: bool = False
    question_count_guard: bool = True
    agg_details_type: str = "attempt_metrics"
    supported_content_types: list[str] = Field(default_factory=lambda: ["SelfAssess"])
    # Report assessments (SPEC §6.4): a leaf whose object type is listed AND whose primary category is listed.
    supported_object_types: list[str] = Field(default_factory=lambda: ["QuestionSet"])
    supported_primary_categories: list[str] = Field(default_factory=list)
    attempts: AttemptsSettings = Field(default_factory=AttemptsSettings)
    # Most answers one attempt may carry, counted before de-duplication (input bounds, docs/threat-model.md).
    max_questions: int = Field(default=1000, ge=1, le=1_000_000)


class LegacySettings(BaseModel):
    """How legacy values written by the reference platform are read (SPEC §2.1)."""

    date_zone: str = "UTC"


class WorkerSettings(BaseModel):
    """Consumer loop settings."""

    # Events per transaction: large enough to amortise commits, small enough to keep SQLite's single
    # writer lock short (ARCHITECTURE "Known pitfalls").
    batch_size: int = Field(default=500, ge=1, le=100_000)
    # Seconds to sleep when a topic is empty before polling again.
    poll_interval: float = Field(default=0.5, gt=0)
    # Seconds to wait before retrying a batch that hit an internal error (database unavailable, …).
    retry_delay: float = Field(default=2.0, ge=0)
    # Transient errors (lost connection, serialization failure, lock timeout, deadlock) retry the batch with
    # exponential backoff and jitter: `retry_delay` doubling up to `retry_max_delay` seconds.
    retry_max_delay: float = Field(default=60.0, ge=0)
    # `worker --until-idle` exits 1 after this many consecutive failures of the same batch of one job.
    max_retries: int = Field(default=5, ge=0)


class AuthSettings(BaseModel):
    """Who the caller is (SPEC §5.3)."""

    # `jwt`: a signed token in x-authenticated-user-token or Authorization: Bearer.
    # `trusted-header`: X-Authenticated-Userid, for use behind a gateway that has already authenticated.
    mode: Literal["jwt", "trusted-header"] = "jwt"
    # RS256 public keys (PEM text or a path to a PEM file) of the identity server. When none are given the
    # service runs in embedded mode: HS256 tokens signed with `hs256_secret`, or with a secret generated once and
    # kept in the database, which `learnagg token` also uses.
    public_keys: list[str] = Field(default_factory=list)
    hs256_secret: str = ""
    # Lifetime of tokens minted by `learnagg token`.
    token_ttl_seconds: int = Field(default=86_400, ge=60)
    # Clock skew allowed when checking `nbf` and `iat` (a token is refused from its `exp` second on).
    leeway_seconds: int = Field(default=30, ge=0, le=3600)
    # When set, tokens must carry this `iss` / `aud`.
    issuer: str = ""
    audience: str = ""
    # RS256 keys may also come from a JWKS URL (fetched on demand and cached).
    jwks_url: str = ""
    jwks_cache_seconds: int = Field(default=300, ge=0)
    # Where the embedded HS256 secret is kept (created with mode 0600); empty keeps it in the database.
    secret_file: str = ""


class ApiSettings(BaseModel):
    """HTTP service limits."""

    # Longest list accepted in a request body (contents, assessments, users, members, activities…).
    max_list_items: int = Field(default=1000, ge=1)
    # Run the stream jobs inside `learnagg serve` (embedded mode) unless --no-jobs is given.
    run_jobs: bool = True
    # Threads serving requests in each process; 0 means one per core. Request work is Python under the GIL,
    # so more threads only interleave (measured in BENCHMARKS.md).
    threads: int = Field(default=0, ge=0, le=256)
    # Largest request body accepted; larger bodies are answered 413 REQUEST_TOO_LARGE.
    max_body_bytes: int = Field(default=1 << 20, ge=1024)


class GroupAggCacheSettings(BaseModel):
    """The optional Redis cache of group aggregates (SPEC §5.4 step 3, §7 #8)."""

    enabled: bool = False
    ttl_seconds: int = Field(default=3600, ge=1)


class GroupsSettings(BaseModel):
    """Groups (docs/threat-model.md): who may put a learner in a group."""

    # A membership added by someone other than the member (and not by a platform admin) starts `invited` and
    # counts only once the member accepts it. False: members are active at once, as in the reference platform.
    member_consent: bool = True


class GroupAggSettings(BaseModel):
    """Group aggregate APIs."""

    cache: GroupAggCacheSettings = Field(default_factory=GroupAggCacheSettings)


class DedupSettings(BaseModel):
    """De-duplication of progress events (SPEC §4.3 P4, P10)."""

    enabled: bool = True
    ttl_seconds: int = Field(default=604_800, ge=1)


class ModuleAggsSettings(BaseModel):
    """Unit (module) completion counts (SPEC §4.3 P8)."""

    enabled: bool = True


class ActivitySettings(BaseModel):
    """The activity aggregate updater (SPEC §4.3)."""

    dedup: DedupSettings = Field(default_factory=DedupSettings)
    module_aggs: ModuleAggsSettings = Field(default_factory=ModuleAggsSettings)


class CertSettings(BaseModel):
    """The certificate pre-processor (SPEC §3.4, §4.4)."""

    # Replaces `CLOUD_BASE_PATH` in template URLs (svgTemplate).
    cloud_base_url: str = ""
    # `basePath` of generate-certificate requests is `<domain_url>/certs`.
    domain_url: str = ""


class ArchivalSettings(BaseModel):
    """Assessment archival (SPEC §6.2)."""

    # Key prefix of archived files in the object store.
    prefix: str = "archived-data/"
    # Rows per database read while streaming a partition (memory stays flat whatever the table size).
    chunk_rows: int = Field(default=10_000, ge=100)


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
    """Report files of the exhaust jobs (SPEC C3, §6.3)."""

    # Formats dates in report files and their names.
    timezone: str = "Asia/Kolkata"


class ExhaustZipSettings(BaseModel):
    """Zip protection of exhaust files (SPEC §6.3 step 8, §7 #12)."""

    # The default for requests with an encryption key; a request may ask for `zipcrypto` (zipEncryption).
    encryption: Literal["aes256", "zipcrypto"] = "aes256"


class ExhaustSettings(BaseModel):
    """Exhaust requests and their runner (SPEC §5.10, §6.3)."""

    # Callers must hold one of these roles, and their root org must be the X-Channel-ID.
    roles: list[str] = Field(default_factory=lambda: ["ORG_ADMIN", "REPORT_ADMIN"])
    batch_limit_per_request: int = Field(default=20, ge=1)
    # Per channel and per run: once reached, the channel's requests wait for the next run.
    batches_per_channel: int = Field(default=30, ge=1)
    file_size_per_channel: int = Field(default=1 << 30, ge=1)
    # Lifetime of download links.
    url_expiry_minutes: int = Field(default=30, ge=1)
    zip: ExhaustZipSettings = Field(default_factory=ExhaustZipSettings)
    # Seconds between two runs of the exhaust runner inside `learnagg serve` (embedded mode).
    poll_interval_seconds: float = Field(default=60.0, gt=0)
    # A request being processed is leased this long, renewed while it runs: after a crash it is picked again
    # (resuming from its processed batches) once the lease has ended.
    lease_seconds: int = Field(default=300, ge=10)
    # Only requests with this batch_number are run (SPEC §6.3 step 1); unset runs every request.
    batch_number: int | None = None
    # Secret from which the key encrypting `encryption_key` at rest and the link-signing key are derived;
    # empty: generated once and kept in the database (`app_secret`).
    secret_key: str = ""
    # Prefix of download links (https://reports.example.org); empty: the address the API was called at.
    public_url: str = ""
    # A platform admin may submit, list and download any channel's reports without an exhaust role there.
    platform_admin_any_channel: bool = False


class DashboardSettings(BaseModel):
    """The group dashboard page (docs/dashboard.md)."""

    refresh_seconds: int = Field(
        default=30, ge=5, le=86_400, description="Seconds between two automatic refreshes of the group dashboard."
    )


class Settings(BaseSettings):
    """All learnagg settings; environment variables win over the optional TOML config file."""

    model_config = SettingsConfigDict(
        env_prefix="LEARNAGG_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    database_url: str = "sqlite:///learnagg.db"
    # Empty means the embedded log in the same database (SPEC §2.5).
    bus_url: str = ""
    # Object storage for archives and reports: a local folder (the default) or any fsspec URL (s3://…, gs://…).
    blob_url: str = "blobs"
    # Redis, used by the group-aggregate cache when `group_agg.cache.enabled` (redis://host:port/db).
    redis_url: str = ""
    env: str = "dev"
    timezone: str = "UTC"
    report: ReportSettings = Field(default_factory=ReportSettings)
    assessment: AssessmentSettings = Field(default_factory=AssessmentSettings)
    legacy: LegacySettings = Field(default_factory=LegacySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    groups: GroupsSettings = Field(default_factory=GroupsSettings)
    group_agg: GroupAggSettings = Field(default_factory=GroupAggSettings)
    activity: ActivitySettings = Field(default_factory=ActivitySettings)
    cert: CertSettings = Field(default_factory=CertSettings)
    archival: ArchivalSettings = Field(default_factory=ArchivalSettings)
    migration: MigrationSettings = Field(default_factory=MigrationSettings)
    imports: ImportSettings = Field(default_factory=ImportSettings)
    exhaust: ExhaustSettings = Field(default_factory=ExhaustSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read init values, then the environment, then the TOML file named by ``LEARNAGG_CONFIG``."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = config_path()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def config_path() -> Path | None:
    """The config file: ``LEARNAGG_CONFIG`` if set, else ``learnagg.toml`` in the working directory if present."""
    named = os.environ.get("LEARNAGG_CONFIG")
    if named:
        return Path(named)
    local = Path("learnagg.toml")
    return local if local.is_file() else None


def load_settings(**overrides: object) -> Settings:
    """Build the settings tree from overrides, the environment and the config file."""
    return Settings(**overrides)  # type: ignore[arg-type]
