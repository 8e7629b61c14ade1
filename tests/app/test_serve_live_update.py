"""Issue 19 item 3: the service follows the catalogue. `fsn update` (add, remove, metadata) publishes a new
generation while clients search; the service picks it up without a restart, no request in flight fails, and
/health reports the generation served."""
from __future__ import annotations

import shutil
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("torch")
from fastapi.testclient import TestClient  # noqa: E402

from fashionsearchnet.app.cli import main  # noqa: E402
from fashionsearchnet.app.gallery_service import GalleryService  # noqa: E402
from fashionsearchnet.app.server import Limits, create_app  # noqa: E402


@pytest.fixture()
def site(tmp_path, tmp_path_factory, tiny_synth):
    from tests.support.make_tiny_bundle import asset_copy

    bundle = asset_copy(tmp_path_factory)
    for folder, names in (("cat", [f"{i}.jpg" for i in range(8)]), ("more", ["n0.jpg", "n1.jpg"])):
        (tmp_path / folder).mkdir()
        for j, name in enumerate(names):
            shutil.copy(tiny_synth / "images" / f"{j + (20 if folder == 'more' else 0):06d}.jpg", tmp_path / folder / name)
    assert main(["index", str(bundle), str(tmp_path / "cat"), "--out", str(tmp_path / "gal")]) == 0
    return tmp_path


def _ids(c: TestClient, query: str) -> list[str]:
    """Every other live item, ranked."""
    k = c.get("/health").json()["items"] - 1
    r = c.post("/search", json={"item_id": query, "k": k})
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["results"]]


def test_update_is_served_without_restart_while_clients_search(site):
    backend = GalleryService(site / "gal", backend="ort", poll_s=0.05)
    with TestClient(create_app(backend, Limits(), load_in_background=False)) as c:
        h0 = c.get("/health").json()
        assert h0["status"] == "ready" and h0["items"] == 8
        gen0 = h0["generation"]
        assert "3.jpg" in _ids(c, "1.jpg")
        assert c.get("/items", params={"filter": "brand=acme"}).status_code == 422  # no such column yet
        statuses: list[int] = []
        failures: list[str] = []
        stop = threading.Event()

        def hammer(i: int) -> None:
            while not stop.is_set():
                try:
                    r = c.post("/search", json={"item_id": f"{i}.jpg", "k": 5, "sets": ["color=red"] if i % 2 else []})
                    statuses.append(r.status_code)
                    r = c.get("/items", params={"limit": 50})
                    statuses.append(r.status_code)
                except Exception as e:  # noqa: BLE001 - any failure in flight is the bug
                    failures.append(repr(e))

        threads = [threading.Thread(target=hammer, args=(i,)) for i in (0, 1, 4, 5)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        assert main(["update", str(site / "gal"), "--add", str(site / "more"), "--remove", "3.jpg",
                     "--meta", "2.jpg", "brand=acme"]) == 0
        t0 = time.time()
        while c.get("/health").json()["generation"] == gen0:
            assert time.time() - t0 < 30, "the service never picked up the new generation"
            time.sleep(0.05)
        time.sleep(0.3)  # keep searching on the new generation for a moment
        stop.set()
        for t in threads:
            t.join(30)
        assert not failures and statuses and set(statuses) == {200}, (failures, set(statuses))
        health = c.get("/health").json()
        assert health["generation"] == gen0 + 1 and health["items"] == 9
        ids = _ids(c, "1.jpg")
        assert "3.jpg" not in ids and {"n0.jpg", "n1.jpg"} <= set(ids)
        assert c.post("/search", json={"item_id": "3.jpg"}).status_code == 404
        assert c.post("/search", json={"item_id": "n1.jpg", "k": 3}).status_code == 200
        page = c.get("/items", params={"filter": "brand=acme"}).json()
        assert [it["id"] for it in page["items"]] == ["2.jpg"]


def test_a_damaged_new_generation_keeps_the_current_one_in_service(site):
    # poll_s=0: every look checks the pointer (with 0.05 an update finishing within 50 ms of the last look went unseen)
    backend = GalleryService(site / "gal", backend="ort", poll_s=0.0)
    with TestClient(create_app(backend, Limits(), load_in_background=False)) as c:
        gen0 = c.get("/health").json()["generation"]
        assert main(["update", str(site / "gal"), "--remove", "3.jpg"]) == 0
        gdir = next(p for p in (site / "gal").iterdir() if p.name.startswith("gen-"))
        (gdir / "probs.npy").write_bytes(b"garbage")  # checksum no longer matches
        backend.gallery  # noqa: B018 - a look starts the reload
        backend.live.wait_reload(30)
        health = c.get("/health").json()
        assert health["status"] == "ready" and health["generation"] == gen0
        assert "sha256" in health["reload_error"]
        assert "3.jpg" in _ids(c, "1.jpg")
