"""Exhaust submit bodies whose datasetConfig holds an empty list (found by the response-conformance run)."""

from __future__ import annotations

from learnagg.adapters.store.tables import users
from tests.entrypoints.api.support import ADMIN, Api

CHANNEL = "org-1"


def test_an_empty_list_in_dataset_config_is_not_a_server_error(api: Api) -> None:
    """An empty list anywhere in datasetConfig is measured as 0 items, not a 500."""
    with api.app.store.write() as conn:
        conn.execute(users.insert(), {"id": ADMIN, "root_org_id": CHANNEL, "roles": ["PLATFORM_ADMIN", "ORG_ADMIN"]})
    for tag, config in enumerate(({"batchId": "b-1", "x": []}, {"batchId": "b-1", "x": [[], {"y": []}]})):
        request = {"tag": f"t{tag}", "dataset": "progress-exhaust", "datasetConfig": config}
        response = api.as_admin().post("/v1/dataset/request/submit", request, headers={"X-Channel-ID": CHANNEL})
        body = response.json()
        assert response.status_code == 200, body
        assert body["params"]["status"] == "successful" and body["result"]["datasetConfig"] == config
