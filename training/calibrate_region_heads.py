"""Calibration step of the region heads (training/region_head.py): fit each candidate (early layer, crop size) on
a sample of the training rows, measure region specificity on the validation rows' two-tone items, and keep the
best candidate only if it beats the attribute heads' own (conv5) region representations there.

Specificity here is the figure ``fsn eval`` reports (evaluation/specificity.py): the share of two-tone
collar/sleeve items whose region representation is nearest to the prototype of the part's TRUE value, prototypes
being the fit rows' mean representation per region-truth value.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import numpy as np
import torch

from fashionsearchnet.data.dataset import Dataset
from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.evaluation.specificity import nearest_prototype, two_tone_mask
from fashionsearchnet.runtime import roi
from fashionsearchnet.runtime.roi_settings import RoiSettings
from fashionsearchnet.training.extract import load_resized, to_tensor
from fashionsearchnet.training.model import FashionSearchNet, early_map, make_region_heads, region_inputs
from fashionsearchnet.training.prototypes import compute_prototypes, region_truth
from fashionsearchnet.training.region_attention import AttentionRegionHeads, fit_attention_heads
from fashionsearchnet.training.region_head import RegionHeadSpec, fit_region_heads

log = logging.getLogger(__name__)

CANDIDATES = (RegionHeadSpec("pool2", 6), RegionHeadSpec("conv3", 6), RegionHeadSpec("pool2", 3, kind="attention"))
Inputs = tuple[torch.Tensor, ...]  # a candidate's region_inputs over N rows (float16 where large)
FIT_ROWS = 8000  # training rows (not validation rows) the heads are fitted on, a seeded sample beyond
FIT_MIRRORED = True  # also fit on each fit row's left-right mirrored image (its own backbone pass and boxes)
MIN_GAIN = 1.0  # validation specificity points a region head must add over the conv5 region representations


def pair_labels(dataset: Dataset, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,P), two_tone (N,P)) of every region pair: the ``region:attr`` truth column (the primary region
    without one: the image-level label; else -1 = unknown) and whether it differs from the primary region's."""
    schema = dataset.schema
    pairs = schema.region_pairs
    labels = np.full((len(rows), len(pairs)), -1, np.int64)
    two = np.zeros((len(rows), len(pairs)), bool)
    for p, (region, attr) in enumerate(pairs):
        truth = region_truth(dataset.region_labels, dataset.labels, schema, region, attr)
        if truth is not None:
            labels[:, p] = truth[rows]
        two[:, p] = two_tone_mask(dataset, region, attr, rows)
    return labels, two


@torch.no_grad()
def pair_inputs(model: FashionSearchNet, dataset: Dataset, rows: np.ndarray, pre: Preprocessing,
                settings: RoiSettings, specs: Sequence[RegionHeadSpec], batch_size: int = 256,
                mirrored: bool = False) -> tuple[dict[RegionHeadSpec, Inputs], np.ndarray]:
    """Each candidate's region inputs over ``rows`` at the region boxes of ``settings`` (attention heads' packed
    maps kept as float16), and the model's own region representations (N,P,D) at those boxes (the conv5
    baseline). ``mirrored``: of the rows' left-right mirrored images (the backbone and the boxes run on them)."""
    model.eval()
    parts: dict[RegionHeadSpec, list[Inputs]] = {s: [] for s in specs}
    own = []
    for s in range(0, len(rows), batch_size):
        images = to_tensor(load_resized(dataset, rows[s:s + batch_size], pre), pre, "cpu")
        o = model.forward_backbone(torch.flip(images, dims=[3]) if mirrored else images)
        boxes = torch.from_numpy(roi.settings_boxes(o["aams"].numpy(), o["region_maps"].numpy(), dataset.schema,
                                                    settings))
        for spec in specs:
            got = region_inputs(spec, early_map(spec, o), boxes[:, model.pair_box_index])
            parts[spec].append(tuple(t.half() if t.dim() == 4 else t for t in got))
        own.append(model.heads(model.backbone_features(o), boxes)[1].numpy())
    return {k: tuple(torch.cat(col) for col in zip(*v)) for k, v in parts.items()}, np.concatenate(own)


@torch.no_grad()
def apply_heads(heads: torch.nn.Module, inputs: Inputs, batch_size: int = 256) -> np.ndarray:
    """(N,P,D) region representations of fitted ``heads`` over :func:`pair_inputs`' rows, in batches."""
    heads.eval()
    return np.concatenate([heads(*(t[s:s + batch_size].float() for t in inputs)).numpy()
                           for s in range(0, len(inputs[0]), batch_size)])


def fit_heads(heads: torch.nn.Module, inputs: Inputs, labels: np.ndarray, two_tone: np.ndarray,
              num_values: Sequence[int], seed: int) -> None:
    """Fit crop or attention heads (their own module's fit) on :func:`pair_inputs`' rows."""
    if isinstance(heads, AttentionRegionHeads):
        fit_attention_heads(heads, inputs[0], inputs[1], labels, two_tone, list(num_values), seed=seed)
    else:
        fit_region_heads(heads, inputs[0], labels, two_tone, num_values, seed=seed)


def specificity(fit_reps: np.ndarray, fit_labels: np.ndarray, val_reps: np.ndarray, val_labels: np.ndarray,
                val_two: np.ndarray, pairs: Sequence[tuple[str, str]], num_values: Sequence[int]) -> dict[str, float]:
    """Percent of the validation two-tone items per non-primary pair whose representation is nearest to the
    prototype (mean over the fit rows per value) of their own value; ``mean`` over the pairs measured."""
    out: dict[str, float] = {}
    for p, (region, attr) in enumerate(pairs):
        tt = np.flatnonzero(val_two[:, p])
        if len(tt) == 0:
            continue
        protos = compute_prototypes(fit_reps[:, p:p + 1], fit_labels[:, p:p + 1], (num_values[p],))[0]
        near = nearest_prototype(val_reps[tt, p], protos)
        out[f"{region}:{attr}"] = round(100.0 * float((near == val_labels[tt, p]).mean()), 2)
    if out:
        out["mean"] = round(float(np.mean(list(out.values()))), 2)
    return out


def fit_and_measure_rows(dataset: Dataset, validation: np.ndarray, n: int = FIT_ROWS,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, measured rows), sorted: the training rows outside the validation split (at most ``n``, a seeded
    sample) and the validation rows; when fewer than half the training rows lie outside the validation split
    (small catalogues: it is all of them), a seeded half of the training rows each."""
    train = dataset.indices("train")
    rest = np.setdiff1d(train, validation)
    rng = np.random.default_rng(seed)
    if 2 * len(rest) < len(train):
        perm = rng.permutation(train)
        return np.sort(perm[len(perm) // 2:][:n]), np.sort(perm[:len(perm) // 2])
    if len(rest) > n:
        rest = np.sort(rng.choice(rest, n, replace=False))
    return rest, np.sort(validation)


def candidate_name(spec: RegionHeadSpec) -> str:
    """The report's key of a candidate: ``pool2/6`` (crop heads), ``attention:pool2/3``."""
    name = f"{spec.layer}/{spec.pool}"
    return name if spec.kind == "crop" else f"{spec.kind}:{name}"


def choose_region_heads(model: FashionSearchNet, dataset: Dataset, validation: np.ndarray, pre: Preprocessing,
                        settings: RoiSettings, seed: int = 0,
                        candidates: Sequence[RegionHeadSpec] = CANDIDATES, mirrored: bool = FIT_MIRRORED,
                        ) -> tuple[RegionHeadSpec | None, torch.nn.Module | None, dict[str, Any]]:
    """(chosen spec, its fitted heads, report); (None, None, report) when no candidate beats the conv5 region
    representations by :data:`MIN_GAIN` on validation, or there is nothing to fit or measure. ``mirrored``: fit
    on the fit rows and their mirrored images (the validation rows and the prototypes of the measure stay as
    they are)."""
    schema = dataset.schema
    pairs = schema.region_pairs
    rows, measured = fit_and_measure_rows(dataset, validation, seed=seed)
    f_lab, f_two = pair_labels(dataset, rows)
    v_lab, v_two = pair_labels(dataset, measured)
    report: dict[str, Any] = {"fit_rows": int(len(rows)), "measured_rows": int(len(measured)),
                              "measured_two_tone": int(v_two.any(1).sum())}
    if not len(pairs) or not v_two.any() or not f_two.any():
        report["skipped"] = "no two-tone collar/sleeve rows with region truth to fit or measure region heads on"
        return None, None, report
    t0 = time.perf_counter()
    f_crops, f_own = pair_inputs(model, dataset, rows, pre, settings, candidates)
    v_crops, v_own = pair_inputs(model, dataset, measured, pre, settings, candidates)
    fit_inputs, fit_lab, fit_two = f_crops, f_lab, f_two
    if mirrored:  # the fit sees each fit row twice: as it is and mirrored; prototypes use the rows as they are
        m_crops, _ = pair_inputs(model, dataset, rows, pre, settings, candidates, mirrored=True)
        fit_inputs = {k: tuple(torch.cat([a, b]) for a, b in zip(f_crops[k], m_crops[k])) for k in f_crops}
        fit_lab, fit_two = np.concatenate([f_lab, f_lab]), np.concatenate([f_two, f_two])
        del m_crops
    report["fit_samples"] = int(len(fit_lab))
    num_values = [len(schema.attributes[schema.attr_index(a)].values) for _, a in pairs]
    baseline = specificity(f_own, f_lab, v_own, v_lab, v_two, pairs, num_values)
    report["conv5"] = baseline
    best: tuple[float, RegionHeadSpec, torch.nn.Module] | None = None
    for spec in candidates:
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # the heads' init (the fit seeds its own sampling)
            heads = make_region_heads(spec, schema, model.preset)
        fit_heads(heads, fit_inputs[spec], fit_lab, fit_two, num_values, seed)
        fr, vr = apply_heads(heads, f_crops[spec]), apply_heads(heads, v_crops[spec])
        got = specificity(fr, f_lab, vr, v_lab, v_two, pairs, num_values)
        report[candidate_name(spec)] = got
        log.info("region heads %s: validation specificity %s (conv5 heads: %s)", candidate_name(spec), got,
                 baseline)
        if best is None or got.get("mean", 0.0) > best[0]:
            best = (got.get("mean", 0.0), spec, heads)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    assert best is not None
    if best[0] < baseline.get("mean", 0.0) + MIN_GAIN:
        report["chosen"] = "conv5 (no region head gained enough)"
        return None, None, report
    report["chosen"] = candidate_name(best[1])
    return best[1], best[2], report
