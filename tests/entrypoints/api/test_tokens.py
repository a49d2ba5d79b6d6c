"""Token checks (docs/threat-model.md): `exp` required, `nbf`/`iat` not in the future, `iss`/`aud` when configured,
RS256 keys from static PEM or a JWKS URL (cached, rate-limited refresh, key server down = 401)."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from learnagg import bootstrap
from learnagg.entrypoints.api.app import create_app
from learnagg.settings import AuthSettings, Settings
from tests.entrypoints.api.support import Api, error
from tests.support import TestClock

NOW = 1_700_000_000  # T in seconds
DAY = 86_400
REQUEST = {"groupId": "nope", "activityId": "a", "activityType": "Course"}


def claims(**extra: Any) -> dict[str, Any]:
    """Claims of a token for u-1 issued at T, valid for an hour; ``None`` values drop a claim."""
    base: dict[str, Any] = {"sub": "f:idp:u-1", "iat": NOW, "exp": NOW + 3600}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def call(api: Api, token: str) -> Any:
    """One authenticated request: 404 GROUP_NOT_FOUND means the token was accepted."""
    return api.post("/v1/group/activity/agg", REQUEST, headers={"x-authenticated-user-token": token})


def accepted(api: Api, token: str) -> None:
    error(call(api, token), 404, "GROUP_NOT_FOUND")


def refused(api: Api, token: str) -> None:
    error(call(api, token), 401, "UNAUTHORIZED_USER", "You are not authorized.")


@pytest.fixture
def make_api(database_url: str, clock: TestClock) -> Iterator[Any]:
    """Build the service with the given auth settings (several may be open in one test)."""
    opened: list[tuple[bootstrap.App, TestClient]] = []

    def build(**auth: Any) -> Api:
        app = bootstrap.build(Settings(database_url=database_url, auth=AuthSettings(**auth)), clock=clock)
        service = create_app(app)
        client = TestClient(service, raise_server_exceptions=False)
        client.__enter__()
        opened.append((app, client))
        return Api(client, app, service.state.token_keys)

    yield build
    for app, client in opened:
        client.__exit__(None, None, None)
        app.close()


# --- embedded HS256 mode ----------------------------------------------------------------------------------------


def hs(api: Api, payload: dict[str, Any]) -> str:
    return jwt.encode(payload, api.keys.secret, algorithm="HS256")


def test_a_token_without_exp_is_refused(api: Api) -> None:
    accepted(api, hs(api, claims()))
    refused(api, hs(api, claims(exp=None)))


@pytest.mark.parametrize("exp", ["NaN", "Infinity", '"2099-01-01"', "true", "null"])
def test_a_token_whose_exp_is_not_a_finite_number_is_refused(api: Api, exp: str) -> None:
    # Python's JSON reader accepts NaN/Infinity; NaN compares false with everything, so it would never expire.
    payload = json.dumps(claims(exp=None))[:-1] + f', "exp": {exp}}}'
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).decode()
    body = jwt.utils.base64url_encode(payload.encode()).decode()
    signing = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256)
    signature = signing.sign(f"{header}.{body}".encode(), signing.prepare_key(api.keys.secret))
    token = [header, body, jwt.utils.base64url_encode(signature).decode()]
    refused(api, ".".join(token))


def test_an_expired_token_is_refused(api: Api, clock: TestClock) -> None:
    token = hs(api, claims(exp=NOW + 60))
    accepted(api, token)
    clock.now += 60_000
    refused(api, token)


@pytest.mark.parametrize("name", ["nbf", "iat"])
def test_nbf_and_iat_in_the_future_beyond_the_leeway_are_refused(api: Api, name: str) -> None:
    leeway = api.app.settings.auth.leeway_seconds
    assert leeway == 30
    accepted(api, hs(api, claims(**{name: NOW + leeway})))
    refused(api, hs(api, claims(**{name: NOW + leeway + 1})))
    refused(api, hs(api, claims(**{name: NOW + DAY})))
    refused(api, hs(api, claims(**{name: "soon"})))


def test_issuer_and_audience_must_match_when_configured(make_api: Any) -> None:
    api = make_api(issuer="https://idp.example/realms/sunbird", audience="learnagg")
    good = {"iss": "https://idp.example/realms/sunbird", "aud": "learnagg"}
    accepted(api, hs(api, claims(**good)))
    accepted(api, hs(api, claims(**{**good, "aud": ["account", "learnagg"]})))
    for bad in (
        {"iss": None},
        {"iss": "https://other.example/realms/sunbird"},
        {"aud": None},
        {"aud": "another-client"},
        {"aud": ["account"]},
    ):
        refused(api, hs(api, claims(**{**good, **bad})))


def test_without_issuer_and_audience_settings_they_are_not_checked(api: Api) -> None:
    accepted(api, hs(api, claims(iss="anyone", aud="anything")))


def test_minted_tokens_carry_exp_and_the_configured_issuer_and_audience(make_api: Any) -> None:
    api = make_api(issuer="https://learnagg.example", audience="portal")
    token = api.keys.mint("u-1", api.app.clock(), ["PLATFORM_ADMIN"])
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["iss"] == "https://learnagg.example" and payload["aud"] == "portal"
    assert payload["exp"] == NOW + api.app.settings.auth.token_ttl_seconds
    accepted(api, token)


# --- RS256 ------------------------------------------------------------------------------------------------------


@dataclass
class KeyPair:
    kid: str
    private: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def jwk(self) -> dict[str, Any]:
        out: dict[str, Any] = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**out, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, payload: dict[str, Any], kid: str | None = "") -> str:
        headers = {"kid": self.kid if kid == "" else kid} if kid is not None else None
        return jwt.encode(payload, self.private, algorithm="RS256", headers=headers)


@pytest.fixture(scope="module")
def key_a() -> KeyPair:
    return KeyPair("key-a")


@pytest.fixture(scope="module")
def key_b() -> KeyPair:
    return KeyPair("key-b")


class KeyServer:
    """A JWKS endpoint on 127.0.0.1 serving ``keys``; counts its requests; ``status`` != 200 simulates a failure."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps({"keys": outer.keys}).encode() if outer.status == 200 else b"oops"
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/realms/sunbird/protocol/openid-connect/certs"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.stop()


def free_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a key server that is down)."""
    server = KeyServer()
    url = server.url
    server.stop()
    return url


def test_rs256_static_key_checks_issuer_and_audience(make_api: Any, key_a: KeyPair) -> None:
    api = make_api(public_keys=[key_a.pem()], issuer="https://idp.example", audience="learnagg")
    good = {"iss": "https://idp.example", "aud": "learnagg"}
    accepted(api, key_a.sign(claims(**good)))
    refused(api, key_a.sign(claims(**{**good, "iss": "https://evil.example"})))
    refused(api, key_a.sign(claims(**{**good, "aud": "other-client"})))
    refused(api, key_a.sign(claims(**{**good, "exp": None})))
    refused(api, key_a.sign(claims(**{**good, "nbf": NOW + DAY})))


def test_jwks_keys_are_fetched_once_and_cached(make_api: Any, key_server: KeyServer, key_a: KeyPair, clock) -> None:
    key_server.keys = [key_a.jwk()]
    api = make_api(jwks_url=key_server.url, jwks_cache_seconds=300, issuer="https://idp.example")
    for _ in range(5):
        accepted(api, key_a.sign(claims(iss="https://idp.example")))
    refused(api, key_a.sign(claims(iss="https://evil.example")))
    refused(api, key_a.sign(claims(iss="https://idp.example", exp=None)))
    assert key_server.hits == 1
    clock.now += 301_000  # the cache expires: the next token fetches the keys again
    accepted(api, key_a.sign(claims(iss="https://idp.example", exp=NOW + 3600)))
    assert key_server.hits == 2


def test_jwks_token_without_kid_is_checked_against_every_key(
    make_api: Any, key_server: KeyServer, key_a: KeyPair, key_b: KeyPair
) -> None:
    key_server.keys = [key_b.jwk(), key_a.jwk()]
    api = make_api(jwks_url=key_server.url)
    accepted(api, key_a.sign(claims(), kid=None))
    refused(api, KeyPair("key-a").sign(claims()))  # same kid, another private key


def test_jwks_key_rotation_unknown_kid_refreshes_once(
    make_api: Any, key_server: KeyServer, key_a: KeyPair, key_b: KeyPair, clock
) -> None:
    key_server.keys = [key_a.jwk()]
    api = make_api(jwks_url=key_server.url)
    accepted(api, key_a.sign(claims()))
    assert key_server.hits == 1
    key_server.keys = [key_b.jwk()]  # the identity server rotates its key
    clock.now += 10_000
    accepted(api, key_b.sign(claims()))  # unknown kid: one refresh finds it
    assert key_server.hits == 2
    refused(api, key_a.sign(claims()))  # the old key is gone from the refreshed set
    assert key_server.hits == 2  # within the refresh interval: no new fetch


def test_jwks_flood_of_unknown_kids_fetches_at_most_once(
    make_api: Any, key_server: KeyServer, key_a: KeyPair, clock
) -> None:
    key_server.keys = [key_a.jwk()]
    api = make_api(jwks_url=key_server.url)
    accepted(api, key_a.sign(claims()))
    clock.now += 10_000
    for _ in range(30):
        refused(api, key_a.sign(claims(), kid=str(uuid.uuid4())))
    assert key_server.hits == 2
    accepted(api, key_a.sign(claims()))
    assert key_server.hits == 2


def test_jwks_server_down_is_401_and_logged(make_api: Any, key_a: KeyPair, caplog) -> None:
    api = make_api(jwks_url=free_url())
    with caplog.at_level(logging.WARNING, logger="learnagg.auth"):
        refused(api, key_a.sign(claims()))
    assert any("JWKS" in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.parametrize("status", [500, 200])
def test_jwks_server_errors_and_bad_documents_are_401(
    make_api: Any, key_server: KeyServer, key_a: KeyPair, status: int, clock
) -> None:
    key_server.status = status
    key_server.keys = [{"kty": "nonsense"}]
    api = make_api(jwks_url=key_server.url)
    refused(api, key_a.sign(claims()))
    key_server.status, key_server.keys = 200, [key_a.jwk()]
    refused(api, key_a.sign(claims()))  # no retry within the refresh interval
    clock.now += 10_000
    accepted(api, key_a.sign(claims()))  # the server is back


def test_garbage_tokens_never_reach_the_key_server(make_api: Any, key_server: KeyServer) -> None:
    api = make_api(jwks_url=key_server.url)
    for token in ("not-a-jwt", "a.b.c", jwt.encode(claims(), "x" * 32, algorithm="HS256")):
        refused(api, token)
    assert key_server.hits == 0


def test_embedded_tokens_are_refused_in_rs256_mode(make_api: Any, key_server: KeyServer, key_a: KeyPair) -> None:
    key_server.keys = [key_a.jwk()]
    api = make_api(jwks_url=key_server.url)
    assert not api.keys.embedded
    # An HS256 token "signed" with the RSA public key (algorithm confusion) is refused.
    refused(api, jwt.encode(claims(), "x" * 32, algorithm="HS256", headers={"kid": "key-a"}))
