"""One typed settings tree (prefix ``LEARNAGG_``, nested with ``__``); each setting described once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from learnagg.settings_batch import (
    ArchivalSettings,
    ExhaustSettings,
    ImportSettings,
    MigrationSettings,
    ReportSettings,
)
from learnagg.settings_spark import BatchSettings, SparkSettings

GradingMethod = Literal["best", "latest", "first", "average"]


class AttemptsSettings(BaseModel):
    """How many attempts the read APIs return (docs/api.md#content-state-and-assessments)."""

    limit: int = Field(default=25, ge=1, le=1000, description="Attempts returned per content by the read APIs.")


class AssessmentSettings(BaseModel):
    """Assessment aggregator settings (docs/jobs/assessment.md#attempts, docs/jobs/assessment.md#score-aggregation)."""

    grading_method: GradingMethod = Field(
        default="best", description="Which attempt's score is a learner's score for an assessment (docs/jobs.md)."
    )
    strict_leaf_validation: bool = Field(
        default=False, description="Refuse attempts for courses whose leaves are unknown (no hierarchy loaded)."
    )
    question_count_guard: bool = Field(
        default=True, description="Refuse attempts with more questions than the assessment's `totalQuestions`."
    )
    agg_details_type: str = Field(default="attempt_metrics", description="`type` written in `agg_details` entries.")
    supported_content_types: list[str] = Field(
        default_factory=lambda: ["SelfAssess"], description="Content types whose attempts are aggregated."
    )
    supported_object_types: list[str] = Field(
        default_factory=lambda: ["QuestionSet"],
        description="Report assessments: a leaf whose object type is listed and whose primary category is listed.",
    )
    supported_primary_categories: list[str] = Field(
        default_factory=list, description="Primary categories of report assessments (see `supported_object_types`)."
    )
    attempts: AttemptsSettings = Field(default_factory=AttemptsSettings)
    max_questions: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Most answers one attempt may carry, counted before de-duplication (docs/threat-model.md).",
    )


class LegacySettings(BaseModel):
    """How legacy values written by the reference platform are read (docs/reference/data-model.md#user-activity-agg)."""

    date_zone: str = Field(default="UTC", description="Time zone of legacy `agg_details` date strings.")


class WorkerSettings(BaseModel):
    """Consumer loop settings."""

    batch_size: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Events per transaction: large enough to amortise commits, small enough to keep SQLite's "
        "single writer lock short.",
    )
    poll_interval: float = Field(default=0.5, gt=0, description="Seconds between two polls of an empty topic.")
    retry_delay: float = Field(
        default=2.0,
        ge=0,
        description="Seconds before retrying a batch after a transient error (lost connection, serialization "
        "failure, lock timeout, deadlock); doubles on each retry, with jitter.",
    )
    retry_max_delay: float = Field(default=60.0, ge=0, description="The cap, in seconds, on that retry wait.")
    max_retries: int = Field(
        default=5,
        ge=0,
        description="`worker --until-idle` and `demo` exit 1 after this many consecutive failures of one job's batch.",
    )
    lease_seconds: int = Field(default=10, ge=1, le=3600, description="Seconds a partition lease lasts (scale-out).")
    applied_mid_ttl_seconds: int = Field(default=86_400, ge=1, description="Seconds a job skips a `mid` it applied.")


class BusSettings(BaseModel):
    """The event bus (docs/scale-out.md)."""

    partitions: int = Field(default=8, ge=1, le=1024, description="Partitions of new topics (stored by `init`).")


class AuthSettings(BaseModel):
    """Who the caller is (docs/api.md#identity)."""

    mode: Literal["jwt", "trusted-header"] = Field(
        default="jwt",
        description="`jwt`: a signed token in `x-authenticated-user-token` or `Authorization: Bearer`; "
        "`trusted-header`: `X-Authenticated-Userid`, behind a gateway that has already authenticated the caller.",
    )
    public_keys: list[str] = Field(
        default_factory=list,
        description="RS256 public keys (PEM text or a path to a PEM file) of the identity server; none: embedded "
        "mode, HS256 tokens as minted by `learnagg token`.",
    )
    hs256_secret: str = Field(
        default="",
        description="Embedded-mode signing secret; empty: generated once and kept in the database (or `secret_file`).",
    )
    token_ttl_seconds: int = Field(default=86_400, ge=60, description="Lifetime of tokens minted by `learnagg token`.")
    leeway_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="Clock skew allowed when checking `nbf` and `iat` (a token is refused from its `exp` second on).",
    )
    issuer: str = Field(default="", description="When set, tokens must carry this `iss`.")
    audience: str = Field(default="", description="When set, tokens must carry this `aud`.")
    jwks_url: str = Field(
        default="", description="RS256 keys from the identity server's JWKS document (fetched on demand, cached)."
    )
    jwks_cache_seconds: int = Field(default=300, ge=0, description="How long fetched JWKS keys are kept.")
    secret_file: str = Field(
        default="",
        description="Keep the generated embedded secret in this file (created with mode 0600) instead of the database.",
    )


class ApiSettings(BaseModel):
    """HTTP service limits."""

    max_list_items: int = Field(
        default=1000,
        ge=1,
        description="Longest list accepted anywhere in a request body (contents, assessments, users, members, …).",
    )
    run_jobs: bool = Field(
        default=True, description="`learnagg serve` also runs the stream jobs (`--no-jobs` turns it off)."
    )
    threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Threads serving requests in each process; 0: one per core (more only interleave: "
        "request work is Python under the GIL, BENCHMARKS.md).",
    )
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="Larger request bodies are answered 413 `REQUEST_TOO_LARGE`."
    )


class GroupAggCacheSettings(BaseModel):
    """The optional Redis cache of group aggregates (docs/api.md#the-cache, docs/reference/compatibility.md#8)."""

    enabled: bool = Field(
        default=False, description="Cache group aggregates in Redis (`redis_url`), invalidated on every change."
    )
    ttl_seconds: int = Field(default=3600, ge=1, description="Lifetime in seconds of a cached group result.")


class GroupsSettings(BaseModel):
    """Groups (docs/threat-model.md): who may put a learner in a group."""

    member_consent: bool = Field(
        default=True,
        description="A member added by someone else (not a platform admin) starts `invited` and counts once they "
        "accept; false: members are active at once, as in the reference platform.",
    )


class GroupAggSettings(BaseModel):
    """Group aggregate APIs."""

    cache: GroupAggCacheSettings = Field(default_factory=GroupAggCacheSettings)


class DedupSettings(BaseModel):
    """De-duplication of progress events (docs/jobs/progress.md#p4, docs/jobs/progress.md#p10)."""

    enabled: bool = Field(default=True, description="Skip progress that was already counted (docs/jobs.md).")
    ttl_seconds: int = Field(default=604_800, ge=1, description="Lifetime in seconds of a progress dedup key.")


class ModuleAggsSettings(BaseModel):
    """Unit (module) completion counts (docs/jobs/progress.md#p8)."""

    enabled: bool = Field(default=True, description="Write `completedCount` for every unit too, not only courses.")


class ActivitySettings(BaseModel):
    """The activity aggregate updater (docs/jobs/progress.md)."""

    dedup: DedupSettings = Field(default_factory=DedupSettings)
    module_aggs: ModuleAggsSettings = Field(default_factory=ModuleAggsSettings)


class CertSettings(BaseModel):
    """The certificate pre-processor (docs/reference/events.md#e4, docs/jobs/certificates.md)."""

    cloud_base_url: str = Field(
        default="", description="Replaces `CLOUD_BASE_PATH` in certificate template URLs (svgTemplate)."
    )
    domain_url: str = Field(
        default="", description="`basePath` of generate-certificate requests is `<domain_url>/certs`."
    )


class DashboardSettings(BaseModel):
    """The group dashboard page (docs/dashboard.md)."""

    refresh_seconds: int = Field(
        default=30, ge=5, le=86_400, description="Seconds between two automatic refreshes of the group dashboard."
    )


class LogSettings(BaseModel):
    """Log records: one line each on standard error, with the job and request they belong to (docs/operations.md)."""

    format: Literal["auto", "text", "json"] = Field(
        default="auto",
        description="`text`: one readable line per record; `json`: one JSON object per line (keys ts, level, logger, "
        "msg, and job, request_id, route where they apply); `auto`: text on a terminal, json otherwise.",
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Least severe level written (case-insensitive)."
    )

    @field_validator("level", mode="before")
    @classmethod
    def _level_upper_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    """All learnagg settings; environment variables win over the optional TOML config file."""

    model_config = SettingsConfigDict(
        env_prefix="LEARNAGG_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    database_url: str = Field(
        default="sqlite:///learnagg.db",
        description="`sqlite:///FILE`, or `postgresql://user@host:port/db` (the `postgres` extra).",
    )
    bus_url: str = Field(
        default="",
        description="Event bus: empty (or `db`) for the embedded event log in the same database, or "
        "`redis://host:port/db` for Redis Streams, or `redis+cluster://host:port[,host:port…]` for Redis Streams on a "
        "Redis Cluster (the `redis` extra; docs/scale-out.md).",
    )
    blob_url: str = Field(
        default="blobs",
        description="Object store for archives and reports: a local folder or any fsspec URL (`s3://…` needs the "
        "`s3` extra).",
    )
    redis_url: str = Field(
        default="",
        description="Redis (`redis://host:port/db`, the `redis` extra) for the group-aggregate cache.",
    )
    env: str = Field(default="dev", description="Topic prefix (`{env}.telemetry.assess`, …).")
    timezone: str = Field(default="UTC", description="Time zone of dates in APIs and events.")
    report: ReportSettings = Field(default_factory=ReportSettings)
    assessment: AssessmentSettings = Field(default_factory=AssessmentSettings)
    legacy: LegacySettings = Field(default_factory=LegacySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
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
    batch: BatchSettings = Field(default_factory=BatchSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    log: LogSettings = Field(default_factory=LogSettings)
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
