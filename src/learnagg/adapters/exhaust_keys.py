"""Keys of the exhaust requests: `encryption_key` encrypted at rest (Fernet) and signed download links (HMAC)."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken

from learnagg.adapters.store import secrets
from learnagg.adapters.store.store import Store
from learnagg.domain import exhaust as dx
from learnagg.errors import LearnaggError

SECRET_NAME = "exhaust.key"
PREFIX = "enc:v1:"  # stored keys without it are clear text written by the reference platform (still readable)


class KeyUnreadable(LearnaggError):
    """A stored encryption key cannot be decrypted (the exhaust secret changed)."""


class ExhaustKeys:
    """Both keys, derived from one secret so that neither serves two purposes."""

    def __init__(self, secret: str) -> None:
        """Derive the at-rest key and the link-signing key from ``secret``."""
        if not secret:
            raise ValueError("the exhaust secret must not be empty")
        self._fernet = Fernet(base64.urlsafe_b64encode(dx.derive_key(secret, "encryption-key")))
        self.link_key = dx.derive_key(secret, "download-link")

    def encrypt(self, clear: str | None) -> str | None:
        """The text stored in `job_request.encryption_key` for a password (None stays None)."""
        if not clear:
            return None
        return PREFIX + self._fernet.encrypt(clear.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str | None) -> str | None:
        """The password of a stored `encryption_key`; text without the prefix is taken as clear text.

        Raises:
            KeyUnreadable: the value was encrypted with another secret, or is damaged.
        """
        if not stored:
            return None
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError, UnicodeError):
            raise KeyUnreadable("the request's encryption key cannot be decrypted with the current secret") from None

    def sign_link(self, request_id: str, file_name: str, expires: int) -> str:
        """The signature of a download link."""
        return dx.sign(self.link_key, dx.link_message(request_id, file_name, expires))

    def link_ok(self, request_id: str, file_name: str, expires: int, signature: str) -> bool:
        """Whether a download link's signature is genuine (its expiry is checked by the caller)."""
        return dx.signature_ok(self.link_key, dx.link_message(request_id, file_name, expires), signature)


def exhaust_keys(secret_key: str, store: Store, now: int) -> ExhaustKeys:
    """The keys from setting ``exhaust.secret_key``, or from a secret generated once and kept in the database."""
    secret = secret_key or secrets.get_or_create(store, SECRET_NAME, now)
    return ExhaustKeys(secret)
