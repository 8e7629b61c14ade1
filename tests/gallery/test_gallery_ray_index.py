"""fsn index --ray (gallery/distributed_index.py): a local Ray with 2 CPUs, an actor pool of 2 extractors; the
gallery equals the single-process one (ids, order, features, search results); a worker killed mid-run is
restarted and its batch retried with nothing lost or duplicated; unreadable images and dead addresses are the
same one-line errors as without Ray."""
from __future__ import annotations

import os
import sys

import cv2
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[scale]')")
pytest.importorskip("ray.data", reason="ray[data] is not installed (pip install -e '.[scale]')")

from tests.support.make_tiny_bundle import asset_copy  # noqa: E402

from fashionsearchnet.app.cli import main  # noqa: E402
from fashionsearchnet.errors import ImageError, UsageError  # noqa: E402
from fashionsearchnet.gallery import distributed_index as dx  # noqa: E402
from fashionsearchnet.gallery.gallery import Gallery  # noqa: E402
from fashionsearchnet.gallery.indexer import index_catalogue, list_catalogue  # noqa: E402
from fashionsearchnet.search.exact import ExactSearcher  # noqa: E402
from fashionsearchnet.search.request import Request  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's actor class travels by value
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return asset_copy(tmp_path_factory)


@pytest.fixture(scope="module")
def single(bundle, tiny_synth, tmp_path_factory):
    return index_catalogue(bundle, tiny_synth, tmp_path_factory.mktemp("one") / "g", batch_size=32)


class DiesOnce(dx.ExtractorActor):
    """Ends its worker process at the first batch holding row ``row`` while ``marker`` does not exist yet."""

    marker = ""
    row = 100

    def __call__(self, batch):
        if self.row in set(int(r) for r in batch["row"]) and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().__call__(batch)


def _same_gallery(a: Gallery, b: Gallery) -> None:
    assert [r["id"] for r in a.records] == [r["id"] for r in b.records]
    assert [r["metadata"] for r in a.records] == [r["metadata"] for r in b.records]
    for k in ("attr_reps", "region_reps", "probs"):
        np.testing.assert_allclose(getattr(b.features, k), getattr(a.features, k), rtol=0, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-6)
    req = [Request(set=(("color", "red"),)), Request()]
    others = np.delete(np.arange(len(a)), 5)
    ra = ExactSearcher(a.params, a.features, "fsn").search([5, 5], req, others, 10)
    rb = ExactSearcher(b.params, b.features, "fsn").search([5, 5], req, others, 10)
    assert [list(x) for x in ra] == [list(x) for x in rb]


def test_ray_index_equals_the_single_process_index(local_ray, bundle, tiny_synth, single, tmp_path):
    out = tmp_path / "g"
    assert main(["index", str(bundle), str(tiny_synth), "--out", str(out), "--batch-size", "16", "--ray",
                 "--ray-workers", "2"]) == 0
    g = Gallery.open(out)
    assert len(g) == len(single) == 240 and g.bundle.sha256 == single.bundle.sha256
    _same_gallery(single, g)
    assert not (out / ".work").exists()


def test_a_worker_that_dies_is_retried_nothing_lost_or_duplicated(local_ray, bundle, tiny_synth, single, tmp_path):
    DiesOnce.marker = str(tmp_path / "died")
    recs = list_catalogue(tiny_synth)
    f = dx.extract_rows_ray(bundle, recs, batch_size=16, workers=2, actor_cls=DiesOnce)
    assert os.path.exists(DiesOnce.marker)  # a worker did die
    np.testing.assert_allclose(f["attr_reps"], single.features.attr_reps, atol=1e-5)
    np.testing.assert_allclose(f["attr_boxes"], single.boxes, atol=1e-6)


def test_unreadable_image_is_the_same_error_as_without_ray(local_ray, bundle, tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(5):
        cv2.imwrite(str(d / f"ok{i}.png"), np.full((64, 64, 3), 40 * i, np.uint8))
    (d / "zz_broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageError) as plain:
        index_catalogue(bundle, d, tmp_path / "g1", batch_size=4)
    with pytest.raises(ImageError) as on_ray:
        index_catalogue(bundle, d, tmp_path / "g2", batch_size=4, ray=True)
    assert str(on_ray.value) == str(plain.value) and "zz_broken.png" in str(on_ray.value)


def test_an_address_that_does_not_answer_is_one_line_before_any_work(bundle, tiny_synth, tmp_path, capsys):
    with pytest.raises(UsageError, match="does not answer"):
        dx.check_address("127.0.0.1:1")
    rc = main(["index", str(bundle), str(tiny_synth), "--out", str(tmp_path / "g"), "--ray", "127.0.0.1:1"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "--ray 127.0.0.1:1: the Ray head does not answer" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "g").exists()
