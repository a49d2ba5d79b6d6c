"""JWT verification and minting (PyJWT): RS256 keys of an identity server, or the embedded HS256 secret."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import jwt

from learnagg.errors import ConfigurationError
from learnagg.settings import AuthSettings

SECRET_NAME = "auth.hs256"
ISSUER = "learnagg"


def _pem(value: str) -> str:
    """A key given inline (PEM text) or as a path to a PEM file."""
    if "-----BEGIN" in value:
        return value
    path = Path(value)
    if not path.is_file():
        raise ConfigurationError(f"auth public key {value!r} is neither PEM text nor a readable file")
    return path.read_text()


class TokenKeys:
    """The keys tokens are checked with: RS256 public keys when configured, else one HS256 secret."""

    def __init__(self, settings: AuthSettings, embedded_secret: str | None = None) -> None:
        """Load the configured keys; ``embedded_secret`` is used when no RS256 keys and no HS256 secret are set."""
        self.public_keys = [_pem(k) for k in settings.public_keys]
        self.secret = settings.hs256_secret or embedded_secret or ""
        self.ttl = settings.token_ttl_seconds
        if not self.public_keys and not self.secret:
            raise ConfigurationError("no token keys: set LEARNAGG_AUTH__PUBLIC_KEYS or LEARNAGG_AUTH__HS256_SECRET")

    @property
    def embedded(self) -> bool:
        """True when tokens are signed with this service's own HS256 secret."""
        return not self.public_keys

    def verify(self, token: str, now_ms: int) -> dict[str, Any] | None:
        """The claims of a validly signed token that has not expired at ``now_ms`` (the injectable clock), or None."""
        keys: list[tuple[str, str]] = [(k, "RS256") for k in self.public_keys] or [(self.secret, "HS256")]
        # Expiry is checked against the application clock (SPEC C2), not the machine's, so it is testable.
        options: Any = {"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False}
        for key, algorithm in keys:
            try:
                claims = jwt.decode(token, key, algorithms=[algorithm], options=options)
            except jwt.PyJWTError:
                continue
            exp = claims.get("exp")
            if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int | float) or exp * 1000 <= now_ms):
                return None
            return claims
        return None

    def mint(self, user_id: str, now_ms: int, roles: list[str] | None = None) -> str:
        """A signed HS256 token for ``user_id`` (embedded mode only), valid for the configured lifetime."""
        if not self.embedded:
            raise ConfigurationError("tokens are issued by the identity server when RS256 public keys are configured")
        now = now_ms // 1000
        claims: dict[str, Any] = {
            "sub": f"f:{ISSUER}:{user_id}",
            "iss": ISSUER,
            "iat": now,
            "exp": now + self.ttl,
            "jti": str(uuid.uuid4()),
        }
        if roles:
            claims["roles"] = list(roles)
        return jwt.encode(claims, self.secret, algorithm="HS256")
