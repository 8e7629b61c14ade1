"""Gallery files: atomic saves, checksums, bundle binding, format version, a writer killed mid-save."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.support.gallery_fixtures import make_gallery, random_table, records

from fashionsearchnet.errors import GalleryError
from fashionsearchnet.gallery import store
from fashionsearchnet.gallery.gallery import Gallery

HERE = Path(__file__).resolve().parents[2]  # the repo root: the writer imports tests.support


def _gen_dir(root: Path) -> Path:
    return root / json.loads((root / "CURRENT").read_text())["dir"]


def test_metadata_update_hard_links_unchanged_files(tmp_path):
    g, _ = make_gallery(tmp_path / "g")
    first = _gen_dir(tmp_path / "g")
    ino = (first / "index_0.bin").stat().st_ino
    g.update_metadata("img/00001.jpg", {"stock": "no"})
    g.save()
    second = _gen_dir(tmp_path / "g")
    assert second != first and not first.exists()  # the old generation is gone once the new one is published
    assert (second / "index_0.bin").stat().st_ino == ino  # unchanged: linked, not rewritten
    assert Gallery.open(tmp_path / "g").result(1, 0).metadata["stock"] == "no"


@pytest.mark.parametrize("victim, how", [("index_2.bin", "truncate"), ("attr_reps.npy", "flip"), ("items.json", "flip"),
                                         ("gallery.json", "flip"), ("params.npz", "delete")])
def test_damaged_files_are_refused(tmp_path, victim, how):
    make_gallery(tmp_path / "g")
    f = _gen_dir(tmp_path / "g") / victim
    if how == "truncate":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif how == "flip":
        b = bytearray(f.read_bytes())
        b[len(b) // 2] ^= 0xFF
        f.write_bytes(bytes(b))
    else:
        f.unlink()
    with pytest.raises(GalleryError, match=f"{victim}: .*(sha256|missing)"):
        Gallery.open(tmp_path / "g")


def test_bundle_binding_and_format_version(tmp_path):
    make_gallery(tmp_path / "g", sha="a" * 64)
    Gallery.open(tmp_path / "g", bundle=SimpleNamespace(sha256="a" * 64, path="/bundles/b1"))
    with pytest.raises(GalleryError, match="built with bundle sha256 aaaaaaaaaaaa.*re-index"):
        Gallery.open(tmp_path / "g", bundle=SimpleNamespace(sha256="b" * 64, path="/bundles/b2"))
    # a gallery written by a newer version: rewrite the manifest and its pointer consistently
    gdir = _gen_dir(tmp_path / "g")
    m = json.loads((gdir / "gallery.json").read_text())
    m["format_version"] = 99
    raw = json.dumps(m).encode()
    (gdir / "gallery.json").write_bytes(raw)
    import hashlib

    ptr = json.loads((tmp_path / "g" / "CURRENT").read_text())
    ptr["manifest_sha256"] = hashlib.sha256(raw).hexdigest()
    (tmp_path / "g" / "CURRENT").write_text(json.dumps(ptr))
    with pytest.raises(GalleryError, match="format_version 99"):
        Gallery.open(tmp_path / "g")
    for bad in ("{oops", "[" * 50_000 + "]" * 50_000, '{"dir": "x"}'):
        (tmp_path / "g" / "CURRENT").write_text(bad)
        with pytest.raises(GalleryError, match="CURRENT: unreadable generation pointer"):
            Gallery.open(tmp_path / "g")


def test_missing_folder_and_concurrent_writers(tmp_path):
    with pytest.raises(GalleryError, match="fsn index"):
        Gallery.open(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GalleryError, match="no published gallery"):
        Gallery.open(tmp_path / "empty")
    make_gallery(tmp_path / "g")
    a, b = Gallery.open(tmp_path / "g"), Gallery.open(tmp_path / "g")
    a.update_metadata("img/00001.jpg", {"stock": "no"})
    a.save()
    b.update_metadata("img/00002.jpg", {"stock": "no"})
    with pytest.raises(GalleryError, match="changed since it was opened"):
        b.save()  # refused rather than silently dropping a's update


WRITER = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[3])
from tests.support.gallery_fixtures import random_table, records
from fashionsearchnet.gallery.gallery import Gallery
stage = sys.argv[2]
g = Gallery.open(sys.argv[1])
g.add(random_table(g.schema, 40, D=g.params.dim, seed=5), records(40, start=100000 + len(g.records)))
if "img/00001.jpg" in g._by_id:
    g.remove(["img/00001.jpg"])
def hook(s):
    if s == stage:
        os.kill(os.getpid(), signal.SIGKILL)
print("saving", flush=True)
if stage == "loop":
    while True:
        g.update_metadata("img/00002.jpg", {"n": str(g.generation)})
        g.add(random_table(g.schema, 1, D=g.params.dim, seed=g.generation), records(1, start=100000 + len(g.records)))
        g.save()
g.save(crash_hook=hook)
"""


def _check_consistent(root: Path, n0: int) -> Gallery:
    g = Gallery.open(root)  # verifies every checksum and the row counts of every array
    assert len(g) >= n0 - 1
    for idx in g.indices.values():
        assert idx.get_current_count() == len(g.records)
    res = g.search("img/00000.jpg", k=10)
    assert len(res.results) == 10
    return g


@pytest.mark.parametrize("stage, published", [("wrote:attr_reps.npy", False), ("wrote:index_3.bin", False),
                                              ("before-rename", False), ("before-pointer", False), ("published", True)])
def test_writer_killed_mid_save_leaves_the_last_good_gallery(tmp_path, stage, published):
    root = tmp_path / "g"
    make_gallery(root, n=60)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    p = subprocess.run([sys.executable, str(script), str(root), stage, str(HERE)], capture_output=True, timeout=60)
    assert p.returncode == -signal.SIGKILL, p.stderr.decode()[-2000:]
    g = _check_consistent(root, 60)
    assert len(g) == (99 if published else 60)
    assert ("img/00001.jpg" in g._by_id) == (not published)
    # the next writer cleans the leftovers and publishes
    g.update_metadata("img/00003.jpg", {"stock": "no"})
    g.save()
    assert sorted(x.name for x in root.iterdir() if x.name.startswith("gen-")) == [_gen_dir(root).name]


def test_writer_killed_at_a_random_moment_in_a_save_loop(tmp_path):
    root = tmp_path / "g"
    make_gallery(root, n=2000, D=8, G=16)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    for delay in (0.9, 1.3, 1.7):
        p = subprocess.Popen([sys.executable, str(script), str(root), "loop", str(HERE)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"saving"
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        _check_consistent(root, 2000)


def test_searches_during_updates_see_whole_batches(tmp_path):
    import threading

    g, t = make_gallery(tmp_path / "g", n=500, save=False)
    twins = g.features.take([0] * 25)
    seen, errors = [], []

    def writer():
        for b in range(6):
            g.add(twins, records(25, start=10000 + 25 * b))

    def reader():
        try:
            while w.is_alive():
                d0 = [r for r in g.search(t.take([0]), k=200, exact=True).results if r.distance == 0.0]
                seen.append(len(d0))
                g.search("img/00007.jpg", k=10, exact=False)  # hnsw queries interleaved with adds
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    w = threading.Thread(target=writer)
    r = threading.Thread(target=reader)
    w.start(), r.start()
    w.join(), r.join()
    assert not errors
    assert seen and all(n % 25 == 1 for n in seen)  # item 0 itself + whole batches of 25 twins, never a part
