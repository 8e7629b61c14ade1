"""Issue 19 item 1: image sizes are read from the header (JPEG with its frame header after large padding, PNG,
WEBP, TIFF, BMP, GIF) and checked before anything is decoded, on every path in (HTTP upload, `fsn search`,
`fsn index`, `fsn update --add`); a refused bomb costs little memory and time (measured in a subprocess)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support import image_bombs
from fashionsearchnet.data.imageheader import probe
from fashionsearchnet.data.preprocess import decode_image
from fashionsearchnet.errors import ImageTooLargeError

TESTS = Path(__file__).resolve().parents[2]  # the repo root: subprocesses import tests.support
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("ext, params", [(".jpg", []), (".png", []), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
                                         (".gif", []),
                                         (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), (".bmp", []), (".tiff", [])])
def test_probe_reads_the_size_of_real_encodings(ext, params):
    img = np.random.default_rng(0).integers(0, 255, (23, 37, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img, params)
    assert ok
    fmt, w, h = probe(io.BytesIO(buf.tobytes()))
    assert (w, h) == (37, 23), fmt


def test_probe_finds_a_jpeg_frame_header_after_200_kb_of_padding():
    data = image_bombs.jpeg_padded(200_000)
    assert data.index(b"\xff\xc0") > 200_000
    assert probe(io.BytesIO(data))[1:] == (image_bombs.BIG, image_bombs.BIG)


@pytest.mark.parametrize("name", sorted(image_bombs.BOMBS))
def test_decode_refuses_each_bomb_before_decoding(name):
    with pytest.raises(ImageTooLargeError, match="pixels"):
        decode_image(image_bombs.BOMBS[name][0](), name)


# Peak memory is read from /proc/self/status (VmHWM: the process's own address space). ru_maxrss is not used: on
# Linux a child inherits its parent's high-water mark across fork + exec, and pytest's process is large.
HWM = ("def hwm_mb():\n"
       "    for line in open('/proc/self/status'):\n"
       "        if line.startswith('VmHWM'):\n"
       "            return int(line.split()[1]) / 1024\n")


def _run_measured(code: str) -> dict:
    """Run ``code`` (prints one JSON line last) in a fresh interpreter; returns what it printed."""
    p = subprocess.run([sys.executable, "-c", HWM + code], capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


HTTP_CODE = r"""
import json, time, sys, tempfile
from fastapi.testclient import TestClient
from tests.support import image_bombs
from fashionsearchnet.app.server import Limits, create_app
from tests.support.serve_fake_backend import FakeBackend
app = create_app(FakeBackend(tempfile.mkdtemp()), Limits(), load_in_background=False)
out = {}
with TestClient(app) as c:
    c.post("/search", files={"image": ("a.png", image_bombs._small(".png"), "image/png")})  # warm up
    base = hwm_mb()
    for name, (make, ext) in image_bombs.BOMBS.items():
        data = make()
        t0 = time.perf_counter()
        r = c.post("/search", files={"image": ("q" + ext, data, "application/octet-stream")})
        out[name] = [r.status_code, r.json()["error"], time.perf_counter() - t0]
    out["grew_mb"], out["peak_mb"] = hwm_mb() - base, hwm_mb()
print(json.dumps(out))
"""


def test_bombs_over_http_are_413_and_cost_little():
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    if not Path("/proc/self/status").is_file():
        pytest.skip("peak memory is read from /proc/self/status (Linux)")
    out = _run_measured(HTTP_CODE)
    for name in image_bombs.BOMBS:
        status, error, took = out[name]
        assert status == 413 and "pixels" in error and "header, not decoded" in error, (name, out[name])
        assert took < 2.0, (name, took)
    assert out["grew_mb"] < 50, out  # decoding any of them would take 400+ MB
    assert out["peak_mb"] < 400, out


def test_opencv_pixel_limit_is_set_before_cv2_is_imported():
    code = ("import json, numpy as np, fashionsearchnet, cv2\nfrom tests.support import image_bombs\n"
            "base = hwm_mb()\n"
            "try:\n    img = cv2.imdecode(np.frombuffer(image_bombs.bmp(), np.uint8), cv2.IMREAD_COLOR)\n"
            "except cv2.error as e:\n    img = None\n"
            "print(json.dumps({'decoded': img is not None, 'grew_mb': hwm_mb() - base}))")
    out = _run_measured(code)
    assert out == {"decoded": False, "grew_mb": pytest.approx(0, abs=50)}


# ---- the CLI paths: fsn search (image query), fsn index, fsn update --add ---------------------------------
@pytest.fixture(scope="module")
def small_gallery(tmp_path_factory, tiny_synth):
    from tests.support.make_tiny_bundle import asset_copy

    from fashionsearchnet.app.cli import main

    bundle = asset_copy(tmp_path_factory)
    root = tmp_path_factory.mktemp("bombcat")
    cat = root / "cat"
    cat.mkdir()
    for i in range(4):
        (cat / f"{i}.jpg").write_bytes((tiny_synth / "images" / f"{i:06d}.jpg").read_bytes())
    gal = root / "gal"
    assert main(["index", str(bundle), str(cat), "--out", str(gal)]) == 0
    return bundle, cat, gal


CLI = HWM + ("import atexit, sys\n"
             "atexit.register(lambda: sys.stderr.write(f'PEAK_MB {hwm_mb():.1f}\\n'))\n"
             "from fashionsearchnet.app.cli import main\n"
             "sys.exit(main(sys.argv[1:]))\n")


def _cli_measured(*argv: str) -> tuple[int, str, float, float]:
    """``fsn ARGV`` in a fresh interpreter: exit code, stderr (without the memory line), peak MB, seconds."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CLI, *argv], capture_output=True, text=True, env=ENV)
    lines = p.stderr.splitlines()
    peak = float(next(ln.split()[1] for ln in lines if ln.startswith("PEAK_MB ")))
    err = "\n".join(ln for ln in lines if not ln.startswith("PEAK_MB "))
    return p.returncode, err, peak, time.perf_counter() - t0


def test_bombs_through_the_cli_are_one_line_errors_and_cost_little(small_gallery, tmp_path):
    if not Path("/proc/self/status").is_file():
        pytest.skip("peak memory is read from /proc/self/status (Linux)")
    bundle, cat, gal = small_gallery
    rc, err, base_mb, _ = _cli_measured("search", str(gal), str(cat / "0.jpg"), "-k", "2")
    assert rc == 0, err
    for name, (make, ext) in image_bombs.BOMBS.items():
        bomb = tmp_path / f"{name}{ext}"
        bomb.write_bytes(make())
        rc, err, mb, took = _cli_measured("search", str(gal), str(bomb), "-k", "2")
        assert rc == 2 and "Traceback" not in err and "pixels" in err, (name, err)
        assert mb < base_mb + 60, (name, mb, base_mb)
    # fsn index and fsn update --add meet the same check (one bomb each: the paths share read_image)
    bad = tmp_path / "badcat"
    bad.mkdir()
    (bad / "a.jpg").write_bytes((cat / "1.jpg").read_bytes())
    (bad / "b.tiff").write_bytes(image_bombs.tiff())
    rc, err, mb, _ = _cli_measured("index", str(bundle), str(bad), "--out", str(tmp_path / "g2"))
    assert rc == 2 and "Traceback" not in err and "b.tiff" in err and "pixels" in err, err
    assert mb < base_mb + 60
    rc, err, mb, _ = _cli_measured("update", str(gal), "--add", str(bad))
    assert rc == 2 and "Traceback" not in err and "b.tiff" in err and "pixels" in err, err
    assert mb < base_mb + 60
