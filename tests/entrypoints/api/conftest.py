"""API fixtures: the FastAPI app on the test database, called over HTTP through httpx (TestClient)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from learnagg import bootstrap
from learnagg.entrypoints.api.app import create_app
from tests.entrypoints.api.support import Api


@pytest.fixture
def api(app: bootstrap.App) -> Iterator[Api]:
    """An HTTP client for the service; ``api.as_user("u-1")`` / ``api.as_admin()`` add a signed token."""
    service = create_app(app)
    with TestClient(service, raise_server_exceptions=False) as client:
        yield Api(client, app, service.state.token_keys)
