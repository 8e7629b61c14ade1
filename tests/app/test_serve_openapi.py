"""Issue 19 item 8: /openapi.json matches the service: k's bounds, every status each route can return with the
real error body, the /search request and response schemas; real answers validate against the same models."""
from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from fashionsearchnet.app.server import Limits, create_app  # noqa: E402
from fashionsearchnet.app.server.models import ErrorBody, Health, ItemsPage, SearchResponse  # noqa: E402
from tests.support.serve_fake_backend import FakeBackend  # noqa: E402


@pytest.fixture()
def client(tmp_path):
    app = create_app(FakeBackend(tmp_path / "cat"), Limits(k_max=37, k_default=9, max_upload_bytes=64 * 1024),
                     load_in_background=False)
    with TestClient(app) as c:
        yield c


def _resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_search_spec_states_limits_statuses_and_bodies(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/search"]["post"]
    body = post["requestBody"]["content"]
    for ctype in ("application/json", "multipart/form-data"):
        k = body[ctype]["schema"]["properties"]["k"]
        assert (k["minimum"], k["maximum"], k["default"]) == (1, 37, 9), ctype
    js = body["application/json"]["schema"]
    assert js["additionalProperties"] is False and set(js["properties"]) == {"item_id", "sets", "filters", "k"}
    assert body["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"
    assert {"200", "400", "404", "413", "415", "422", "500", "503"} <= set(post["responses"])
    for code, r in post["responses"].items():
        schema = _resolve(spec, r["content"]["application/json"]["schema"])
        if code == "200":
            assert {"query", "results", "method", "took_ms"} <= set(schema["required"])
            result = _resolve(spec, schema["properties"]["results"]["items"])
            assert {"id", "distance", "predicted", "metadata", "image_url"} <= set(result["properties"])
        else:
            assert schema["required"] == ["error"], code
    # no route advertises FastAPI's default validation body: the real 422 is the error body
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert "503" in op["responses"] or path == "/openapi.json", path


def test_real_answers_validate_against_the_declared_models(client):
    SearchResponse.model_validate(client.post("/search", json={"item_id": "images/001.png", "k": 4}).json())
    ItemsPage.model_validate(client.get("/items").json())
    Health.model_validate(client.get("/health").json())
    errors = [
        client.post("/search", json={"item_id": "images/001.png", "sets": ["color=magenta"]}),  # 422 + valid
        client.post("/search", json={"item_id": "images/001.png", "k": 38}),  # over k's maximum
        client.post("/search", content=b"x", headers={"content-type": "text/plain"}),  # 415
        client.post("/search", content=b"{", headers={"content-type": "application/json"}),  # 400
        client.post("/search", json={"item_id": "nope"}),  # 404
        client.post("/search", content=b"x" * 70_000, headers={"content-type": "application/json"}),  # 413
        client.get("/items", params={"limit": 10_000}),  # 422 on a query parameter
    ]
    assert [r.status_code for r in errors] == [422, 422, 415, 400, 404, 413, 422]
    for r in errors:
        e = ErrorBody.model_validate(r.json())
        assert e.error and "\n" not in e.error
