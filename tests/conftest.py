"""Shared session fixtures (a tiny synthetic catalogue, the checked-in tiny bundle, a tiny bundle exported with
torch, the kiosk demo), the automatic skips of the ``gpu`` / ``tensorrt`` / ``browser`` markers, and torch
blocked in the kiosk-side test folders."""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fashionsearchnet.data.synth import generate
from tests.support import make_tiny_bundle
from tests.support.torch_block import torch_blocked

TESTS = Path(__file__).resolve().parent
# runtime/, gallery/, data/ and the search core never import torch; their tests run with it blocked
TORCH_FREE_FOLDERS = ("data", "search", "runtime", "gallery")


# ---- markers that skip themselves where the hardware or package is missing ---------------------------------
@functools.lru_cache(maxsize=None)
def _missing(marker: str) -> str | None:
    """Why tests with ``marker`` cannot run here, or None when they can."""
    if marker == "gpu":
        try:
            ok = subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        return None if ok else "needs an NVIDIA GPU (nvidia-smi -L finds none)"
    if marker == "tensorrt":
        return None if importlib.util.find_spec("tensorrt") else "needs TensorRT (the 'tensorrt' module is not installed)"
    if marker == "browser":
        if importlib.util.find_spec("playwright") is None:
            return "needs Playwright: pip install -e '.[dev]'"
        chromium = Path("/usr/bin/chromium")  # the browser test installs it with apt-get when it can
        if not chromium.exists() and (os.geteuid() != 0 or shutil.which("apt-get") is None):
            return f"needs headless Chromium: {chromium} is missing and apt-get cannot be run here (needs root)"
        return None
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker in ("gpu", "tensorrt", "browser"):
            if item.get_closest_marker(marker) is not None and (why := _missing(marker)):
                item.add_marker(pytest.mark.skip(reason=why))
                break


# ---- torch blocked in the kiosk-side folders ---------------------------------------------------------------
def _torch_free(item) -> bool:
    try:
        return Path(item.path).resolve().relative_to(TESTS).parts[0] in TORCH_FREE_FOLDERS
    except ValueError:
        return False


def _blocked_phase(item):
    if _torch_free(item):
        with torch_blocked():
            yield
    else:
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _blocked_phase(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _blocked_phase(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield from _blocked_phase(item)


# ---- the tiny bundle ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A copy of the checked-in tiny bundle (tests/support/assets/tiny_bundle), its files checked against the
    recorded sha256 list first. No torch needed."""
    return make_tiny_bundle.asset_copy(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """``tiny_export(method="fsn", precision="fp32") -> (bundle, run)``: the tiny model of the checked-in asset
    exported with torch at test time (about 5 s each, cached for the session)."""
    pytest.importorskip("torch")
    made: dict[tuple[str, str], tuple[Path, Path]] = {}

    def export(method: str = "fsn", precision: str = "fp32") -> tuple[Path, Path]:
        if (method, precision) not in made:
            root = tmp_path_factory.mktemp(f"export_{method}_{precision}")
            made[method, precision] = make_tiny_bundle.export_tiny_bundle(root, method, precision)
        return made[method, precision]

    return export


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """240 synthetic 64 px images with splits, item ids, region truth and masks (seed 7)."""
    return generate(tmp_path_factory.mktemp("tiny_synth") / "data", 240, seed=7, size=64)


@pytest.fixture(scope="session")
def tiny_int8_bundles(tmp_path_factory, tiny_synth):
    """(run, fp32 bundle, int8 bundle calibrated on 64 images of the folder the checkpoint records) of a tiny
    random-init run on ``tiny_synth``: shared by the int8 export and OpenVINO tests."""
    from fashionsearchnet.export.exporter import export_run
    from tests.support.tiny_runs import tiny_run

    root = tmp_path_factory.mktemp("int8")
    run = tiny_run(root / "run", tiny_synth)
    export_run(run, root / "b32", precision="fp32")
    export_run(run, root / "b8", precision="int8", calibration_images=64)
    return run, root / "b32", root / "b8"


# ---- kiosk side (serve / browser / demo tests) ------------------------------------------------------------
KIOSK_DEMO = dict(count=240, size=64, seed=7, preset="tiny", epochs=(30, 5, 40), lr=0.02, k=8, reference_count=80)


@pytest.fixture(scope="session")
def kiosk_demo(tmp_path_factory):
    """A tiny ``fsn demo`` build (catalogue, trained run, bundle, gallery, report.html), made once (~1 min)."""
    pytest.importorskip("torch")
    from fashionsearchnet.app.demo import DemoConfig, build

    cfg = DemoConfig(**KIOSK_DEMO)
    return build(tmp_path_factory.mktemp("kiosk_demo") / "demo", cfg, reference=None), cfg


@pytest.fixture(scope="session")
def kiosk_server(kiosk_demo):  # noqa: C901
    """``fsn serve`` on the kiosk_demo gallery, on a free loopback port; yields its base URL."""
    import socket
    import subprocess
    import sys
    from tests.support.serve_process import wait_ready

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
    try:
        wait_ready(url, proc, log, 90)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
