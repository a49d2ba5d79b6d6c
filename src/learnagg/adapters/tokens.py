"""JWT verification and minting (PyJWT): RS256 keys of an identity server (PEM or JWKS URL), or the embedded HS256
secret. What a token must carry is described in docs/threat-model.md."""

from __future__ import annotations

import logging
import math
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt

from learnagg.adapters.store import secrets
from learnagg.adapters.store.store import Store
from learnagg.errors import ConfigurationError, first_line
from learnagg.settings import AuthSettings

SECRET_NAME = "auth.hs256"
ISSUER = "learnagg"
# An unknown `kid` refreshes the key set at most this often, so a flood of tokens with random kids cannot hammer
# the identity server (nor can a key server that is down).
JWKS_MIN_REFRESH_MS = 10_000
JWKS_TIMEOUT_SECONDS = 5.0
JWKS_MAX_BYTES = 1 << 20

log = logging.getLogger("learnagg.auth")


def _pem(value: str) -> str:
    """A key given inline (PEM text) or as a path to a PEM file."""
    if "-----BEGIN" in value:
        return value
    path = Path(value)
    if not path.is_file():
        raise ConfigurationError(f"auth public key {value!r} is neither PEM text nor a readable file")
    return path.read_text()


def _epoch_seconds(value: object) -> int | float | None:
    """A time claim as a finite number of seconds, or None (missing, a string, a boolean, NaN, infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JwksKeys:
    """RS256 public keys published at an identity server's JWKS URL, cached for ``cache_seconds``.

    Times are read from the caller's clock (epoch ms). A key set older than the cache lifetime is fetched again; an
    unknown ``kid`` triggers a refresh only when the last fetch attempt is at least ``JWKS_MIN_REFRESH_MS`` old (or
    the cache lifetime, when shorter). A failed fetch drops nothing that is still fresh, is logged, and counts as an
    attempt, so a key server that is down is asked at most once per interval; tokens then get 401.
    """

    def __init__(self, url: str, cache_seconds: int, timeout: float = JWKS_TIMEOUT_SECONDS) -> None:
        """Remember the URL; nothing is fetched until the first token needs a key."""
        self.url = url
        self.cache_ms = cache_seconds * 1000
        self.min_refresh_ms = min(JWKS_MIN_REFRESH_MS, self.cache_ms)
        self.timeout = timeout
        self._keys: dict[str, Any] = {}
        self._unnamed: list[Any] = []
        self._fetched_at: int | None = None
        self._attempted_at: int | None = None
        self._lock = threading.Lock()

    def _may_fetch(self, now_ms: int) -> bool:
        last = self._attempted_at
        return last is None or now_ms < last or now_ms - last >= self.min_refresh_ms

    def _fresh(self, now_ms: int) -> bool:
        at = self._fetched_at
        return at is not None and at <= now_ms and now_ms - at <= self.cache_ms

    def _fetch(self, now_ms: int) -> None:
        self._attempted_at = now_ms
        try:
            response = httpx.get(self.url, timeout=self.timeout, follow_redirects=False)
            response.raise_for_status()
            if len(response.content) > JWKS_MAX_BYTES:
                raise ValueError(f"document larger than {JWKS_MAX_BYTES} bytes")
            document = response.json()
            if not isinstance(document, dict):
                raise ValueError("the document is not a JSON object")
            keyset = jwt.PyJWKSet.from_dict(document)
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning("cannot load the JWKS from %s: %s: %s", self.url, type(exc).__name__, first_line(exc))
            if not self._fresh(now_ms):
                self._keys, self._unnamed, self._fetched_at = {}, [], None
            return
        keys: dict[str, Any] = {}
        unnamed: list[Any] = []
        for jwk in keyset.keys:
            if jwk.key_type != "RSA" or jwk.algorithm_name != "RS256" or jwk.public_key_use not in (None, "sig"):
                continue
            if jwk.key_id:
                keys[jwk.key_id] = jwk.key
            else:
                unnamed.append(jwk.key)
        self._keys, self._unnamed, self._fetched_at = keys, unnamed, now_ms
        log.info("loaded %d JWKS keys from %s", len(keys) + len(unnamed), self.url)

    def keys_for(self, kid: object, now_ms: int) -> list[Any]:
        """The public keys a token with header ``kid`` may be signed with (all keys when it names none)."""
        with self._lock:
            unknown_kid = isinstance(kid, str) and kid not in self._keys
            if (unknown_kid or not self._fresh(now_ms)) and self._may_fetch(now_ms):
                self._fetch(now_ms)
            if not self._fresh(now_ms):
                return []
            if isinstance(kid, str) and kid:
                found = self._keys.get(kid)
                return [found] if found is not None else []
            return [*self._keys.values(), *self._unnamed]


class TokenKeys:
    """The keys tokens are checked with: RS256 public keys (PEM and/or JWKS URL) when configured, else one HS256
    secret; and the claim rules every token must meet."""

    def __init__(self, settings: AuthSettings, embedded_secret: str | None = None) -> None:
        """Load the configured keys; ``embedded_secret`` is used when no RS256 keys and no HS256 secret are set."""
        self.public_keys = [_pem(k) for k in settings.public_keys]
        self.jwks = JwksKeys(settings.jwks_url, settings.jwks_cache_seconds) if settings.jwks_url else None
        self.secret = settings.hs256_secret or embedded_secret or ""
        self.ttl = settings.token_ttl_seconds
        self.leeway_ms = settings.leeway_seconds * 1000
        self.issuer = settings.issuer
        self.audience = settings.audience
        if not self.public_keys and not self.jwks and not self.secret:
            raise ConfigurationError(
                "no token keys: set LEARNAGG_AUTH__PUBLIC_KEYS, LEARNAGG_AUTH__JWKS_URL or LEARNAGG_AUTH__HS256_SECRET"
            )

    @property
    def embedded(self) -> bool:
        """True when tokens are signed with this service's own HS256 secret."""
        return not self.public_keys and self.jwks is None

    def _candidates(self, token: str, now_ms: int) -> list[tuple[Any, str]]:
        if self.embedded:
            return [(self.secret, "HS256")]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return []
        if header.get("alg") != "RS256":
            return []  # only RS256 is accepted here: no key server call for anything else
        keys: list[tuple[Any, str]] = [(k, "RS256") for k in self.public_keys]
        if self.jwks is not None:
            keys += [(k, "RS256") for k in self.jwks.keys_for(header.get("kid"), now_ms)]
        return keys

    def claims_ok(self, claims: dict[str, Any], now_ms: int) -> bool:
        """Whether a signed token's claims make it valid at ``now_ms`` (the injectable clock) for this service.

        ``exp`` is required and must be in the future; ``nbf`` and ``iat``, when present, may be at most the
        leeway ahead of the clock; ``iss`` / ``aud`` must match the configured issuer / audience when set.
        """
        exp = _epoch_seconds(claims.get("exp"))
        if exp is None or exp * 1000 <= now_ms:
            return False
        for name in ("nbf", "iat"):
            if name in claims:
                value = _epoch_seconds(claims[name])
                if value is None or value * 1000 > now_ms + self.leeway_ms:
                    return False
        if self.issuer and claims.get("iss") != self.issuer:
            return False
        if self.audience:
            aud = claims.get("aud")
            if not (aud == self.audience or (isinstance(aud, list) and self.audience in aud)):
                return False
        return True

    def verify(self, token: str, now_ms: int) -> dict[str, Any] | None:
        """The claims of a validly signed token that meets :meth:`claims_ok` at ``now_ms``, or None."""
        # Time claims are checked against the application clock (docs/reference/data-model.md#c2), not the machine's, so
        # they are testable; PyJWT checks only the signature (and the types of `sub` / `jti`).
        options: Any = {"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False}
        for key, algorithm in self._candidates(token, now_ms):
            try:
                claims = jwt.decode(token, key, algorithms=[algorithm], options=options)
            except jwt.PyJWTError:
                continue
            return claims if self.claims_ok(claims, now_ms) else None
        return None

    def mint(self, user_id: str, now_ms: int, roles: list[str] | None = None) -> str:
        """A signed HS256 token for ``user_id`` (embedded mode only), valid for the configured lifetime."""
        if not self.embedded:
            raise ConfigurationError("tokens are issued by the identity server when RS256 keys are configured")
        now = now_ms // 1000
        claims: dict[str, Any] = {
            "sub": f"f:{ISSUER}:{user_id}",
            "iss": self.issuer or ISSUER,
            "iat": now,
            "exp": now + self.ttl,
            "jti": str(uuid.uuid4()),
        }
        if self.audience:
            claims["aud"] = self.audience
        if roles:
            claims["roles"] = list(roles)
        return jwt.encode(claims, self.secret, algorithm="HS256")


def token_keys(auth: AuthSettings, store: Store, now: int) -> TokenKeys:
    """The token keys of the service and of `learnagg token`: configured RS256 keys, a configured HS256 secret, or
    the embedded secret (in ``auth.secret_file`` when set, else generated once and kept in the database)."""
    embedded = None
    if not auth.public_keys and not auth.jwks_url and not auth.hs256_secret:
        embedded = secrets.embedded_secret(store, SECRET_NAME, auth.secret_file, now)
    return TokenKeys(auth, embedded)
