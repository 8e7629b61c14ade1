"""Issue 19 item 6: a client that disconnects mid-body is one log line (no traceback); the Host header
allow-list (DNS rebinding); catalogue images that were swapped for a symlink are refused and missing ones are a
server-side 5xx; `fsn search` escapes terminal control codes in catalogue data; ids with newlines are refused
at indexing."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from fashionsearchnet.app.cmd_serve import allowed_hosts  # noqa: E402
from fashionsearchnet.app.server import Limits, create_app  # noqa: E402
from tests.support.serve_fake_backend import FakeBackend  # noqa: E402
from tests.support.serve_process import wait_ready  # noqa: E402

TESTS = Path(__file__).resolve().parents[2]  # the repo root: subprocesses import tests.support
SERVER = r"""
import logging, sys, uvicorn
from fashionsearchnet.app.server import Limits, create_app
from tests.support.serve_fake_backend import FakeBackend
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
app = create_app(FakeBackend(sys.argv[2]), Limits(allowed_hosts=("127.0.0.1", "localhost")))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
"""


def test_client_disconnecting_mid_body_is_one_log_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(tmp_path / "cat")], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log, 30)
        for head in (b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"item_id\": \"ima",
                     b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000\r\n\r\n--b\r\n"
                     b"Content-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\n\r\n\xff\xd8\xff"):
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head)
            time.sleep(0.3)
            c.close()
        time.sleep(0.5)
        req = urllib.request.Request(url + "/search", data=json.dumps({"item_id": "images/001.png", "k": 2}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "Traceback" not in text and "Exception in ASGI" not in text, text[-3000:]
    assert text.count("disconnected before sending the whole request body") == 2, text[-3000:]


def test_host_header_allow_list(tmp_path):
    app = create_app(FakeBackend(tmp_path / "cat"), Limits(allowed_hosts=("127.0.0.1", "localhost", "::1")),
                     load_in_background=False)
    with TestClient(app, base_url="http://localhost:8080") as c:
        assert c.get("/health").status_code == 200
        for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", ""):
            r = c.get("/health", headers={"host": host})
            assert r.status_code == 400 and "--allow-host" in r.json()["error"], host
        assert c.get("/health", headers={"host": "127.0.0.1:8080"}).status_code == 200
        assert c.get("/health", headers={"host": "[::1]:8080"}).status_code == 200
    hosts = allowed_hosts("192.168.1.20", ["kiosk-7.store.local"])
    assert {"192.168.1.20", "localhost", "127.0.0.1", "::1", "kiosk-7.store.local"} <= set(hosts)
    assert "evil.example" not in hosts


def test_fsn_serve_rejects_infinite_upload_limit(tmp_path):
    from fashionsearchnet.app.cli import main

    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "CURRENT").write_text("{}")
    for bad in ("inf", "nan", "-1", "0"):
        assert main(["serve", str(tmp_path / "g"), "--max-upload-mb", bad]) == 2


# ---- with a real gallery --------------------------------------------------------------------------------------
@pytest.fixture()
def site(tmp_path, tmp_path_factory, tiny_synth):
    from tests.support.hardening_site import build_site

    return build_site(tmp_path / "site", tmp_path_factory, tiny_synth)


def test_swapped_or_missing_catalogue_images_are_refused_server_side(site, tmp_path, caplog):
    from fashionsearchnet.app.gallery_service import GalleryService

    secret = tmp_path / "secret.jpg"
    secret.write_bytes((site["cat"] / "5.jpg").read_bytes())  # outside the catalogue
    backend = GalleryService(site["gal"], backend="ort")
    with TestClient(create_app(backend, Limits(), load_in_background=False)) as c:
        assert c.get("/items/2.jpg/image").status_code == 200
        (site["cat"] / "2.jpg").unlink()
        (site["cat"] / "2.jpg").symlink_to(secret)  # swapped for a symlink to a file outside
        r = c.get("/items/2.jpg/image")
        assert r.status_code == 500 and "symlink" in r.json()["error"] and r.content.startswith(b"{")
        (site["cat"] / "4.jpg").unlink()
        r = c.get("/items/4.jpg/image")
        assert r.status_code == 500 and "missing on disk" in r.json()["error"]
        r = c.post("/search", json={"item_id": "4.jpg", "k": 3})  # the query image is read server-side too
        assert r.status_code == 500 and "missing on disk" in r.json()["error"]
        assert c.get("/items/nope.jpg/image").status_code == 404  # an unknown id stays the client's mistake
    assert any("server-side error" in rec.message for rec in caplog.records)


def test_fsn_search_escapes_control_codes_in_catalogue_data(site, capsys):
    from fashionsearchnet.app.cli import main

    evil = "\x1b]0;owned\x07\x1b[2J red\nnext"
    assert main(["update", str(site["gal"]), "--meta", "3.jpg", f"note={evil}"]) == 0
    capsys.readouterr()
    assert main(["search", str(site["gal"]), "1.jpg", "-k", "7"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    line = next(ln for ln in out.splitlines() if "3.jpg" in ln)
    assert r"note=\x1b]0;owned\x07\x1b[2J red\nnext" in line
    assert len(out.strip().splitlines()) == 8  # the header and 7 results: no injected line break


def test_ids_with_newlines_are_refused_at_indexing(site, tmp_path, capsys):
    from fashionsearchnet.app.cli import main

    cat = tmp_path / "nl"
    cat.mkdir()
    (cat / "ok.jpg").write_bytes((site["cat"] / "1.jpg").read_bytes())
    (cat / "bad\nname.jpg").write_bytes((site["cat"] / "1.jpg").read_bytes())
    capsys.readouterr()
    assert main(["index", str(site["bundle"]), str(cat), "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "bad\\nname.jpg" in err and "rename" in err, err
