"""The TensorRT engine cache without TensorRT, with a fake builder: the full build configuration in keys and file
names, one build under concurrency (two processes), atomic writes, the user cache for read-only bundles, named
rebuilds of corrupt engines and of engines from another TensorRT version, and the configuration ``fsn engines``
records for the runtime."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fashionsearchnet.errors import EngineCacheError, UsageError
from fashionsearchnet.fileio import sha256_file
from fashionsearchnet.runtime import engine_cache as ec
from fashionsearchnet.runtime.backends.trt import BuildConfig, resolve_config


def _key(**kw):
    base = dict(graph_sha256="a" * 64, tensorrt_version="10.3.0", compute_capability=(8, 7), gpu="Jetson AGX Orin",
                precision="fp16", max_batch=64, opt_batch=1, plat="Linux-aarch64", tf32=False)
    base.update(kw)
    return ec.make_key(**base)


class Builder:
    """A fake engine builder: counts calls, returns bytes that name the key."""

    def __init__(self, payload: bytes = b"engine"):
        self.calls, self.payload = 0, payload

    def __call__(self) -> bytes:
        self.calls += 1
        return self.payload + b"#%d" % self.calls


def test_file_name_spells_out_the_build_configuration(tmp_path):
    eng, side = ec.engine_paths(tmp_path, "backbone", _key(max_batch=32, opt_batch=8, tf32=True))
    assert eng.name == "backbone.fp16.b32o8.tf32.trt10.3.0.sm87.jetson-agx-orin.engine"
    assert side.name == eng.name[: -len(".engine")] + ".json"
    assert ec.engine_paths(tmp_path, "backbone", _key())[0].name == "backbone.fp16.b64o1.notf32.trt10.3.0.sm87.jetson-agx-orin.engine"


@pytest.mark.parametrize("change", [{"max_batch": 16}, {"opt_batch": 8}, {"tf32": True}, {"precision": "fp32"},
                                    {"tensorrt_version": "10.4.0"}, {"compute_capability": (9, 0)},
                                    {"gpu": "NVIDIA H100"}])
def test_each_configuration_has_its_own_file(tmp_path, change):
    """Configurations never overwrite each other: another max/opt batch, TF32, precision, TensorRT or GPU is
    another file, and the first engine stays usable."""
    first = ec.ensure_engine([tmp_path], "backbone", _key(), Builder(), sha256_file)[0]
    other, state = ec.ensure_engine([tmp_path], "backbone", _key(**change), Builder(b"other"), sha256_file)
    assert state == "build" and other != first
    assert ec.lookup(tmp_path, "backbone", _key(), sha256_file) == ("use", first)
    assert _key(**change).digest != _key().digest


def test_second_ensure_is_a_cache_hit_and_sidecar_records_key_and_sha(tmp_path):
    b = Builder()
    path, state = ec.ensure_engine([tmp_path], "heads", _key(), b, sha256_file)
    assert state == "build" and b.calls == 1
    assert ec.ensure_engine([tmp_path], "heads", _key(), b, sha256_file) == (path, "use") and b.calls == 1
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["key"]["max_batch"] == 64 and side["key"]["tf32"] is False and side["key"]["tensorrt"] == "10.3.0"
    assert side["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_engine_is_rebuilt_with_a_named_log_or_refused(tmp_path, caplog):
    path, _ = ec.ensure_engine([tmp_path], "backbone", _key(), Builder(), sha256_file)
    path.write_bytes(b"truncated")
    with pytest.raises(EngineCacheError) as ei:
        ec.ensure_engine([tmp_path], "backbone", _key(), Builder(), sha256_file, rebuild=False, bundle_path="/b")
    msg = str(ei.value)
    assert str(path) in msg and "sha256" in msg and "fsn engines /b --fp16 --max-batch 64 --opt-batch 1" in msg
    assert "\n" not in msg
    b = Builder(b"fresh")
    with caplog.at_level(logging.WARNING, logger="fashionsearchnet.runtime.engine_cache"):
        got, state = ec.ensure_engine([tmp_path], "backbone", _key(), b, sha256_file)
    assert (got, state, b.calls) == (path, "rebuild", 1) and path.read_bytes() == b"fresh#1"
    assert any(str(path) in r.getMessage() and "corrupt" in r.getMessage() for r in caplog.records)


def test_engine_from_another_tensorrt_under_the_same_name_is_rebuilt_naming_the_version(tmp_path, caplog):
    """A file copied in (or a sidecar edited) whose key says TensorRT 10.4.0: stale, rebuilt, logged with the diff."""
    old = _key(tensorrt_version="10.4.0")
    path, _ = ec.engine_paths(tmp_path, "backbone", _key())
    path.write_bytes(b"engine from 10.4")
    path.with_suffix(".json").write_text(json.dumps({"key": old.to_dict(), "sha256": sha256_file(path)}))
    assert ec.lookup(tmp_path, "backbone", _key(), sha256_file) == ("stale", path)
    with caplog.at_level(logging.WARNING, logger="fashionsearchnet.runtime.engine_cache"):
        assert ec.ensure_engine([tmp_path], "backbone", _key(), Builder(), sha256_file)[1] == "rebuild"
    assert any("tensorrt: 10.4.0 -> 10.3.0" in r.getMessage() for r in caplog.records)


def test_atomic_write_uses_unique_temp_files(tmp_path, monkeypatch):
    """Two writers of the same file each get their own temporary file (a fixed name would be shared)."""
    from fashionsearchnet import fileio

    seen = []
    real = fileio.os.replace

    def spy(src, dst):
        seen.append(Path(src))
        return real(src, dst)

    monkeypatch.setattr(fileio.os, "replace", spy)
    ec.atomic_write_bytes(tmp_path / "x.engine", b"1")
    ec.atomic_write_bytes(tmp_path / "x.engine", b"2")
    assert len(set(seen)) == 2 and all(p.parent == tmp_path and p.name.startswith("x.engine.") for p in seen)
    assert (tmp_path / "x.engine").read_bytes() == b"2" and not list(tmp_path.glob("*.tmp"))


RACE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from fashionsearchnet.fileio import sha256_file
    from fashionsearchnet.runtime import engine_cache as ec
    cache, log, start, tag = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    key = ec.make_key("a" * 64, "10.3.0", (8, 7), "Orin", "fp16", 64, 1, "Linux-aarch64")
    def build():
        with open(log, "a") as f:
            f.write(tag + "\\n")
        time.sleep(0.5)  # a slow build: the other process arrives meanwhile
        return (tag * 200000).encode()
    while time.time() < start:
        time.sleep(0.005)
    path, state = ec.ensure_engine([cache], "backbone", key, build, sha256_file)
    print(state, path)
""")


def test_two_processes_build_once_and_never_corrupt(tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "builds.log"
    cache.mkdir()
    import time

    start = str(time.time() + 1.5)
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(cache), str(log), start, tag],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for tag in "AB"]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    states = sorted(o[0].split()[0] for o in outs)
    assert states == ["build", "use"], outs  # the second waited on the lock and found the first one's engine
    assert len(log.read_text().split()) == 1
    key = ec.make_key("a" * 64, "10.3.0", (8, 7), "Orin", "fp16", 64, 1, "Linux-aarch64")
    assert ec.lookup(cache, "backbone", key, sha256_file)[0] == "use"
    data = ec.engine_paths(cache, "backbone", key)[0].read_bytes()
    assert data in (b"A" * 200000, b"B" * 200000)
    assert not list(cache.glob("*.tmp"))


def _read_only_bundle(tmp_path) -> Path:
    """A bundle folder whose engines/ cannot be created: a plain file in its place (chmod does not stop root)."""
    b = tmp_path / "bundle"
    b.mkdir()
    (b / "manifest.json").write_text('{"format": 1}')
    (b / "engines").write_text("not a folder")
    if os.geteuid() != 0:
        b.chmod(0o555)
    return b


def test_read_only_bundle_falls_back_to_the_user_cache(tmp_path, caplog):
    b = _read_only_bundle(tmp_path)
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    with caplog.at_level(logging.INFO, logger="fashionsearchnet.runtime.engine_cache"):
        dirs = ec.cache_dirs(b, env=env)
    assert dirs[0].parent == tmp_path / "xdg" / "fashionsearchnet" / "engines"
    assert dirs[0].name.startswith("bundle-") and dirs[0].is_dir() and dirs[1] == b / "engines"
    assert any("read-only" in r.getMessage() and str(dirs[0]) in r.getMessage() for r in caplog.records)
    path, state = ec.ensure_engine(dirs, "backbone", _key(), Builder(), sha256_file)
    assert state == "build" and path.parent == dirs[0]
    # XDG_CACHE_HOME unset: ~/.cache
    assert ec.user_cache_root({"HOME": "/h"}) == Path("/h/.cache/fashionsearchnet/engines")
    # a writable bundle keeps its own folder
    w = tmp_path / "w"
    w.mkdir()
    assert ec.cache_dirs(w, env=env) == [w / "engines"]


def test_engines_shipped_in_a_read_only_bundle_are_used(tmp_path):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    path, _ = ec.ensure_engine([shipped], "backbone", _key(), Builder(), sha256_file)
    b = Builder()
    got = ec.ensure_engine([tmp_path / "user", shipped], "backbone", _key(), b, sha256_file)
    assert got == (path, "use") and b.calls == 0


def test_unwritable_cache_everywhere_is_a_one_line_error(tmp_path):
    b = _read_only_bundle(tmp_path)
    blocker = tmp_path / "xdg"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(EngineCacheError, match="XDG_CACHE_HOME") as ei:
        ec.cache_dirs(b, env={"XDG_CACHE_HOME": str(blocker)})
    assert "\n" not in str(ei.value)
    with pytest.raises(EngineCacheError, match="--cache"):
        ec.cache_dirs(b, explicit=blocker / "sub")


def test_selection_precedence(tmp_path):
    """What fsn engines recorded is what the runtime opens; each explicit argument wins over it."""
    assert resolve_config("fp32", [tmp_path]) == BuildConfig("fp32", 64, 1, False)
    ec.write_selection(tmp_path, "fp16", 16, 8, True)
    assert resolve_config("fp32", [tmp_path]) == BuildConfig("fp16", 16, 8, True)
    assert resolve_config("fp32", [tmp_path], max_batch=32) == BuildConfig("fp16", 32, 8, True)
    assert resolve_config("fp32", [tmp_path], precision="fp32", opt_batch=4, tf32=False) == BuildConfig("fp32", 16, 4, False)
    assert resolve_config("fp32", [tmp_path], max_batch=4) == BuildConfig("fp16", 4, 4, True)  # opt clipped to max


def test_malformed_selection_and_bad_batches_are_one_line_errors(tmp_path):
    (tmp_path / ec.SELECTION_FILE).write_text('{"precision": "fp16", "max_batch": "many"}')
    with pytest.raises(EngineCacheError, match="selection.json"):
        resolve_config("fp32", [tmp_path])
    with pytest.raises(UsageError, match="1 <= opt <= max"):
        BuildConfig("fp32", 8, 16)
    with pytest.raises(UsageError, match="precision"):
        BuildConfig("bf16")
