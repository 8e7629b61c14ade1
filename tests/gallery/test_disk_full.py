"""Issue 19 item 7: a full disk during `fsn index` and `fsn update` is a one-line error naming the file (no
traceback), and the published gallery stays as it was. Needs a small tmpfs (root with mount permission)."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import pytest

from fashionsearchnet.gallery.gallery import Gallery


@pytest.fixture()
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; a full disk cannot be simulated otherwise")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"`mount -t tmpfs` is not permitted here ({r.stderr.strip()})")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


def _fsn(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", *argv], capture_output=True, text=True)


def _errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if not ln.startswith(("INFO ", "WARNING "))]


@pytest.fixture()
def parts(tmp_path, tmp_path_factory, tiny_synth):
    from tests.support.make_tiny_bundle import asset_copy

    cat = tmp_path / "cat"
    cat.mkdir()
    for i in range(8):
        shutil.copy(tiny_synth / "images" / f"{i:06d}.jpg", cat / f"{i}.jpg")
    return asset_copy(tmp_path_factory), cat


def test_index_on_a_full_disk_is_one_line(small_disk, parts):
    bundle, cat = parts
    _fill(small_disk)
    r = _fsn("index", str(bundle), str(cat), "--out", str(small_disk / "g"))
    err = _errors(r.stderr)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(err) == 1 and "No space left on device" in err[0] and str(small_disk) in err[0], r.stderr


def test_update_on_a_full_disk_is_one_line_and_keeps_the_gallery(small_disk, parts):
    bundle, cat = parts
    assert _fsn("index", str(bundle), str(cat), "--out", str(small_disk / "g")).returncode == 0
    gen = Gallery.open(small_disk / "g").generation
    _fill(small_disk)
    r = _fsn("update", str(small_disk / "g"), "--meta", "1.jpg", "note=" + "x" * 2000)
    err = _errors(r.stderr)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(err) == 1 and "No space left on device" in err[0] and str(small_disk / "g") in err[0], r.stderr
    (small_disk / "filler").unlink()
    g = Gallery.open(small_disk / "g")
    assert g.generation == gen and "note" not in g.records[g.row_of("1.jpg")]["metadata"]
    # the next writer cleans up and succeeds
    assert _fsn("update", str(small_disk / "g"), "--meta", "1.jpg", "note=ok").returncode == 0
    assert Gallery.open(small_disk / "g").generation == gen + 1
