"""Exhaust requests (docs/api.md#report-requests, docs/batch.md#exhaust-reports): request ids, statuses, validation
messages, dedup hash and link signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SUBMITTED, PROCESSING, SUCCESS, FAILED = "SUBMITTED", "PROCESSING", "SUCCESS", "FAILED"
MAX_ITERATIONS = 3  # docs/batch.md#exhaust-reports: a request that failed this often is not picked again
ERR_MAX = 300  # `err_message` holds at most 300 characters (docs/reference/data-model.md#reports-and-archival)
INTERNAL_MAX = 250  # docs/batch.md#exhaust-reports: `Internal Server Error: <first 250 chars>`

# dataset (job_id) → report key (docs/batch.md#exhaust-reports)
REPORT_KEYS: dict[str, str] = {"progress-exhaust": "progress", "response-exhaust": "response"}
DATASETS: dict[str, str] = {key: dataset for dataset, key in REPORT_KEYS.items()}

# Messages exactly as the reference writes them (docs/api.md#report-requests, docs/batch.md#exhaust-reports), its
# spelling included.
TAG_EMPTY = "tag is empty"
DATASET_EMPTY = "dataset is empty"
DATASET_CONFIG_EMPTY = "datasetConfig is empty"
CHANNEL_MISSING = "X-Channel-ID is missing in request header"
NO_JOB = "no job available with the given request_id and tag"
MISSING_KEY_FIELD = "Request should have either of batchId, batchFilter, searchFilter or encrption key"
NO_DATA = "No data found"
RETIRED = "The request is made for retired collection"
# Not from the reference platform: learnagg's own messages where the reference defines none.
DATASET_INVALID = "dataset should be one of " + ", ".join(REPORT_KEYS)
OUTPUT_FORMAT_INVALID = "outputFormat should be csv"
ZIP_ENCRYPTION_INVALID = "zipEncryption should be aes256 or zipcrypto"
ENCRYPTION_KEY_INVALID = "encryptionKey should be a string"
REQUEST_ID_EMPTY = "requestId is empty"
NOT_REQUESTER = "Only the requester or an admin may read this request"
ZIP_ENCRYPTIONS = ("aes256", "zipcrypto")


def md5u(text: str) -> str:
    """``MD5U(s)``: the MD5 of the UTF-8 bytes, 32 upper-case hex digits (docs/reference/data-model.md#c7)."""
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def compact_sorted_json(value: Any) -> str:
    """Compact JSON with sorted keys and no ASCII escaping (docs/batch.md#exhaust-reports)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def is_blank(value: object) -> bool:
    """docs/reference/data-model.md#c8: absent, null, or an empty or whitespace-only string."""
    return value is None or (isinstance(value, str) and not value.strip())


def request_id(dataset: str, tag: str, requested_by: str, channel: str, day: str, config_type: object = None) -> str:
    """``MD5U(dataset|tag|requestedBy|channel|yyyy-MM-dd)``, plus ``|<datasetConfig.type>`` when present
    (docs/api.md#report-requests).

    Args:
        dataset: the dataset (job id), e.g. ``progress-exhaust``.
        tag: the client's tag (not the stored ``<tag>:<channel>``).
        requested_by: the requesting user.
        channel: the ``X-Channel-ID``.
        day: today in setting ``timezone``, ``yyyy-MM-dd``.
        config_type: ``datasetConfig.type``; None when absent (a non-text value is written as compact JSON).
    """
    parts = [dataset, tag, requested_by, channel, day]
    if config_type is not None:
        parts.append(config_type if isinstance(config_type, str) else compact_sorted_json(config_type))
    return md5u("|".join(parts))


def stored_tag(tag: str, channel: str) -> str:
    """The stored tag: ``<tag>:<channel>`` (docs/api.md#report-requests)."""
    return f"{tag}:{channel}"


def client_tag(tag: str, channel: str | None) -> str:
    """The client's tag of a stored ``<tag>:<channel>``."""
    suffix = f":{channel}"
    return tag[: -len(suffix)] if channel and tag.endswith(suffix) else tag


def dedup_hash(request_data: object, encryption_key: str | None, requested_by: str | None) -> str:
    """``MD5U(request_data|encryption_key or ""|requested_by)``, request_data as compact sorted JSON
    (docs/batch.md#exhaust-reports)."""
    return md5u(f"{compact_sorted_json(request_data)}|{encryption_key or ''}|{requested_by or ''}")


def submit_error(body: Mapping[str, Any]) -> str | None:
    """The first refusal of a submit body (docs/api.md#report-requests validation order), or None when it is valid."""
    tag, dataset, config = body.get("tag"), body.get("dataset"), body.get("datasetConfig")
    if not isinstance(tag, str) or is_blank(tag):
        return TAG_EMPTY
    if not isinstance(dataset, str) or is_blank(dataset):
        return DATASET_EMPTY
    if not isinstance(config, dict) or not config:
        return DATASET_CONFIG_EMPTY
    if dataset not in REPORT_KEYS:
        return DATASET_INVALID
    key = body.get("encryptionKey")
    if key is not None and not isinstance(key, str):
        return ENCRYPTION_KEY_INVALID
    output = body.get("outputFormat")
    if output is not None and output != "csv":
        return OUTPUT_FORMAT_INVALID
    zip_mode = body.get("zipEncryption")
    if zip_mode is not None and zip_mode not in ZIP_ENCRYPTIONS:
        return ZIP_ENCRYPTION_INVALID
    return None


@dataclass(frozen=True, slots=True)
class BatchSelection:
    """What a datasetConfig asks for (docs/batch.md#exhaust-reports): batch ids, or search filters on courses."""

    batch_ids: tuple[str, ...] = ()
    course_ids: tuple[str, ...] | None = None  # searchFilter.filters.identifier
    channel: str | None = None  # searchFilter.filters.channel
    search: bool = False


def _texts(value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(dict.fromkeys(v for v in value if v.strip()))
    return None


def selection(config: object, batch_limit: int) -> BatchSelection | str:
    """The batches a datasetConfig selects, or the refusal message (docs/batch.md#exhaust-reports).

    ``batchId`` wins over ``batchFilter``, which wins over ``searchFilter`` (as the reference reads them). A field of
    the wrong JSON type counts as absent.
    """
    data = config if isinstance(config, dict) else {}
    batch_id = data.get("batchId")
    if isinstance(batch_id, str) and batch_id.strip():
        return BatchSelection(batch_ids=(batch_id,))
    batch_filter = _texts(data.get("batchFilter")) if isinstance(data.get("batchFilter"), list) else None
    if batch_filter is not None:
        if len(batch_filter) > batch_limit:
            return batch_limit_message(batch_limit)
        return BatchSelection(batch_ids=batch_filter)
    search = data.get("searchFilter")
    if isinstance(search, dict):
        filters = search.get("filters")
        filters = filters if isinstance(filters, dict) else {}
        channel = filters.get("channel")
        return BatchSelection(
            course_ids=_texts(filters.get("identifier")) if "identifier" in filters else None,
            channel=channel if isinstance(channel, str) and channel.strip() else None,
            search=True,
        )
    return MISSING_KEY_FIELD


def batch_limit_message(limit: int) -> str:
    """``Number of batches in request exceeded. It should be within <limit>`` (docs/batch.md#exhaust-reports)."""
    return f"Number of batches in request exceeded. It should be within {limit}"


def internal_error(message: str) -> str:
    """``Internal Server Error: <first 250 chars>`` (docs/batch.md#exhaust-reports)."""
    return f"Internal Server Error: {message[:INTERNAL_MAX]}"


def err_message(messages: Sequence[str]) -> str:
    """Batch errors joined by ``,``, cut to the column's 300 characters
    (docs/reference/data-model.md#reports-and-archival, docs/batch.md#exhaust-reports)."""
    return ",".join(messages)[:ERR_MAX]


def report_file(job_id: str, request: str, batch_id: str, day: str) -> str:
    """``<job_id>/<request_id>/<batchId>_<reportKey>_<yyyyMMdd>.csv`` (docs/batch.md#exhaust-reports)."""
    return f"{job_id}/{request}/{batch_id}_{REPORT_KEYS[job_id]}_{day}.csv"


def link_message(request: str, file_name: str, expires: int) -> str:
    """The text a download link signs: the request, the file and the expiry (epoch ms)."""
    return f"{request}/{file_name}:{expires}"


def sign(key: bytes, message: str) -> str:
    """HMAC-SHA256 of ``message`` as hex."""
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def signature_ok(key: bytes, message: str, signature: str) -> bool:
    """Whether ``signature`` is the HMAC of ``message`` (constant-time comparison)."""
    return hmac.compare_digest(sign(key, message), signature)


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from the exhaust secret (keys never serve two purposes)."""
    return hashlib.sha256(f"learnagg.exhaust.{purpose}\x1f{secret}".encode()).digest()
