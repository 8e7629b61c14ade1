"""Issue 19 item 2: search and serve work on a gallery and a bundle on a read-only file system (readers never
open the lock file for writing); writers fail with a one-line error. A read-only bind mount when the test runs
as root (root ignores permissions), removed write permission otherwise."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import gallery_fixtures
from fashionsearchnet.errors import GalleryError
from fashionsearchnet.gallery.gallery import Gallery
from fashionsearchnet.search.request import Request


@pytest.fixture()
def read_only(tmp_path):
    """read_only(src) -> a read-only view of folder ``src``."""
    mounts: list[Path] = []
    chmodded: list[Path] = []

    def make(src: Path) -> Path:
        if os.geteuid() == 0:
            dst = tmp_path / f"ro{len(mounts)}"
            dst.mkdir()
            r = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"running as root but `mount --bind` is not permitted here ({r.stderr.strip()}); "
                            "root ignores file permissions, so no read-only view can be made")
            mounts.append(dst)
            r = subprocess.run(["mount", "-o", "remount,ro,bind", str(dst)], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"`mount -o remount,ro,bind` is not permitted here ({r.stderr.strip()})")
            return dst
        for p in [src, *src.rglob("*")]:
            if p.is_dir() or p.is_file():
                p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
                chmodded.append(p)
        return src

    yield make
    for m in reversed(mounts):
        subprocess.run(["umount", str(m)], check=False)
    for p in chmodded:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _is_read_only(path: Path) -> bool:
    try:
        (path / "probe").write_bytes(b"x")
    except OSError:
        return True
    (path / "probe").unlink()
    return False


@pytest.mark.parametrize("with_lock_file", [False, True])
def test_gallery_opens_and_searches_read_only(tmp_path, read_only, with_lock_file):
    g0, _ = gallery_fixtures.make_gallery(tmp_path / "g", n=40)
    if not with_lock_file:  # e.g. a gallery copied without its dot-files
        (tmp_path / "g" / ".lock").unlink()
    want = g0.search("img/00003.jpg", Request.parse(["color=red"], g0.schema), k=5)
    ro = read_only(tmp_path / "g")
    assert _is_read_only(ro)
    g = Gallery.open(ro)
    got = g.search("img/00003.jpg", Request.parse(["color=red"], g.schema), k=5)
    assert [r.id for r in got.results] == [r.id for r in want.results]
    assert (ro / ".lock").exists() == with_lock_file


def test_writers_on_a_read_only_gallery_fail_with_one_line(tmp_path, read_only):
    gallery_fixtures.make_gallery(tmp_path / "g", n=20)
    ro = read_only(tmp_path / "g")
    g = Gallery.open(ro)
    g.update_metadata("img/00001.jpg", {"stock": "no"})
    with pytest.raises(GalleryError, match="read-only|not writable"):
        g.save()
    r = subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", "update", str(ro), "--meta",
                        "img/00001.jpg", "stock=no"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if not ln.startswith("INFO ")]
    assert len(errors) == 1 and "read-only" in errors[0], r.stderr


def test_search_and_serve_backend_on_read_only_gallery_and_bundle(tmp_path, tmp_path_factory, tiny_synth, read_only):
    from tests.support.make_tiny_bundle import asset_copy

    from fashionsearchnet.app.cli import main
    from fashionsearchnet.app.gallery_service import GalleryService
    from fashionsearchnet.data.preprocess import read_image

    src = tmp_path / "site"
    src.mkdir()
    shutil.copytree(asset_copy(tmp_path_factory), src / "bundle")
    (src / "cat").mkdir()
    for i in range(6):
        shutil.copy(tiny_synth / "images" / f"{i:06d}.jpg", src / "cat" / f"{i}.jpg")
    assert main(["index", str(src / "bundle"), str(src / "cat"), "--out", str(src / "gal")]) == 0
    ro = read_only(src)
    assert _is_read_only(ro / "gal") and _is_read_only(ro / "bundle")
    # fsn search by an image file (extractor on the read-only bundle)
    r = subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", "search", str(ro / "gal"),
                        str(ro / "cat" / "2.jpg"), "--bundle", str(ro / "bundle"), "-k", "2", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # what fsn serve runs: load, warm up, search by upload and by item
    backend = GalleryService(ro / "gal", bundle=ro / "bundle", backend="ort")
    backend.load()
    try:
        answer = backend.search(read_image(ro / "cat" / "2.jpg"), Request.parse(["color=red"], backend.schema), [], 3)
        assert len(answer.results) == 3 and np.isfinite([x["distance"] for x in answer.results]).all()
        assert len(backend.search("1.jpg", Request.parse([], backend.schema), [], 2).results) == 2
    finally:
        backend.close()
