"""``fsn serve`` as a process on a tiny trained gallery: answers equal the gallery's own search, uploads give
boxes in image pixels, slow / dropped clients do not block others, concurrent requests all succeed."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from urllib.parse import urlparse

import cv2
import numpy as np

from fashionsearchnet.gallery.gallery import Gallery
from fashionsearchnet.search.request import Request


def _post_json(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/search", data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _multipart(fields: dict[str, str], image: bytes) -> tuple[bytes, str]:
    b = "fsnboundary7"
    parts = [f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(f'--{b}\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"\r\n'
                 f"Content-Type: image/jpeg\r\n\r\n".encode() + image + b"\r\n")
    return b"".join(parts) + f"--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def test_item_search_equals_the_gallery_search(kiosk_server, kiosk_demo):
    g = Gallery.open(kiosk_demo[0].gallery)
    qid = g.records[5]["id"]
    for sets in ([], ["color=red"], ["sleeve:color=blue"]):
        status, body = _post_json(kiosk_server, {"item_id": qid, "sets": sets, "k": 7})
        assert status == 200
        want = g.search(qid, Request.parse(sets, g.schema), k=7)
        assert [r["id"] for r in body["results"]] == [r.id for r in want.results]
        assert np.allclose([r["distance"] for r in body["results"]], [r.distance for r in want.results], rtol=1e-6)
        assert body["method"] == want.method
    assert body["method"] == "fsn_region"


def test_described_search_equals_the_gallery_composed_search(kiosk_server, kiosk_demo):
    g = Gallery.open(kiosk_demo[0].gallery)
    for sets in (["category=dress", "color=red"], ["sleeve:color=green"]):
        status, body = _post_json(kiosk_server, {"sets": sets, "k": 6})
        assert status == 200, body
        want = g.search(None, Request.parse(sets, g.schema), k=6)
        assert [r["id"] for r in body["results"]] == [r.id for r in want.results]
        assert body["method"] == want.method and body["query"]["item_id"] is None
    status, body = _post_json(kiosk_server, {"sets": ["collar:pattern=plain"]})
    assert status == 422 and "cannot be asked for region 'collar'" in body["error"]


def test_upload_640x480_jpeg_gives_pixel_boxes_and_attributes(kiosk_server, kiosk_demo):
    src = cv2.imread(str(kiosk_demo[0].out / "data" / "images" / "000010.jpg"))
    ok, jpg = cv2.imencode(".jpg", cv2.resize(src, (640, 480)))
    data, ctype = _multipart({"k": "5", "sets": "pattern=striped"}, jpg.tobytes())
    req = urllib.request.Request(kiosk_server + "/search", data=data, headers={"content-type": ctype})
    with urllib.request.urlopen(req, timeout=30) as r:
        body = json.loads(r.read())
    q = body["query"]
    assert (q["width"], q["height"]) == (640, 480) and q["item_id"] is None
    assert set(q["predicted"]) == {"category", "collar", "sleeve", "color", "pattern"}
    assert len(q["boxes"]) == 5 + 3 and {b["kind"] for b in q["boxes"]} == {"attribute", "region"}
    for b in q["boxes"]:
        x0, y0, x1, y1 = b["box"]
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    assert len(body["results"]) == 5 and body["sets"] == ["pattern=striped"]


def test_unknown_value_on_the_real_service_is_422_with_valid_values(kiosk_server):
    status, body = _post_json(kiosk_server, {"item_id": "images/000001.jpg", "sets": ["color=magenta"]})
    assert status == 422 and "red" in body["valid"]["values"]


def test_slow_and_dropped_clients_do_not_block_others(kiosk_server):
    u = urlparse(kiosk_server)
    slow = []
    for _ in range(4):  # clients that send half a request and then stall
        s = socket.create_connection((u.hostname, u.port))
        s.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"item")
        slow.append(s)
    dropped = socket.create_connection((u.hostname, u.port))
    dropped.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                    b"Content-Length: 100000\r\n\r\n--b\r\n")
    dropped.close()
    t0 = time.perf_counter()
    status, body = _post_json(kiosk_server, {"item_id": "images/000002.jpg", "k": 3})
    assert status == 200 and len(body["results"]) == 3
    assert time.perf_counter() - t0 < 5
    for s in slow:
        s.close()
    with urllib.request.urlopen(kiosk_server + "/health", timeout=5) as r:
        assert r.status == 200


def test_concurrent_requests_all_succeed(kiosk_server):
    out: list[int] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        for j in range(3):
            status, _ = _post_json(kiosk_server, {"item_id": f"images/{(i * 3 + j) % 200:06d}.jpg", "k": 5,
                                                  "sets": ["color=blue"] if j % 2 else []})
            with lock:
                out.append(status)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert out == [200] * 24
