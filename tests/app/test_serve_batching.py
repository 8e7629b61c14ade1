"""Micro-batching of uploads in ``fsn serve`` (issue 22): the batcher itself (grouping, the wait bound, answers
in order, one bad item fails alone), the HTTP service on the planted-truth fake (each concurrent upload gets its
own answer, a corrupt upload its own 400, search off the model worker) and the flags' one-line errors."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from fashionsearchnet.app.batch_policy import BatchPolicy, parse_policy
from fashionsearchnet.errors import ImageError, UsageError

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from fashionsearchnet.app.server import Limits, create_app  # noqa: E402
from fashionsearchnet.app.server.batcher import MicroBatcher, ShuttingDown  # noqa: E402
from tests.support.serve_fake_backend import PALETTE, FakeBackend  # noqa: E402


class GatedModel:
    """run_batch that records its batches, blocks its first call until ``release`` is set, and answers x -> x*10;
    an item "poison" makes the whole batch raise, an item "bad" gets its own exception."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.batches: list[list] = []

    def __call__(self, items: list) -> list:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.started.set()
            assert self.release.wait(10)
        if "poison" in items:
            raise RuntimeError("the model cannot run this batch")
        return [ImageError(f"item {x!r} is bad") if x == "bad" else x * 10 for x in items]


async def _gather(b: MicroBatcher, items: list, first_alone: GatedModel) -> list:
    """Submit items[0], wait until the model is busy with it, queue the rest, then let the model go."""
    first = asyncio.ensure_future(b.submit(items[0]))
    while not first_alone.started.is_set():
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(b.submit(x)) for x in items[1:]]
    await asyncio.sleep(0.05)  # every submit is queued behind the busy model
    first_alone.release.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def _run_batched(items: list, max_batch: int) -> tuple[list, GatedModel, MicroBatcher]:
    """``items`` submitted at once to a batcher (no wait) around a :class:`GatedModel`; closed afterwards."""
    m = GatedModel()
    b = MicroBatcher(m, BatchPolicy(max_batch=max_batch, max_wait_ms=0))
    try:
        return asyncio.run(_gather(b, items, m)), m, b
    finally:
        b.close()


def test_queued_items_run_as_one_batch_and_each_gets_its_own_result():
    out, m, b = _run_batched(list(range(1, 7)), max_batch=8)
    assert out == [10, 20, 30, 40, 50, 60]
    assert m.batches == [[1], [2, 3, 4, 5, 6]]  # the five that queued behind the first ran together, in order
    assert b.stats()["largest_batch"] == 5 and b.stats()["items"] == 6


def test_max_batch_caps_every_batch():
    out, m, b = _run_batched(list(range(1, 9)), max_batch=3)
    assert out == [x * 10 for x in range(1, 9)]
    assert [len(x) for x in m.batches] == [1, 3, 3, 1]


def test_a_bad_item_fails_alone_and_a_failing_batch_is_split():
    out, m, b = _run_batched([1, 2, "bad", 3, "poison", 4], max_batch=8)
    assert out[:2] == [10, 20] and out[3] == 30 and out[5] == 40
    assert isinstance(out[2], ImageError) and "'bad'" in str(out[2])
    assert isinstance(out[4], RuntimeError) and "cannot run" in str(out[4])
    # the batch holding "poison" raised as a whole and was run again item by item
    assert m.batches[1] == [2, "bad", 3, "poison", 4] and m.batches[2:] == [[2], ["bad"], [3], ["poison"], [4]]


def test_a_lone_request_does_not_wait_and_none_waits_past_max_wait():
    b = MicroBatcher(lambda xs: list(xs), BatchPolicy(max_batch=8, max_wait_ms=300))

    async def lone() -> float:
        t0 = time.perf_counter()
        assert await b.submit("x") == "x"
        return time.perf_counter() - t0

    async def with_one_announced_that_never_comes() -> float:
        with b.announced():  # a request still decoding: the worker may wait for it, up to max_wait_ms
            t0 = time.perf_counter()
            assert await b.submit("y") == "y"
            return time.perf_counter() - t0

    try:
        asyncio.run(lone())  # starts the worker
        alone = min(asyncio.run(lone()) for _ in range(5))
        waited = asyncio.run(with_one_announced_that_never_comes())
    finally:
        b.close()
    assert alone < 0.05  # nothing else announced: dispatched at once, not after 300 ms
    assert 0.25 <= waited < 0.6  # waited for the announced one, but no longer than the wait (+ scheduling)


def test_close_fails_what_is_still_queued():
    m = GatedModel()
    b = MicroBatcher(m, BatchPolicy(max_batch=1, max_wait_ms=0))

    async def go():
        first = asyncio.ensure_future(b.submit(1))
        while not m.started.is_set():
            await asyncio.sleep(0.001)
        second = asyncio.ensure_future(b.submit(2))
        await asyncio.sleep(0.02)
        threading.Thread(target=b.close).start()
        await asyncio.sleep(0.05)
        m.release.set()
        return await asyncio.gather(first, second, return_exceptions=True)

    first, second = asyncio.run(go())
    assert first == 10 and isinstance(second, ShuttingDown)


@pytest.mark.parametrize("mb, mw, needle", [("0", "2", "--max-batch 0"), ("-3", "2", "--max-batch -3"),
                                            ("two", "2", "--max-batch 'two'"), ("8", "-1", "--max-wait-ms -1"),
                                            ("8", "abc", "--max-wait-ms 'abc'"), ("8", "nan", "--max-wait-ms nan"),
                                            ("2.5", "2", "--max-batch '2.5'")])
def test_bad_policy_values_are_one_line_usage_errors(mb, mw, needle):
    with pytest.raises(UsageError) as e:
        parse_policy(mb, mw)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert parse_policy("4", "0.5") == BatchPolicy(4, 0.5)


def test_fsn_serve_refuses_bad_batching_flags_at_start_up(tmp_path):
    (tmp_path / "CURRENT").write_text("{}")  # passes the folder check; the flags are refused before any load
    for flags, needle in ((["--max-batch", "0"], "--max-batch 0"), (["--max-wait-ms", "-5"], "--max-wait-ms -5"),
                          (["--max-wait-ms", "soon"], "--max-wait-ms 'soon'")):
        r = subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", "serve", str(tmp_path), *flags],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr


# ---- the HTTP service (planted-truth fake backend) ----------------------------------------------------------
def _png(color: str, w: int, h: int) -> bytes:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = PALETTE[color][::-1]
    return cv2.imencode(".png", img)[1].tobytes()


def test_concurrent_uploads_are_batched_and_each_answer_is_its_own(tmp_path):
    """Distinct photos (colour and size) sent at once: every answer names its own photo's colour and size; one
    corrupt upload among them gets its own 400; the model ran batches of more than one."""
    backend = FakeBackend(tmp_path, model_delay_s=0.03)
    app = create_app(backend, Limits(concurrency=4), load_in_background=False,
                     batching=BatchPolicy(max_batch=8, max_wait_ms=20))
    colors = list(PALETTE)
    jobs = [(colors[i % 4], 40 + i, 30 + 2 * i) for i in range(12)]
    out: dict[int, tuple[int, dict]] = {}
    with TestClient(app) as c:
        def one(i: int) -> None:
            data = b"\x89PNG\r\n\x1a\nthis is not a picture" if i == 5 else _png(*jobs[i])
            r = c.post("/search", files={"image": ("q.png", data, "image/png")}, data={"k": "3"})
            out[i] = (r.status_code, r.json())

        for _round in range(3):
            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(jobs))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert len(out) == len(jobs)
            for i, (color, w, h) in enumerate(jobs):
                status, body = out[i]
                if i == 5:
                    assert status == 400 and "error" in body
                    continue
                assert status == 200, body
                q = body["query"]
                assert (q["width"], q["height"]) == (w, h) and q["predicted"]["color"]["value"] == color
            out.clear()
        health = c.get("/health").json()
    assert max(backend.batch_sizes) > 1 and health["batching"]["largest_batch"] == max(backend.batch_sizes)
    assert sum(backend.batch_sizes) == 3 * 11  # every good upload ran through the model once
    assert backend.model_threads == {"fsn-model"}  # the model runs on the batcher's worker only ...
    assert "fsn-model" not in backend.search_threads  # ... and the searches never on it


def test_max_batch_1_runs_every_upload_alone(tmp_path):
    backend = FakeBackend(tmp_path, model_delay_s=0.01)
    app = create_app(backend, Limits(concurrency=4), load_in_background=False,
                     batching=BatchPolicy(max_batch=1, max_wait_ms=20))
    with TestClient(app) as c:
        threads = [threading.Thread(target=lambda: c.post(
            "/search", files={"image": ("q.png", _png("red", 32, 32), "image/png")})) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert backend.batch_sizes == [1] * 6


def test_real_model_concurrent_uploads_equal_one_at_a_time(kiosk_demo):
    """On a trained gallery and its bundle: distinct photos sent at once (batched) get the same predictions,
    boxes and results as each photo searched alone (batch of one)."""
    from fashionsearchnet.app.gallery_service import GalleryService
    from fashionsearchnet.search.request import Request

    demo = kiosk_demo[0]
    backend = GalleryService(demo.gallery, backend="ort")
    app = create_app(backend, Limits(concurrency=4), load_in_background=False,
                     batching=BatchPolicy(max_batch=8, max_wait_ms=50))
    images = sorted((demo.out / "data" / "images").glob("*.jpg"))[:10]
    photos = [cv2.resize(cv2.imread(str(p)), (160 + 8 * i, 120 + 4 * i)) for i, p in enumerate(images)]
    jpegs = [cv2.imencode(".png", p)[1].tobytes() for p in photos]
    got: dict[int, dict] = {}
    with TestClient(app) as c:
        def one(i: int) -> None:
            r = c.post("/search", files={"image": ("q.png", jpegs[i], "image/png")}, data={"k": "6", "sets": "color=red"})
            assert r.status_code == 200, r.text
            got[i] = r.json()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(jpegs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert c.get("/health").json()["batching"]["largest_batch"] > 1
        req = Request.parse(["color=red"], backend.schema)
        for i, photo in enumerate(photos):
            alone = backend.search(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB), req, [], 6)
            q = got[i]["query"]
            assert (q["width"], q["height"]) == (photo.shape[1], photo.shape[0])
            assert {a: v["value"] for a, v in q["predicted"].items()} == \
                {a: v["value"] for a, v in alone.query.predicted.items()}
            assert np.allclose([b["box"] for b in q["boxes"]], [b.to_dict()["box"] for b in alone.query.boxes], atol=0.11)
            assert [r["id"] for r in got[i]["results"]] == [r["id"] for r in alone.results]
            assert np.allclose([r["distance"] for r in got[i]["results"]], [r["distance"] for r in alone.results],
                               rtol=1e-4, atol=1e-5)
    backend.close()
