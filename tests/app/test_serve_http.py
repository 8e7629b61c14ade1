"""The HTTP layer (app/server.py) against a planted-truth backend: routes, bad input, readiness, limits."""
from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from fashionsearchnet.app.server import Limits, create_app  # noqa: E402
from fashionsearchnet.search.request import Request  # noqa: E402
from tests.support.serve_fake_backend import PALETTE, FakeBackend  # noqa: E402


def png(h: int, w: int, rgb=(220, 30, 30)) -> bytes:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = rgb[::-1]
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def wait_ready(c: TestClient, timeout: float = 10.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if c.get("/health").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError("service never became ready")


@pytest.fixture()
def client(tmp_path):
    backend = FakeBackend(tmp_path / "cat")
    app = create_app(backend, Limits(max_upload_bytes=64 * 1024, max_side=400, max_pixels=100_000, k_max=20))
    with TestClient(app) as c:
        wait_ready(c)
        c.backend = backend
        yield c


def test_health_is_503_until_loaded_then_200(tmp_path):
    gate = threading.Event()
    backend = FakeBackend(tmp_path / "cat", gate=gate)
    with TestClient(create_app(backend)) as c:
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        assert c.get("/attributes").status_code == 503
        assert c.post("/search", json={"item_id": "images/000.png"}).status_code == 503
        gate.set()
        wait_ready(c)
        body = c.get("/health").json()
        assert body["status"] == "ready" and body["items"] == 24


def test_health_reports_a_failed_load(tmp_path):
    backend = FakeBackend(tmp_path / "cat")

    def boom():
        raise RuntimeError("gallery folder vanished")

    backend.load = boom
    with TestClient(create_app(backend)) as c:
        for _ in range(200):
            r = c.get("/health")
            if r.json()["status"] == "failed":
                break
            time.sleep(0.01)
        assert r.status_code == 503 and "gallery folder vanished" in r.json()["error"]


def test_attributes_lists_schema_and_regions(client):
    body = client.get("/attributes").json()
    names = [a["name"] for a in body["attributes"]]
    assert names == ["category", "collar", "sleeve", "color", "pattern"]
    regions = {r["name"]: r for r in body["regions"]}
    assert regions["sleeve"]["attributes"] == ["color", "pattern"]
    assert regions["sleeve"]["values"]["color"] == [a for a in body["attributes"] if a["name"] == "color"][0]["values"]
    assert body["primary_region"] == "torso"


def test_items_are_paged_and_filtered(client):
    first = client.get("/items", params={"offset": 0, "limit": 10}).json()
    second = client.get("/items", params={"offset": 10, "limit": 10}).json()
    assert first["total"] == 24 and len(first["items"]) == 10 and len(second["items"]) == 10
    assert [it["id"] for it in first["items"]] == [f"images/{i:03d}.png" for i in range(10)]
    assert second["items"][0]["id"] == "images/010.png"
    reds = client.get("/items", params=[("filter", "color=red"), ("limit", 50)]).json()
    assert reds["total"] == 6 and all(it["predicted"]["color"]["value"] == "red" for it in reds["items"])
    assert client.get("/items", params={"limit": 100000}).status_code == 422


def test_item_image_is_served_and_unknown_is_404(client):
    url = client.get("/items").json()["items"][3]["image_url"]
    r = client.get(url)
    assert r.status_code == 200
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (48, 32, 3) and tuple(img[0, 0][::-1]) == PALETTE["white"]  # item 3 is the 4th colour
    r = client.get("/items/nope.png/image")
    assert r.status_code == 404 and "nope.png" in r.json()["error"]


def test_search_by_item_with_colour_change_ranks_that_colour_first(client):
    plain = client.post("/search", json={"item_id": "images/001.png", "k": 5}).json()
    assert plain["query"]["item_id"] == "images/001.png"
    assert plain["query"]["predicted"]["color"]["value"] == "blue"
    assert "images/001.png" not in [r["id"] for r in plain["results"]]
    d = [r["distance"] for r in plain["results"]]
    assert d == sorted(d) and len(d) == 5
    red = client.post("/search", json={"item_id": "images/001.png", "sets": ["color=red"], "k": 5}).json()
    # planted truth: every red item differs from the manipulated query in fewer attributes than non-red ones
    backend = client.backend
    want = dict(backend.items[1]["attrs"], color="red")
    truth = sorted((sum(it["attrs"][a] != v for a, v in want.items()), i)
                   for i, it in enumerate(backend.items) if i != 1)[:5]
    assert [r["id"] for r in red["results"]] == [backend.items[i]["id"] for _, i in truth]
    assert [r["id"] for r in red["results"]] != [r["id"] for r in plain["results"]]
    assert red["results"][0]["image_url"].startswith("/items/images%2F")


def test_search_by_form_upload_returns_query_attributes_and_boxes(client):
    files = {"image": ("q.png", png(60, 40, PALETTE["green"]), "image/png")}
    r = client.post("/search", files=files, data={"k": "3", "filters": ["pattern=solid"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["width"] == 40 and body["query"]["height"] == 60
    assert body["query"]["predicted"]["color"]["value"] == "green"
    assert {b["name"] for b in body["query"]["boxes"]} == {"collar", "torso"}
    assert body["query"]["boxes"][0]["box"] == [10.0, 0.0, 30.0, 15.0]
    assert len(body["results"]) <= 3 and all(x["predicted"]["pattern"]["value"] == "solid" for x in body["results"])
    r = client.post("/search", files=files, data={"sets": ["sleeve:color=red", "collar=v_neck"]})
    assert r.status_code == 200 and r.json()["sets"] == ["sleeve:color=red", "collar=v_neck"]


def test_oversized_upload_is_413(client):
    big = b"\xff\xd8" + b"\0" * (70 * 1024)
    r = client.post("/search", files={"image": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_oversized_chunked_upload_is_413(client):
    def chunks():
        for _ in range(40):
            yield b"x" * 4096

    r = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_oversized_image_dimensions_are_413(client):
    r = client.post("/search", files={"image": ("wide.png", png(10, 500), "image/png")})
    assert r.status_code == 413 and "500x10" in r.json()["error"]


def test_not_an_image_is_400_with_a_message(client):
    r = client.post("/search", files={"image": ("notes.txt", b"hello, this is text", "text/plain")})
    assert r.status_code == 400
    assert "cannot decode" in r.json()["error"] and "JPEG" in r.json()["error"]
    r = client.post("/search", files={"image": ("empty.jpg", b"", "image/jpeg")})
    assert r.status_code == 400


@pytest.mark.parametrize("sets, key, must_contain", [
    (["colour=red"], "attributes", ["category", "color", "pattern"]),
    (["color=magenta"], "values", ["red", "blue", "pink"]),
    (["hem:color=red"], "regions", ["collar", "sleeve", "torso"]),
    (["collar:pattern=striped"], "attributes", ["color"]),
])
def test_unknown_attribute_value_or_region_is_422_listing_valid_ones(client, sets, key, must_contain):
    r = client.post("/search", json={"item_id": "images/000.png", "sets": sets})
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(must_contain) <= set(body["valid"][key])
    assert all(v in body["error"] for v in must_contain)


def test_malformed_json_is_400(client):
    r = client.post("/search", content=b'{"item_id": "images/000.png", "sets": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON at line 1" in r.json()["error"]
    r = client.post("/search", json=["item_id"])
    assert r.status_code == 400
    r = client.post("/search", json={"item_id": "images/000.png", "sets": "color=red", "bogus": 1})
    assert r.status_code == 400 and "bogus" in r.json()["error"]
    r = client.post("/search", json={"item_id": 5})
    assert r.status_code == 400
    deep = b'{"item_id": "images/000.png", "sets": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    r = client.post("/search", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]


@pytest.mark.parametrize("k", [2.5, True, "2.5", float("inf"), [3], "-", "--3", "3e0"])
def test_k_that_is_not_a_whole_number_is_422(client, k):
    body = json.dumps({"item_id": "images/000.png", "k": k}).encode()  # inf -> Infinity, which json.loads accepts
    r = client.post("/search", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not a whole number" in r.json()["error"]


@pytest.mark.parametrize("k, n", [(3, 3), (3.0, 3), ("4", 4)])
def test_k_as_whole_float_or_digit_string_is_taken(client, k, n):
    r = client.post("/search", json={"item_id": "images/000.png", "k": k})
    assert r.status_code == 200 and len(r.json()["results"]) == n


def test_k_null_means_the_default(client):
    r = client.post("/search", json={"item_id": "images/000.png", "k": None})
    assert r.status_code == 200 and len(r.json()["results"]) == Limits().k_default


def test_other_client_mistakes_are_4xx_not_500(client):
    assert client.post("/search", json={}).status_code == 422  # no query and nothing described (issue 24)
    r = client.post("/search", files={"image": ("q.png", png(8, 8), "image/png")}, data={"item_id": "images/000.png"})
    assert r.status_code == 400  # two queries
    assert client.post("/search", json={"item_id": "images/000.png", "k": 0}).status_code == 422
    assert client.post("/search", json={"item_id": "images/000.png", "k": "many"}).status_code == 422
    assert client.post("/search", json={"item_id": "no/such.png"}).status_code == 404
    assert client.post("/search", json={"item_id": "images/000.png", "sets": ["color"]}).status_code == 422
    assert client.post("/search", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/search", content=b"\xff\xfe", headers={"content-type": "application/json"}).status_code == 400


def test_openapi_and_page(client):
    spec = client.get("/openapi.json").json()
    assert {"/search", "/attributes", "/health", "/items", "/items/{item_id}/image"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/search"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 404  # FastAPI's docs page loads scripts from a CDN: off
    page = client.get("/")
    assert page.status_code == 200 and "<title>" in page.text
    for ref in ("/static/kiosk.js", "/static/kiosk.css"):
        assert ref in page.text and client.get(ref).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # offline: no CDN
    js = client.get("/static/kiosk.js").text
    assert "http://" not in js and "https://" not in js


def test_model_work_is_bounded_by_the_concurrency_limit(tmp_path):
    backend = FakeBackend(tmp_path / "cat", delay_s=1.0)
    statuses: list[int] = []
    with TestClient(create_app(backend, Limits(concurrency=2))) as c:
        wait_ready(c)

        def one(i: int) -> None:
            statuses.append(c.post("/search", json={"item_id": f"images/{i:03d}.png", "k": 3}).status_code)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        health = c.get("/health")  # the event loop answers while model work waits in the pool
        t_health = time.perf_counter() - t0
        for t in threads:
            t.join(20)
    assert statuses == [200] * 6
    assert backend.max_active == 2
    assert health.status_code == 200 and t_health < 0.9  # well before one search (1 s) is done


def test_sets_are_parsed_once_into_a_request_and_every_mistake_names_the_entry(client):
    seen = []
    search = client.backend.search

    def recording(query, request, filters, k):
        seen.append(request)
        return search(query, request, filters, k)

    client.backend.search = recording
    r = client.post("/search", json={"item_id": "images/000.png", "sets": [" sleeve : color = red", "color=blue"]})
    assert r.status_code == 200, r.text
    assert seen == [Request(set=(("color", "blue"),), region=(("sleeve", "color", "red"),))]
    r = client.post("/search", json={"item_id": "images/000.png", "sets": ["color"]})
    assert r.status_code == 422 and r.json()["error"].startswith("sets 'color': expected attr=value")
    assert "color" in r.json()["valid"]["attributes"]
    r = client.post("/search", json={"item_id": "images/000.png", "sets": ["color=red", "color=blue"]})
    assert r.status_code == 422 and "asked twice" in r.json()["error"] and r.json().get("valid") is None
    assert len(seen) == 1  # a refused request never reaches the backend


def test_sets_alone_search_by_the_described_values_json_and_form(client):
    """Issue 24: no image, no item_id, only sets: the described values (the fake ranks by how many match)."""
    r = client.post("/search", json={"sets": ["color=blue"], "k": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["item_id"] is None and body["query"]["boxes"] == [] and body["sets"] == ["color=blue"]
    assert [x["predicted"]["color"]["value"] for x in body["results"]] == ["blue"] * 4
    f = client.post("/search", data={"sets": ["color=blue"], "k": "4"})
    assert f.status_code == 200 and [x["id"] for x in f.json()["results"]] == [x["id"] for x in body["results"]]


@pytest.mark.parametrize("send", [lambda c: c.post("/search", json={}), lambda c: c.post("/search", json={"sets": []}),
                                  lambda c: c.post("/search", data={"k": "3"})])
def test_no_query_and_nothing_described_is_422_listing_the_attributes(client, send):
    r = send(client)
    assert r.status_code == 422
    body = r.json()
    assert body["error"].startswith("no query: give a query image or item id, or describe the item with sets attr=value")
    assert "\n" not in body["error"] and body["valid"]["attributes"] == [a.name for a in client.backend.schema.attributes]
