"""The group-aggregate cache on Redis (docs/api.md#group-aggregates); Redis errors are logged and ignored."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from learnagg.domain.cache_keys import group_prefix
from learnagg.errors import ConfigurationError

log = logging.getLogger(__name__)


class GroupCache(Protocol):
    """What the group-aggregate use cases and the invalidation hooks need."""

    enabled: bool

    def get(self, key: str) -> bytes | None:
        """The cached value, or None on a miss (or any error)."""
        ...

    def put(self, key: str, value: bytes) -> None:
        """Store a value with the configured time to live."""
        ...

    def invalidate_groups(self, group_ids: Iterable[str]) -> None:
        """Delete every key of each group (prefix ``<groupId>:``)."""
        ...


class NoCache:
    """The cache when it is disabled: every read misses, writes and deletes do nothing."""

    enabled = False

    def get(self, key: str) -> bytes | None:
        """Always a miss."""
        return None

    def put(self, key: str, value: bytes) -> None:
        """Nothing to store."""

    def invalidate_groups(self, group_ids: Iterable[str]) -> None:
        """Nothing to delete."""


class RedisCache:
    """Redis: values with a TTL; invalidation scans each group's prefix (the keys of one group are few)."""

    enabled = True

    def __init__(self, url: str, ttl_seconds: int) -> None:
        """Connect lazily to ``url``; short timeouts so a dead Redis never stalls a request for long.

        Raises:
            ConfigurationError: the ``redis`` package (the ``redis`` extra) is not installed.
        """
        try:
            import redis
        except ImportError as exc:
            message = "LEARNAGG_REDIS_URL needs the package redis: pip install 'learnagg[redis]'"
            raise ConfigurationError(message) from exc

        self._errors = (redis.RedisError, OSError)
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.ttl = ttl_seconds

    def get(self, key: str) -> bytes | None:
        """The cached value; an unreachable Redis is a miss."""
        try:
            value = self.client.get(key)
        except self._errors as exc:
            log.warning("group cache read failed (ignored): %s", exc)
            return None
        return value if isinstance(value, bytes) else None

    def put(self, key: str, value: bytes) -> None:
        """SET with EX; errors are logged and ignored."""
        try:
            self.client.set(key, value, ex=self.ttl)
        except self._errors as exc:
            log.warning("group cache write failed (ignored): %s", exc)

    def invalidate_groups(self, group_ids: Iterable[str]) -> None:
        """Delete the keys under each ``<groupId>:`` prefix; errors are logged and ignored."""
        try:
            for group_id in sorted(set(group_ids)):
                pattern = _glob_escape(group_prefix(group_id)) + "*"
                keys = list(self.client.scan_iter(match=pattern, count=500))
                if keys:
                    self.client.unlink(*keys)
        except self._errors as exc:
            log.warning("group cache invalidation failed (ignored): %s", exc)


def _glob_escape(text: str) -> str:
    """Escape Redis glob characters so a group id is matched literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def build_cache(enabled: bool, redis_url: str, ttl_seconds: int) -> GroupCache:
    """Redis when the cache is enabled and Redis is configured (docs/api.md#group-aggregates), otherwise no cache."""
    if enabled and redis_url:
        return RedisCache(redis_url, ttl_seconds)
    return NoCache()
