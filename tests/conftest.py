"""Shared session fixtures: a tiny synthetic catalogue made once per test session (seconds)."""
from __future__ import annotations

import pytest

from fashionsearchnet.data.synth import generate


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """240 synthetic 64 px images with splits, item ids, region truth and masks (seed 7)."""
    return generate(tmp_path_factory.mktemp("tiny_synth") / "data", 240, seed=7, size=64)


# ---- kiosk side (serve / browser / demo tests) ------------------------------------------------------------
KIOSK_DEMO = dict(count=240, size=64, seed=7, preset="tiny", epochs=(30, 5, 40), lr=0.02, k=8)


@pytest.fixture(scope="session")
def kiosk_demo(tmp_path_factory):
    """A tiny ``fsn demo`` build (catalogue, trained run, bundle, gallery, report.html), made once (~1 min)."""
    pytest.importorskip("torch")
    from fashionsearchnet.app.demo import DemoConfig, build

    cfg = DemoConfig(**KIOSK_DEMO)
    return build(tmp_path_factory.mktemp("kiosk_demo") / "demo", cfg), cfg


@pytest.fixture(scope="session")
def kiosk_server(kiosk_demo):  # noqa: C901
    """``fsn serve`` on the kiosk_demo gallery, on a free loopback port; yields its base URL."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = kiosk_demo[0].out / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "fashionsearchnet.app.cli", "serve", str(kiosk_demo[0].gallery),
                             "--host", "127.0.0.1", "--port", str(port), "--backend", "ort"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    t0 = time.time()
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"fsn serve exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() - t0 > 90:
                raise AssertionError("fsn serve did not become ready in 90 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
