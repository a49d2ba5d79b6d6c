"""Fuzzing every route from /openapi.json (schemathesis): bad input never gives a server error (issue: Bad input).

Two runs: schemathesis' own valid and invalid cases, and hostile cases where values of a valid case are replaced
by what the schema does not foresee (huge and non-finite numbers, numbers as text in other scripts, NUL, deep
nesting, giant strings).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any
from urllib.parse import quote

import schemathesis
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from learnagg import bootstrap
from learnagg.adapters.store.tables import users
from learnagg.entrypoints.api.app import create_app
from learnagg.entrypoints.api.routers import ROUTERS
from tests.entrypoints.api.support import ADMIN

EXAMPLES = 25  # per operation, mode and backend: bounded so the suite stays fast
HOSTILE_EXAMPLES = 16  # per operation and backend: with the sweeps below, both backends in about 40 s
MIN_OPERATIONS = 27  # every route of SPEC §5.4–5.9 plus the platform reads and /health
CHANNEL = "fuzz-org"


def _service_and_headers(app: bootstrap.App) -> tuple[Any, dict[str, str]]:
    """The service and an admin's headers; the admin also holds an exhaust role in the channel sent, so the
    exhaust routes get past their access check."""
    with app.store.write() as conn:
        conn.execute(users.insert(), {"id": ADMIN, "root_org_id": CHANNEL, "roles": ["PLATFORM_ADMIN", "ORG_ADMIN"]})
    service = create_app(app)
    token = service.state.token_keys.mint(ADMIN, app.clock(), ["PLATFORM_ADMIN"])
    return service, {"x-authenticated-user-token": token, "X-Channel-ID": CHANNEL}


def _operations(service: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", service)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= MIN_OPERATIONS
    return operations


def _check(case: schemathesis.Case, headers: dict[str, str]) -> None:
    response = case.call(headers=headers)
    assert response.status_code < 500, (case.as_curl_command(), response.text[:2000])
    if not case.path.startswith(("/v1/", "/dataset/", "/data/")):
        return  # the service routes (health, metrics) answer in their own shapes
    body = response.json()
    # The exhaust routes answer in the reference analytics envelope (SPEC §5.10, `ver` "1.0").
    assert body["ver"] == ("1.0" if body["id"].startswith("ekstep.analytics") else "v1")


def test_no_route_answers_a_server_error(app: bootstrap.App) -> None:
    """Valid and invalid bodies, paths and queries for every operation, sent with an admin token."""
    service, headers = _service_and_headers(app)
    for operation, mode in itertools.product(_operations(service), schemathesis.GenerationMode):

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: schemathesis.Case) -> None:
            _check(case, headers)

        with contextlib.suppress(Unsatisfiable):  # e.g. no invalid input exists for GET /health
            fuzz()


# --- hostile values beyond the schema's types ---------------------------------------------------------------------


def _deep(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


HOSTILE_TEXT = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "1e26",
    "9223372036854775808",
    "\u0000",
    "a\u0000b",
    "١٢",  # Arabic-Indic digits: not a number here
    "²",
    "٣.٥",
    "9" * 5000,
    "x" * 200_000,
    " ",
    "0001-01-01 00:00:00:000+1400",
    "9999-12-31 23:59:59:999-1400",
    "2023-02-30",
    "../../etc/passwd",
    "\ud7ff\ufffe",
]
HOSTILE_NUMBERS: list[Any] = [
    2**63,
    -(2**63) - 1,
    10**400,
    1e26,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    -0.0,
    5e-324,
    True,
]
HOSTILE_VALUES = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.sampled_from(HOSTILE_NUMBERS),
    st.builds(_deep, st.integers(min_value=60, max_value=400), st.sampled_from([1, "x", None, 1e308])),
    st.sampled_from([None, [], {}, [None], {"": None}, ["x"] * 1001, [1e308] * 3, [{"k": "\u0000"}]]),
)


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    """Every place in a JSON value that can be replaced (dict keys and list indices), up to 6 levels."""
    out: list[tuple[Any, ...]] = []
    if depth >= 6:
        return out
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        out.append((*prefix, key))
        out.extend(_paths(inner, (*prefix, key), depth + 1))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value.get(head), rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def _hostile_body(draw: st.DrawFn, body: Any) -> Any:
    """The body with one to three values replaced, or a hostile field added under ``request``."""
    if not isinstance(body, dict | list):
        return draw(HOSTILE_VALUES)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(body)
        if isinstance(body, dict) and isinstance(body.get("request"), dict):
            paths.append(("request", draw(st.sampled_from(["userId", "extra", "courseIds", "progressdetails"]))))
        if not paths:
            return draw(HOSTILE_VALUES)
        path = draw(st.sampled_from(paths))
        body = _replace(body, path, draw(HOSTILE_VALUES))
    return body


def _text(value: Any) -> str:
    """A hostile value as URL text, cut to 8,000 characters (a URL has at most 64 KiB)."""
    return (value if isinstance(value, str) else str(value))[:8000]


def test_hostile_values_never_give_a_server_error(app: bootstrap.App) -> None:
    """Valid cases with hostile values swapped in, in bodies, queries and paths, for every operation.

    Bodies are written with Python's JSON encoder, which also writes ``NaN`` and ``Infinity`` literals.
    """
    service, headers = _service_and_headers(app)
    with TestClient(service, raise_server_exceptions=False) as client:
        for operation in _operations(service):

            @given(case=operation.as_strategy(schemathesis.GenerationMode.POSITIVE), data=st.data())
            @settings(
                max_examples=HOSTILE_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
            )
            def fuzz(case: schemathesis.Case, data: st.DataObject) -> None:
                content = None
                if case.body is not None and not isinstance(case.body, bytes | str):
                    content = json.dumps(data.draw(_hostile_body(case.body), label="body")).encode()
                query, path = dict(case.query or {}), dict(case.path_parameters or {})
                query_names = sorted(p.name for p in case.operation.query)
                for params, declared in ((query, query_names), (path, sorted(path))):
                    if declared:  # every declared parameter, also the optional ones the case left out
                        name = data.draw(st.sampled_from(declared), label="parameter")
                        params[name] = _text(data.draw(HOSTILE_VALUES, label="value"))
                url = case.path.format(**{k: quote(str(v), safe="") for k, v in path.items()})
                response = client.request(case.method, url, params=query, content=content, headers=headers)
                described = (case.method, url[:300], str(query)[:300], (content or b"")[:300])
                assert response.status_code < 500, (described, response.text[:2000])

            with contextlib.suppress(Unsatisfiable):
                fuzz()


def test_every_hostile_text_in_every_parameter(app: bootstrap.App) -> None:
    """Each hostile text in each query and path parameter of each operation, the others left plain."""
    service, headers = _service_and_headers(app)
    texts = [_text(v) for v in (*HOSTILE_TEXT, *HOSTILE_NUMBERS)]
    with TestClient(service, raise_server_exceptions=False) as client:
        for operation in _operations(service):
            names = [("query", p.name) for p in operation.query] + [("path", p.name) for p in operation.path_parameters]
            for (where, name), text in itertools.product(names, texts):
                path = {p.name: "x" for p in operation.path_parameters}
                query = {}
                if where == "path":
                    path[name] = text
                else:
                    query[name] = text
                url = operation.path.format(**{k: quote(v, safe="") for k, v in path.items()})
                response = client.request(operation.method.upper(), url, params=query, headers=headers)
                assert response.status_code < 500, (operation.method, url[:300], str(query)[:300], response.text[:500])


BODY_SWEEP: list[Any] = [
    2**63,
    1e308,
    float("nan"),
    "1e999",
    "١٢",
    "a\u0000b",
    "x" * 200_000,
    _deep(300),
    ["x"] * 1001,
    {},
]


def test_every_hostile_value_in_every_body_field(app: bootstrap.App) -> None:
    """Each hostile value in each field of each request model, alone in an otherwise empty request."""
    service, headers = _service_and_headers(app)
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute) and r.body_field is not None]
    assert len(routes) >= 15
    with TestClient(service, raise_server_exceptions=False) as client:
        for route in routes:
            model = route.body_field.field_info.annotation  # type: ignore[union-attr]
            request_model = getattr(model, "model_fields", {}).get("request")
            fields = list(request_model.annotation.model_fields) if request_model is not None else ["tag", "dataset"]
            url = route.path.format(**{name: "x" for name in route.param_convertors})
            for name, value in itertools.product(fields, BODY_SWEEP):
                content = json.dumps({"request": {name: value}}).encode()
                for method in route.methods:
                    response = client.request(method, url, content=content, headers=headers)
                    assert response.status_code < 500, (method, url, name, str(value)[:100], response.text[:500])


RAW_BODIES = [
    b"[" * 500_000,
    b'{"request": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"request": {"x": ' + b"9" * 5000 + b"}}",
    b'{"request": {"x": NaN, "y": -Infinity}}',
    b"\xff\xfe\x00{",
    b'\xef\xbb\xbf{"request": {}}',
    b"null",
    b'"request"',
    b"",
]


def test_every_raw_body_on_every_route(app: bootstrap.App) -> None:
    """Bodies that are not JSON, or that the JSON decoder gives up on, on every route that reads a body."""
    service, headers = _service_and_headers(app)
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute) and r.body_field is not None]
    with TestClient(service, raise_server_exceptions=False) as client:
        for route, content in itertools.product(routes, RAW_BODIES):
            url = route.path.format(**{name: "x" for name in route.param_convertors})
            for method in route.methods:
                response = client.request(method, url, content=content, headers=headers)
                assert response.status_code < 500, (method, url, content[:50], response.text[:500])
