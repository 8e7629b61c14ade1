"""FeatureExtractor (ONNX Runtime, torch blocked) on the checked-in tiny bundle: shapes, stages, batch-size
independence, eq. 7 by hand; input types (path, bytes, gray, RGBA, EXIF-rotated, any size); bad images.
Its parity with the PyTorch reference path is tests/export/test_runtime_vs_torch.py.

Tolerance: features within 1e-4 x max(1, max|reference|); boxes equal.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fashionsearchnet.errors import BackendUnavailable, ImageError, UsageError
from fashionsearchnet.runtime.extractor import STAGES, FeatureExtractor
from fashionsearchnet.runtime.bundle import Bundle

TOL = 1e-4


def _close(got, ref, tol=TOL):
    scale = max(1.0, float(np.abs(ref).max()))
    assert np.abs(got - ref).max() <= tol * scale, (np.abs(got - ref).max(), scale)


@pytest.fixture(scope="module")
def fx(tiny_bundle):
    with FeatureExtractor(tiny_bundle, backend="ort-cpu") as f:
        yield f


def test_catalogue_images_in_any_batch_size_and_eq7_by_hand(tiny_bundle, fx, tiny_synth):
    from fashionsearchnet.data.dataset import load_dataset

    ds = load_dataset(tiny_synth) if not hasattr(tiny_synth, "images") else tiny_synth
    paths = [str(p) for p in ds.images[:10]]
    f = fx.extract(paths, batch_size=3)  # batch 3, 3, 3, 1: none equals the export batch (2)
    one = fx.extract(paths, batch_size=10)
    A, D = len(fx.schema.attributes), f.attr_reps.shape[2]
    np.testing.assert_array_equal(np.concatenate([f.attr_boxes, f.region_boxes], 1),
                                  np.concatenate([one.attr_boxes, one.region_boxes], 1))
    _close(f.attr_reps, one.attr_reps)
    _close(f.region_reps, one.region_reps)
    params = Bundle.open(tiny_bundle).params  # eq. 7, set 0: concat_a(lam[0, a] * f_a) @ W[0]
    by_hand = np.concatenate([params.lam[0, a] * f.attr_reps[:, a].astype(np.float64) for a in range(A)], 1)
    _close(f.global_reps, by_hand @ params.W[0].astype(np.float64))
    assert f.attr_reps.shape == (10, A, D) and f.probs.shape == (10, sum(fx.schema.num_classes))
    assert f.attr_boxes.shape == (10, A, 4) and f.aams.shape[:2] == (10, A)
    assert f.region_maps.shape[1] == len(fx.schema.regions)
    assert set(f.timings_ms) == set(STAGES) and all(v >= 0 for v in f.timings_ms.values())


def test_predictions_are_the_argmax_of_probs(fx):
    img = np.random.default_rng(1).integers(0, 255, (90, 70, 3), dtype=np.uint8)
    f = fx.extract(img)
    offs = np.cumsum((0,) + fx.schema.num_classes)
    for a, attr in enumerate(fx.schema.attributes):
        block = f.probs[0, offs[a]:offs[a + 1]]
        value, conf = f.predicted[0][attr.name]
        assert value == attr.values[int(np.argmax(block))] and conf == pytest.approx(float(block.max()))
        assert block.sum() == pytest.approx(1.0, abs=1e-5)


def test_batch_size_does_not_change_results(fx):
    rng = np.random.default_rng(2)
    imgs = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(5)]
    a, b = fx.extract(imgs, batch_size=1), fx.extract(imgs, batch_size=5)
    _close(a.attr_reps, b.attr_reps, 1e-5)
    np.testing.assert_array_equal(a.attr_boxes, b.attr_boxes)


def test_input_kinds_give_the_same_features(fx, tmp_path):
    rng = np.random.default_rng(3)
    rgb = cv2.resize(rng.integers(0, 255, (8, 6, 3), dtype=np.uint8), (120, 160), interpolation=cv2.INTER_NEAREST)
    png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    (tmp_path / "x.png").write_bytes(png)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    f = fx.extract([rgb, png, str(tmp_path / "x.png"), rgba])
    for i in (1, 2, 3):
        _close(f.attr_reps[i], f.attr_reps[0], 1e-6)
    np.testing.assert_allclose(f.box_scale[0], [120 / 7, 160 / 7], rtol=1e-6)  # tiny preset: 7x7 conv5
    gray = fx.extract(rgb[:, :, 0])  # (H, W) gray array works too
    assert gray.attr_reps.shape == (1, 5, 16)


def test_exif_rotated_jpeg_is_turned_upright(fx):
    """A JPEG stored sideways with EXIF orientation 6 (rotate 90 CW) gives the upright image's features."""
    rng = np.random.default_rng(4)
    upright = cv2.resize(rng.integers(0, 255, (4, 3, 3), dtype=np.uint8), (96, 128), interpolation=cv2.INTER_NEAREST)
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # what the camera wrote
    jpg = cv2.imencode(".jpg", cv2.cvtColor(stored, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
    # APP1 Exif segment with one IFD0 entry: Orientation (0x0112) SHORT = 6
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" + b"\x00\x00\x00\x00"
    app1 = b"\xff\xe1" + (2 + 6 + len(tiff)).to_bytes(2, "big") + b"Exif\x00\x00" + tiff
    rotated = jpg[:2] + app1 + jpg[2:]
    f = fx.extract([upright, rotated, jpg])
    assert tuple(f.box_scale[1] * 7) == pytest.approx((96, 128))  # decoded upright: 96 wide, 128 high
    d_rot = np.abs(f.attr_reps[1] - f.attr_reps[0]).max()
    d_raw = np.abs(f.attr_reps[2] - f.attr_reps[0]).max()
    assert d_rot < d_raw  # the EXIF-rotated one is closer to the upright image than the raw sideways one


def _png_claiming(w, h):
    png = bytearray(cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes())
    png[16:20], png[20:24] = w.to_bytes(4, "big"), h.to_bytes(4, "big")
    return bytes(png)


def test_bad_images_are_clear_errors(fx, tmp_path):
    with pytest.raises(ImageError, match=r"images\[0\] \(bytes\): image is 20000x20000 pixels, more than the 50 MP"):
        fx.extract([_png_claiming(20000, 20000)])
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (20000, 20000, 3))  # no 1.2 GB allocation
    with pytest.raises(ImageError, match=r"images\[1\] \(array\): 20000x20000 pixels"):
        fx.extract([np.zeros((10, 10, 3), np.uint8), huge])
    with pytest.raises(ImageError, match="zero-size image"):
        fx.extract([b""])
    with pytest.raises(ImageError, match="cannot decode"):
        fx.extract([b"GIF89a this is not an image at all"])
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="empty.jpg: zero-size"):
        fx.extract([str(tmp_path / "empty.jpg")])
    with pytest.raises(ImageError, match="missing.jpg: file not found"):
        fx.extract([str(tmp_path / "missing.jpg")])
    with pytest.raises(ImageError, match=r"empty or badly shaped array \(0, 5, 3\)"):
        fx.extract([np.zeros((0, 5, 3), np.uint8)])
    with pytest.raises(UsageError, match="no images"):
        fx.extract([])


def test_explicit_backend_that_is_missing_is_an_error(tiny_bundle):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    with pytest.raises(BackendUnavailable, match="no CUDAExecutionProvider"):
        FeatureExtractor(tiny_bundle, backend="ort-cuda")
    with pytest.raises(UsageError, match="valid: auto, ort"):
        FeatureExtractor(tiny_bundle, backend="cuda")


def test_features_take_and_concat_cover_every_field():
    """take(i) is row i of every per-image field; concat of parts is the whole, field by field (a field added to
    Features later is carried without a change here)."""
    import dataclasses

    from fashionsearchnet.runtime.extractor import Features

    rng = np.random.default_rng(0)

    def make(n, tag):
        arrays = {f.name: rng.normal(size=(n, 2, 3)).astype(np.float32) for f in dataclasses.fields(Features)
                  if f.name not in ("predicted", "timings_ms")}
        return Features(**arrays, predicted=[{"color": (f"{tag}{i}", 0.5)} for i in range(n)],
                        timings_ms={"heads": float(n)})

    a, b = make(3, "a"), make(2, "b")
    whole = Features.concat([a, b])
    assert len(whole) == 5 and whole.timings_ms == {"heads": 2.0}
    for f in dataclasses.fields(Features):
        if f.name == "timings_ms":
            continue
        got = getattr(whole, f.name)
        if f.name == "predicted":
            assert got == a.predicted + b.predicted
        else:
            np.testing.assert_array_equal(got, np.concatenate([getattr(a, f.name), getattr(b, f.name)]))
        one = getattr(whole.take(3), f.name)
        want = getattr(b, f.name)[:1]
        assert (one == want) if f.name == "predicted" else np.array_equal(one, want)
