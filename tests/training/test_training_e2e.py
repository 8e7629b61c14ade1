"""fsn train / fsn eval end to end on a tiny synthetic set; losses fall; resume; bad input -> clear errors."""
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from fashionsearchnet.app.cli import main
from fashionsearchnet.data.dataset import load_dataset
from fashionsearchnet.data.synth import generate
from fashionsearchnet.errors import CheckpointError, TrainingError
from fashionsearchnet.training import losses, stage_losses
from fashionsearchnet.training.checkpoint import Checkpoint, StageState, load_run
from fashionsearchnet.training.config import TrainConfig
from fashionsearchnet.training.trainer import Trainer, train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "data", 200, seed=3, size=64)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    rc = main(["train", str(data), "--out", str(out), "--preset", "tiny", "--method", "attribute,no_aam,fsn_region",
               "--epochs", "5,3,5", "--seed", "1", "--global-batch", "16"])
    assert rc == 0
    return out


@pytest.mark.slow
def test_train_writes_every_method_with_schema_and_preprocessing(run, data):
    for m in ("attribute", "no_aam", "fsn"):
        model, meta = load_run(run / m)
        assert meta["method"] == m and meta["preprocessing"].size == 64
        assert meta["schema"] == load_dataset(data).schema
        assert [p.shape for p in meta["prototypes"]] == [(c, 16) for c in meta["schema"].num_classes]
        assert all(np.isfinite(p).all() for p in meta["prototypes"])
        assert model.lam.shape == (6, 5) and model.W.shape == (6, 80, 32)
    # stage 1 is shared: identical backbone weights before stage 2
    ck = Checkpoint.load(run / "attribute" / "checkpoint.pt")
    assert ck.metrics["stage1"] == Checkpoint.load(run / "fsn" / "checkpoint.pt").metrics["stage1"]


def test_losses_fall(run):
    m = Checkpoint.load(run / "fsn" / "checkpoint.pt").metrics
    s1, s2, s3 = m["stage1"], m["stage2"], m["stage3"]
    assert s1[-1]["loss"] < s1[0]["loss"] - 0.05
    assert s2[-1]["loss"] < s2[0]["loss"]
    assert all(np.isfinite(e["loss"]) for e in s3)


@pytest.mark.slow
def test_global_loss_falls_on_planted_representations(data, tmp_path):
    """Stage 3 (L_G on lam and W): attribute representations = a value embedding plus loud noise in half the
    dimensions; learning lam/W must bring the loss down (the tiny backbone's own representations carry too
    little signal after seconds of training for L_G to move reliably)."""
    ds = load_dataset(data)
    cfg = TrainConfig(preset="tiny", methods=("fsn",), epochs=(0, 0, 25), seed=2, global_batch=32)
    tr = Trainer(ds, tmp_path / "run", cfg)
    model = tr.new_model("fsn")
    rng = np.random.default_rng(0)
    n, A, D = len(tr.labels), model.num_attributes, 16
    emb = [rng.normal(0, 1, (c, D // 2)) for c in model.num_classes]
    reps = np.zeros((n, A, D), np.float32)
    for a in range(A):
        reps[:, a, : D // 2] = emb[a][np.maximum(tr.labels[:, a], 0)]
        reps[:, a, D // 2:] = rng.normal(0, 3, (n, D // 2))
    protos = [np.stack([reps[tr.labels[:, a] == v, a].mean(0) if (tr.labels[:, a] == v).any() else reps[:, a].mean(0)
                        for v in range(c)]) for a, c in enumerate(model.num_classes)]
    m = tr.stage3(model, reps, protos, tmp_path / "s3.pt", None)
    first, last = np.mean([e["loss"] for e in m[:3]]), np.mean([e["loss"] for e in m[-3:]])
    assert last < 0.8 * first


def test_eval_end_to_end(run, data, tmp_path):
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), str(data), "--json", str(out), "--protocols", "query,manipulation,region"]) == 0
    res = json.loads(out.read_text())  # {"<protocol>": {"<method>": {...}}}
    assert set(res) == {"query", "manipulation", "region"}
    for proto in res.values():
        assert set(proto) == {"attribute", "no_aam", "fsn", "fsn_region"}
        for r in proto.values():
            if r["n"]:
                assert 0.0 <= r["top1"] <= r["top30"] <= r["top50"] <= 100.0
    assert res["manipulation"]["fsn"]["n"] > 0


@pytest.mark.slow
def test_resume_after_interrupt_gives_the_same_model(data, tmp_path, monkeypatch):
    ds = load_dataset(data)
    cfg = TrainConfig(preset="tiny", methods=("fsn",), epochs=(1, 2, 1), seed=5, checkpoint_every_s=0.0)
    ref = train(ds, tmp_path / "ref", cfg)
    calls = {"n": 0}
    orig = stage_losses.batch_triplets

    def boom(*a, **k):  # interrupt in the middle of stage 2, epoch 2 (5 calls per step, 5 steps per epoch)
        calls["n"] += 5
        if calls["n"] > 5 * 5 * 8:
            raise KeyboardInterrupt
        return orig(*a, **k)

    monkeypatch.setattr(stage_losses, "batch_triplets", boom)
    with pytest.raises(KeyboardInterrupt):
        train(ds, tmp_path / "cut", cfg)
    st = StageState.load(tmp_path / "cut" / "fsn" / "state.pt")
    assert st.stage == 2 and st.epoch == 1 and st.step > 0  # mid-epoch state of stage 2
    monkeypatch.setattr(stage_losses, "batch_triplets", orig)
    train(ds, tmp_path / "cut", cfg)
    a = Checkpoint.load(tmp_path / "ref" / "fsn" / "checkpoint.pt")
    b = Checkpoint.load(tmp_path / "cut" / "fsn" / "checkpoint.pt")
    for k in a.model:
        torch.testing.assert_close(a.model[k], b.model[k], rtol=1e-5, atol=1e-6)
    assert ref["fsn"]["checkpoint"].endswith("checkpoint.pt")


def test_empty_training_split_is_a_clear_error(data, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(data, d)
    csv = (d / "attributes.csv").read_text().splitlines()
    head = csv[0].split(",")
    si = head.index("split")
    rows = [",".join(c if j != si else "gallery" for j, c in enumerate(r.split(","))) for r in csv[1:]]
    (d / "attributes.csv").write_text("\n".join([csv[0]] + rows) + "\n")
    with pytest.raises(TrainingError, match="training split has 0 row"):
        Trainer(load_dataset(d), tmp_path / "r", TrainConfig(preset="tiny"))


def test_non_finite_loss_names_stage_and_step(data, tmp_path, monkeypatch):
    real = losses.classification_loss
    n = {"i": 0}

    def nan_on_third(*a, **k):
        n["i"] += 1
        out = real(*a, **k)
        return out * float("nan") if n["i"] == 3 else out

    monkeypatch.setattr(losses, "classification_loss", nan_on_third)
    with pytest.raises(TrainingError, match=r"stage 1 \(L_C\): non-finite loss nan at epoch 1 step 3"):
        train(load_dataset(data), tmp_path / "r", TrainConfig(preset="tiny", methods=("attribute",), epochs=(1, 0, 0)))


def test_checkpoint_of_another_schema_is_refused(run, data, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(data, d)
    schema = json.loads((d / "schema.json").read_text())
    next(a for a in schema["attributes"] if a["name"] == "color")["values"].append("magenta")
    (d / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(CheckpointError, match=r"another schema .*'color'.*magenta"):
        from fashionsearchnet.training.evaluate import evaluate_run
        evaluate_run(run, load_dataset(d), ["query"])
    rc = main(["eval", str(run), str(d), "--json", str(tmp_path / "x.json")])
    assert rc == 2 and not (tmp_path / "x.json").exists()
    # resuming a run folder with another schema is refused too
    with pytest.raises(CheckpointError, match="another schema"):
        train(load_dataset(d), run, TrainConfig(preset="tiny", seed=1, methods=("fsn",), global_batch=16))


def test_resume_checks_global_negatives_and_accepts_runs_from_before_the_option(run, data, tmp_path):
    r = tmp_path / "r"
    shutil.copytree(run, r)
    cfg = dict(preset="tiny", seed=1, methods=("fsn",), global_batch=16)
    with pytest.raises(CheckpointError, match=r"other settings \(global_negatives\)"):
        train(load_dataset(data), r, TrainConfig(**cfg, global_negatives="near"))
    desc = json.loads((r / "run.json").read_text())
    del desc["config"]["global_negatives"]  # a run folder written before the option existed
    (r / "run.json").write_text(json.dumps(desc))
    assert train(load_dataset(data), r, TrainConfig(**cfg))["fsn"]["skipped"]
    with pytest.raises(CheckpointError, match="global_negatives"):
        train(load_dataset(data), r, TrainConfig(**cfg, global_negatives="near"))


def test_eval_region_weight_override(run, data, tmp_path):
    from fashionsearchnet.evaluation.protocol import evaluate
    from fashionsearchnet.search.exact import ExactSearcher
    from fashionsearchnet.search.request import Request
    from fashionsearchnet.training.evaluate import build_searchers

    ds = load_dataset(data)
    stored = build_searchers(run, ds, methods=["fsn"])
    # what the run stores: chosen on validation at the end of training (training/calibrate.py)
    assert stored["fsn_region"].params.region_weight == Checkpoint.load(run / "fsn").region_weight
    over = build_searchers(run, ds, methods=["fsn"], region_weight=1.0)["fsn_region"]
    assert over.params.region_weight == 1.0
    # a region request through the override equals the stored features searched with weight 1.0 by hand
    s = stored["fsn_region"]

    def by_hand(w):
        return ExactSearcher(dataclasses.replace(s.params, region_weight=w), s.features, method="fsn_region")

    reg, attr = next((r, a) for r, a in ds.schema.region_pairs if r != ds.schema.primary_region)
    req = Request(region=((reg, attr, ds.schema.attributes[ds.schema.attr_index(attr)].values[0]),))
    q, g = ds.indices("query"), ds.indices("gallery")
    got = over.search(q, [req] * len(q), g, 10)
    assert np.array_equal(got, by_hand(1.0).search(q, [req] * len(q), g, 10))
    # and the weight matters: weight 0 drops the terms of the pairs the request does not touch
    assert not np.array_equal(got, by_hand(0.0).search(q, [req] * len(q), g, 10))
    with pytest.raises(SystemExit) as e:  # argparse: one-line usage error, exit 2
        main(["eval", str(run), str(data), "--json", str(tmp_path / "x.json"), "--region-weight", "1.5"])
    assert e.value.code == 2 and not (tmp_path / "x.json").exists()
