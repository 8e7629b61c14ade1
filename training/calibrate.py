"""Issue 17's choices for a finished ``fsn`` run, made on a fixed validation split of the training rows and written
into its checkpoint (``fsn calibrate RUN``; the trainer calls :func:`calibrate_checkpoint` at the end of a run).

1. **ROI step** (``roi``, training/calibrate_roi.py): per map (attribute AAM, region map) the threshold in
   ``THRESHOLDS`` and one CAM upsampling factor in ``UPSAMPLES`` with the best mean box IoU against the masks
   (``masks/<stem>.png``; attribute -> mask labels as training/localisation.py). Regions that subtract others
   (torso) are chosen after those. Without masks the paper's 0.2 stays.
   Retrieval check: fsn manipulation Top-10/30 on the validation rows with the heads pooling the new boxes vs
   the training boxes (prototypes from the validation rows' own representations in both cases). The heads keep
   the training boxes unless the new ones win by :data:`HEADS_MIN_GAIN` points of Top-30 (the heads were trained
   on 0.2 boxes); the tight boxes are then the display / localisation boxes only (``RoiChoice``).
1b. **Region heads** (``region_head``, training/region_head.py, region_attention.py and calibrate_region_heads.py):
   small heads at the region boxes the ROI step chose at the heads' upsampling, either crops of an early map (pool2
   or conv3: same grid, 33/49 px receptive fields instead of conv5's 81) or an attention over fine cells (image and
   conv1 at 3x conv5's grid) that picks the part inside the box, fitted on the frozen backbone with the region truth
   columns; the candidate with the best validation region specificity is kept if it beats the conv5 region
   representations. Only the region pairs read
   region boxes, so the attribute representations are unchanged.
2. **Region prototypes** (``region_prototypes``): the mean ``region_reps`` of every training row per value of
   the row's REGION truth column (training/prototypes.py), from the region heads where they were fitted.
3. **fsn_region terms** (``region_terms``, ``region_weight``): scales from the prototypes
   (``search.scorers.prototype_scales``); the weight of requested collar/sleeve pairs and the down-weight of the
   untouched pairs maximise precision@10 + Top-5 on validation collar/sleeve requests whose value differs from
   the torso's (hit: the asked part value with the query's torso value and category, not the query's item; see
   :func:`region_tasks`) among the settings whose validation torso-request Top-1 is not below fsn's; then the
   torso weight maximises torso-request Top-1 (ties: the smaller weight; 0 with untouched 0 is fsn exactly).

Validation split: :data:`VALIDATION_ROWS` training rows drawn with seed :data:`VALIDATION_SEED` (all of them when
fewer); of those a quarter (seeded) are the queries, the rest the gallery.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from fashionsearchnet.data.dataset import Dataset, load_dataset
from fashionsearchnet.data.preprocess import Preprocessing
from fashionsearchnet.errors import CheckpointError, UsageError
from fashionsearchnet.evaluation.protocol import Task, build_task, score
from fashionsearchnet.runtime import roi
from fashionsearchnet.runtime.roi_settings import RoiChoice, RoiSettings
from fashionsearchnet.search.exact import ExactSearcher
from fashionsearchnet.search.params import RegionTerms, SearchParams
from fashionsearchnet.search.request import Request
from fashionsearchnet.search.scorers import prototype_scales
from fashionsearchnet.search.table import FeatureTable
from fashionsearchnet.training.checkpoint import Checkpoint, check_schema, resolve_checkpoint
from fashionsearchnet.training.extract import load_resized, to_tensor
from fashionsearchnet.training.calibrate_region_heads import choose_region_heads
from fashionsearchnet.training.calibrate_roi import choose_roi, load_masks
from fashionsearchnet.training.model import FashionSearchNet
from fashionsearchnet.training.prototypes import compute_prototypes, compute_region_prototypes

log = logging.getLogger(__name__)

VALIDATION_ROWS, VALIDATION_SEED = 1000, 17
MIN_ROWS = 8  # training rows below which there is nothing to validate on
QUERY_SHARE = 0.25
HEADS_MIN_GAIN = 1.0  # validation manipulation Top-30 points the new boxes must add before the heads pool them
TERM_WEIGHTS = (0.03, 0.06, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
UNTOUCHED_WEIGHTS = (0.0, 0.25, 0.5)
PRIMARY_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
PRIMARY_MIN_GAIN = 1.0  # validation Top-1 points a torso term must add over none (fsn's own answer) to be used
Progress = Callable[[str], None]


# ---- the validation split ----------------------------------------------------------------------------
def validation_rows(dataset: Dataset, n: int = VALIDATION_ROWS, seed: int = VALIDATION_SEED) -> np.ndarray:
    """Sorted training rows of the validation split (fixed for a dataset, ``n`` and ``seed``)."""
    train = dataset.indices("train")
    if len(train) <= n:
        return train
    return np.sort(np.random.default_rng(seed).choice(train, n, replace=False))


def validation_dataset(dataset: Dataset, rows: np.ndarray, seed: int = VALIDATION_SEED) -> Dataset:
    """The validation rows as a dataset of their own: a seeded quarter ``query``, the rest ``gallery``."""
    sub = dataset.subset(rows)
    order = np.random.default_rng([seed, 1]).permutation(len(rows))
    splits = np.full(len(rows), "gallery", dtype=object)
    splits[order[:max(1, int(round(QUERY_SHARE * len(rows))))]] = "query"
    return dataclasses.replace(sub, splits=splits.astype(str))


# ---- the network's two graphs on cached outputs -----------------------------------------------------------
@torch.no_grad()
def backbone_outputs(model: FashionSearchNet, images: np.ndarray, pre: Preprocessing,
                     batch_size: int = 64) -> dict[str, np.ndarray]:
    """uint8 (N,S,S,3) -> conv5, probs, aams, region_maps (numpy, eval mode)."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {"conv5": [], "probs": [], "aams": [], "region_maps": []}
    for s in range(0, len(images), batch_size):
        outs = model.backbone(to_tensor(images[s:s + batch_size], pre, "cpu"))
        for k, v in zip(parts, outs):
            parts[k].append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


@torch.no_grad()
def heads_outputs(model: FashionSearchNet, conv5: np.ndarray, boxes: np.ndarray,
                  batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(attr_reps, region_reps) of cached conv5 maps pooled at ``boxes`` (N, A+R, 4)."""
    model.eval()
    a, r = [], []
    for s in range(0, len(conv5), batch_size):
        x, y = model.heads(torch.from_numpy(conv5[s:s + batch_size]), torch.from_numpy(boxes[s:s + batch_size]))
        a.append(x.numpy())
        r.append(y.numpy())
    return np.concatenate(a), np.concatenate(r)


# ---- validation retrieval -------------------------------------------------------------------------------
def _exclude_same_item(vds: Dataset, task: Task, results: np.ndarray, k: int) -> np.ndarray:
    """Results with the query's own item removed (a region_part hit by the query's item does not count)."""
    ids = np.asarray([x if x is not None else "" for x in vds.item_ids], dtype=object)
    out = np.empty((len(results), k), np.int64)
    for i, (q, row) in enumerate(zip(task.query_rows, results)):
        keep = row[(ids[row] != ids[q]) | (ids[q] == "")] if ids[q] != "" else row
        keep = keep[:k]
        out[i] = np.concatenate([keep, np.repeat(keep[-1:], k - len(keep))]) if len(keep) < k else keep
    return out


MAX_PAIRS = 2000  # (query, request) pairs per validation task, a seeded sample beyond


def _satisfiable(vds: Dataset, task: Task) -> np.ndarray:
    """(Q,) whether some gallery row is a hit for each pair (scored as a one-result list per gallery row)."""
    g = task.gallery_rows
    ok = np.zeros(len(task.query_rows), bool)
    lab = vds.labels[g]
    for i in range(len(ok)):
        hit = np.where(task.targets[i] >= 0, lab == task.targets[i], True).all(1)
        for c, col in enumerate(task.region_columns):
            if task.region_targets[i, c] >= 0:
                hit &= vds.region_labels[col][g] == task.region_targets[i, c]
        ok[i] = bool(hit.any())
    return ok


def _task(vds: Dataset, name: str, qs: list, reqs: list, targets: list, rtargets: list) -> Task | None:
    cols = tuple(sorted(vds.region_labels))
    A = len(vds.schema.attributes)
    task = Task(name, np.asarray(qs, np.int64), reqs, np.asarray(targets, np.int32).reshape(-1, A),
                np.asarray(rtargets, np.int32).reshape(-1, len(cols)), cols, vds.indices("gallery"))
    keep = np.flatnonzero(_satisfiable(vds, task))
    if len(keep) > MAX_PAIRS:
        keep = np.sort(np.random.default_rng([VALIDATION_SEED, 2]).choice(keep, MAX_PAIRS, replace=False))
    if not len(keep):
        return None
    return Task(name, task.query_rows[keep], [reqs[i] for i in keep], task.targets[keep], task.region_targets[keep],
                cols, task.gallery_rows)


def region_tasks(vds: Dataset) -> tuple[Task | None, Task | None]:
    """(part, primary) validation tasks. The study's region_part / region_primary hit rule (every label after the
    change) leaves a few dozen satisfiable pairs in a validation gallery of hundreds, too few to choose weights
    on, so calibration uses denser hit rules of the same requests:

    - part: a collar/sleeve request whose value differs from the query's value of the attribute on the primary
      region (the garment becomes two-tone); hit = the asked region value, the query's primary-region value of
      that attribute and the query's category (the query's garment with the asked part), not the query's item;
    - primary: a request on the primary region; hit = the query's image-level labels with the asked change (the
      manipulation protocol's rule)."""
    schema, primary = vds.schema, vds.schema.primary_region
    cols = tuple(sorted(vds.region_labels))
    if not cols or primary is None:
        return None, None
    A = len(schema.attributes)
    cat = schema.attr_index("category") if "category" in schema.names else None
    part: tuple[list, list, list, list] = ([], [], [], [])
    prim: tuple[list, list, list, list] = ([], [], [], [])
    for q in vds.indices("query"):
        for region, attr in schema.region_pairs:
            col = f"{region}:{attr}"
            a = schema.attr_index(attr)
            ref_col = f"{primary}:{attr}"
            ref = vds.region_labels[ref_col][q] if ref_col in vds.region_labels else vds.labels[q, a]
            for v in range(len(schema.attributes[a].values)):
                req = Request(region=((region, attr, schema.attributes[a].values[v]),))
                if region == primary:
                    if ref < 0 or v == ref or vds.labels[q, a] < 0:
                        continue
                    t = vds.labels[q].copy()
                    t[a] = v
                    out, rt = prim, np.full(len(cols), -1, np.int32)
                else:
                    if col not in vds.region_labels or vds.region_labels[col][q] < 0 or ref < 0 or v in (
                            ref, vds.region_labels[col][q]):
                        continue
                    t = np.full(A, -1, np.int32)
                    if cat is not None:
                        t[cat] = vds.labels[q, cat]
                    rt = np.full(len(cols), -1, np.int32)
                    rt[cols.index(col)] = v
                    if ref_col in cols:
                        rt[cols.index(ref_col)] = ref
                    else:
                        t[a] = ref
                    out = part
                for lst, x in zip(out, (q, req, t, rt)):
                    lst.append(x)
    return _task(vds, "part", *part), _task(vds, "primary", *prim)


def run_task(vds: Dataset, task: Task, params: SearchParams, table: FeatureTable, method: str,
             exclude_item: bool = False, ks: Sequence[int] = (1, 5, 10, 30)) -> dict[str, float]:
    """Top-K and precision@K (percent) of one method on a validation task (NaN without pairs)."""
    if not len(task.query_rows):
        return {**{f"top{k}": float("nan") for k in ks}, **{f"prec{k}": float("nan") for k in ks}, "n": 0}
    k = min(max(ks), len(task.gallery_rows))
    extra = 6 if exclude_item else 0
    res = ExactSearcher(params, table, method).search(task.query_rows, task.requests, task.gallery_rows,
                                                      min(k + extra, len(task.gallery_rows)))
    if exclude_item:
        res = _exclude_same_item(vds, task, res, k)
    if k < max(ks):
        res = np.concatenate([res, np.repeat(res[:, -1:], max(ks) - k, 1)], 1)
    return score(vds, task, res, ks)


def choose_terms(vds: Dataset, params: SearchParams, table: FeatureTable) -> tuple[RegionTerms | None, float,
                                                                                   dict[str, Any]]:
    """(terms, region_weight, report) chosen on the validation region tasks (module doc); None without them."""
    part, prim = region_tasks(vds)
    gscale, pscales = prototype_scales(params)
    if part is None:
        return None, params.region_weight, {"skipped": "no satisfiable collar/sleeve request on the validation rows "
                                                       "(no region truth, or no primary region)"}
    fsn_part = run_task(vds, part, params, table, "fsn", True)
    fsn_prim = run_task(vds, prim, params, table, "fsn") if prim is not None else None

    def with_terms(w: float, pw: float, rw: float) -> SearchParams:
        return dataclasses.replace(params, region_terms=RegionTerms(w, pw, gscale, pscales), region_weight=rw)

    grid = []
    for rw in UNTOUCHED_WEIGHTS:
        ok_primary = True
        if prim is not None:  # with primary_weight 0: is the untouched down-weight harmless on torso requests?
            top1 = run_task(vds, prim, with_terms(1.0, 0.0, rw), table, "fsn_region")["top1"]
            ok_primary = top1 >= fsn_prim["top1"]
        for w in TERM_WEIGHTS:
            if not ok_primary and rw > 0:
                continue
            r = run_task(vds, part, with_terms(w, 0.0, rw), table, "fsn_region", True)
            grid.append({"weight": w, "region_weight": rw, "top5": r["top5"], "prec10": r["prec10"]})
            log.info("region terms weight %g, untouched %g: validation part Top-5 %.1f, precision@10 %.1f",
                     w, rw, r["top5"], r["prec10"])
    top = max(grid, key=lambda g: (g["prec10"] + g["top5"], -g["region_weight"], -g["weight"]))
    w, rw = top["weight"], top["region_weight"]
    prim_grid = []
    pw = 0.0
    if prim is not None:
        for cand in PRIMARY_WEIGHTS:
            t1 = run_task(vds, prim, with_terms(w, cand, rw), table, "fsn_region")["top1"]
            prim_grid.append({"primary_weight": cand, "top1": t1})
        pw = choose_primary_weight(prim_grid)
    terms = RegionTerms(w, pw, gscale, pscales)
    final = with_terms(w, pw, rw)
    report = {"weight": w, "primary_weight": pw, "region_weight": rw, "global_scale": gscale,
              "pair_scales": [float(x) for x in pscales], "grid": grid, "primary_grid": prim_grid,
              "objective": "part: precision@10 + Top-5 (hits: the asked part value with the query's torso value and "
                           "category, not the query's item); primary: Top-1 (manipulation hit rule)",
              "part": {"fsn": fsn_part, "fsn_region": run_task(vds, part, final, table, "fsn_region", True),
                       # the ablation: fsn_region's global term alone (no image-level change, no region term)
                       "global_term_only": run_task(vds, part, with_terms(0.0, 0.0, 0.0), table, "fsn_region",
                                                    True)},
              "primary": None if prim is None else
              {"fsn": fsn_prim, "fsn_region": run_task(vds, prim, final, table, "fsn_region")}}
    return terms, rw, report


def choose_primary_weight(grid: list[dict[str, float]]) -> float:
    """The primary-region term's weight from the validation grid: the best Top-1, but a non-zero weight only when
    it beats weight 0 (fsn's own ranking of torso requests) by :data:`PRIMARY_MIN_GAIN` points. Why: seed 1's
    validation rows chose 0.25 for +0.6 points (1.5 queries), which cost 2 points held out (session 13)."""
    base = next((g["top1"] for g in grid if g["primary_weight"] == 0.0), None)
    best = max(grid, key=lambda g: (g["top1"], -g["primary_weight"]))
    if base is not None and best["top1"] < base + PRIMARY_MIN_GAIN:
        return 0.0
    return float(best["primary_weight"])


def manipulation_check(vds: Dataset, schema, attr_reps: np.ndarray, region_reps: np.ndarray, probs: np.ndarray,
                       lam: np.ndarray, W: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """fsn manipulation Top-K on the validation rows, prototypes from these rows' own representations."""
    protos = compute_prototypes(attr_reps, labels, schema.num_classes)
    params = SearchParams(schema, protos, lam, W)
    table = FeatureTable(attr_reps, region_reps, probs)
    task = build_task(vds, "manipulation")
    return run_task(vds, task, params, table, "fsn")


# ---- the whole calibration ----------------------------------------------------------------------------
def calibrate_checkpoint(path: str | Path, dataset: Dataset | None = None, data: str | Path | None = None,
                         rows: int = VALIDATION_ROWS, seed: int = VALIDATION_SEED,
                         out: str | Path | None = None) -> dict[str, Any]:
    """Calibrate the ``fsn`` checkpoint ``path`` (module doc) and save it (atomically) to ``out`` (default: in
    place); returns the report (also stored as the checkpoint's ``calibration``)."""
    file = resolve_checkpoint(path)
    ck = Checkpoint.load(file)
    if ck.method != "fsn":
        raise UsageError(f"{file}: method {ck.method!r}; calibration chooses the AAM boxes and fsn_region terms of "
                         f"an fsn checkpoint (RUN/fsn/checkpoint.pt)")
    if dataset is None:
        folder = data or ck.data
        if not folder:
            raise CheckpointError(f"{file}: records no training dataset folder; pass --data DATA (the folder the "
                                  f"run was trained on)")
        dataset = load_dataset(folder)
    check_schema(ck.schema, dataset.schema, str(file))
    if ck.region_head is not None:  # calibrated before: start again from the trained heads alone
        ck = dataclasses.replace(ck, region_head=None,
                                 model={k: v for k, v in ck.model.items() if not k.startswith("region_heads.")})
    schema, pre = ck.schema, ck.preprocessing
    model = ck.build_model()
    lam, W = model.lam.detach().numpy(), model.W.detach().numpy()
    val = validation_rows(dataset, rows, seed)
    if len(val) < MIN_ROWS:
        raise UsageError(f"{dataset.root}: {len(val)} training rows; calibration needs at least {MIN_ROWS}")
    vds = validation_dataset(dataset, val, seed)
    report: dict[str, Any] = {"validation": {"rows": int(len(val)), "of_train_rows": int(len(dataset.indices("train"))),
                                             "seed": seed, "queries": int((vds.splits == "query").sum())},
                              "data": str(dataset.root)}
    log.info("calibration: %d validation rows of %d training rows (seed %d)", len(val),
             len(dataset.indices("train")), seed)
    # one backbone pass over the training rows: the heads at the training boxes for every row; the validation
    # rows' backbone outputs kept for the ROI choice
    train = dataset.indices("train")
    pos = np.searchsorted(train, val)  # validation row i is training row pos[i]
    keep: dict[str, list[np.ndarray]] = {"conv5": [], "probs": [], "aams": [], "region_maps": []}
    attr_reps, region_reps, probs = [], [], []
    t0 = time.perf_counter()
    for s in range(0, len(train), 1024):
        part = train[s:s + 1024]
        pb = backbone_outputs(model, load_resized(dataset, part, pre), pre)
        a, r = heads_outputs(model, pb["conv5"], roi.settings_boxes(pb["aams"], pb["region_maps"], schema,
                                                                    RoiSettings()))
        attr_reps.append(a)
        region_reps.append(r)
        probs.append(pb["probs"])
        mine = pos[(pos >= s) & (pos < s + len(part))] - s
        for k in keep:
            keep[k].append(pb[k][mine])
    bb = {k: np.concatenate(v) for k, v in keep.items()}
    log.info("calibration: features of %d training rows in %.0f s", len(train), time.perf_counter() - t0)
    # 1. the ROI step, on the validation rows' backbone outputs
    masks = load_masks(dataset, val)
    trained = RoiSettings()
    choice = RoiChoice()
    if masks is None:
        report["roi"] = {"skipped": "no masks/ beside the images; the paper's 0.2 threshold stays"}
    else:
        tight, roi_report = choose_roi(bb["aams"], bb["region_maps"], schema, masks)
        labels = dataset.labels[val]
        reps = {}
        for name, settings in (("training_boxes", trained), ("calibrated_boxes", tight)):
            boxes = roi.settings_boxes(bb["aams"], bb["region_maps"], schema, settings)
            reps[name] = heads_outputs(model, bb["conv5"], boxes)
        check = {name: manipulation_check(vds, schema, r[0], r[1], bb["probs"], lam, W, labels)
                 for name, r in reps.items()}
        gain = check["calibrated_boxes"]["top30"] - check["training_boxes"]["top30"]
        heads = tight if gain >= HEADS_MIN_GAIN else trained
        choice = RoiChoice(heads=heads, display=tight)
        roi_report["retrieval_check"] = {"protocol": "manipulation (fsn) on the validation rows", **check,
                                         "heads_use": "calibrated_boxes" if heads == tight else "training_boxes"}
        report["roi"] = roi_report
        log.info("ROI: upsample %dx, thresholds %s; validation IoU %s (0.2 boxes: %s); heads pool the %s "
                 "(validation manipulation Top-30 %.1f with training boxes, %.1f with calibrated boxes)",
                 tight.upsample, roi_report["thresholds"], roi_report["iou"], roi_report["iou_default"],
                 roi_report["retrieval_check"]["heads_use"], check["training_boxes"]["top30"],
                 check["calibrated_boxes"]["top30"])
    # 1b. region heads (training/region_head.py) on the region boxes the ROI step chose at the heads' upsampling
    # (only the region pairs read region boxes, so the attribute representations keep their training boxes)
    region_settings = choice.heads
    if masks is not None:
        regions = choice.display.regions if choice.display.upsample == choice.heads.upsample else choose_roi(
            bb["aams"], bb["region_maps"], schema, masks, upsamples=(int(choice.heads.upsample),))[0].regions
        region_settings = RoiSettings(choice.heads.attributes, regions, choice.heads.upsample)
    spec, region_heads, rh_report = choose_region_heads(model, dataset, val, pre, region_settings, seed=seed)
    report["region_heads"] = rh_report
    if spec is not None:
        state = model.state_dict()
        model = FashionSearchNet(schema, ck.preset, ck.method, ck.whole_map_pool, spec)
        model.load_state_dict({**state, **{f"region_heads.{k}": v for k, v in region_heads.state_dict().items()}})
        model.eval()
        choice = RoiChoice(heads=region_settings, display=choice.display)
        ck = dataclasses.replace(ck, model=model.state_dict(), region_head=spec.to_dict())
        log.info("region heads: %s", rh_report["chosen"])
    # 2. prototypes over every training row with the heads' boxes (image-level ones change only if the heads do;
    # then a second pass pools the calibrated boxes)
    if not choice.heads.is_default or spec is not None:
        attr_reps, region_reps = [], []
        for s in range(0, len(train), 1024):
            pb = backbone_outputs(model, load_resized(dataset, train[s:s + 1024], pre), pre)
            a, r = heads_outputs(model, pb["conv5"], roi.settings_boxes(pb["aams"], pb["region_maps"], schema,
                                                                        choice.heads))
            attr_reps.append(a)
            region_reps.append(r)
    A_all, R_all = np.concatenate(attr_reps), np.concatenate(region_reps)
    train_labels = dataset.labels[train].astype(np.int64)
    prototypes = compute_prototypes(A_all, train_labels, schema.num_classes)  # at the boxes the heads pool
    region_labels = {k: v[train] for k, v in dataset.region_labels.items()}
    region_protos = compute_region_prototypes(R_all, region_labels, train_labels, schema, prototypes)
    report["region_prototypes"] = {"pairs": sorted(region_protos), "rows": int(len(train)),
                                   "grouped_by": "the row's region truth column (primary region without one: "
                                                 "image-level labels)"}
    # 3. fsn_region terms on the validation rows (their representations from the pass above)
    table = FeatureTable(A_all[pos], R_all[pos], np.concatenate(probs)[pos])  # row i = validation row i
    params = SearchParams(schema, prototypes, lam, W, ck.region_weight, region_protos)
    terms, region_weight, terms_report = choose_terms(vds, params, table)
    report["region_terms"] = terms_report
    ck = dataclasses.replace(
        ck, prototypes=prototypes, region_prototypes=region_protos, region_weight=float(region_weight),
        region_terms=None if terms is None else {"weight": terms.weight, "primary_weight": terms.primary_weight,
                                                 "global_scale": terms.global_scale,
                                                 "pair_scales": [float(x) for x in terms.pair_scales]},
        roi=choice.to_dict(), calibration=report)
    ck.save(Path(out) if out is not None else file)
    return report
