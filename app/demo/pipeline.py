"""``fsn demo``'s pipeline: synthesise a catalogue, train briefly, export, index, then run the example searches
(:mod:`.examples`) and write the report (:mod:`.report`).

Every step writes into ``DIR`` and is skipped on a rerun when its output exists and is valid (``DIR/demo.json``
records the configuration each output was made with): ``data/`` (synthetic catalogue), ``run/`` (training run),
``bundle/`` (ONNX bundle), ``gallery/`` (search index), ``report.html`` + ``report.json`` (always rewritten,
seconds).

The example searches go through :class:`~fashionsearchnet.app.gallery_service.GalleryService`, the same code
the HTTP service runs. Torch is imported only by the train and export steps.

Reference bundle (issue 17): a model trained for minutes cannot show region search. When the package ships a
bundle in ``app/demo/reference/`` (``manifest.json`` + its files, ``MODEL_CARD.md`` beside them: the command that
trained it, data seed, metrics, sha256), the demo still trains, exports and indexes a fresh model to show the
pipeline, then synthesises a second catalogue for it (``reference-data/``: the ``regional`` profile, whose
families share a torso and differ in collar/sleeve accents, ``reference_count`` images of seed ``reference_seed``,
all gallery but a tenth of queries; 600 basic images leave at most 2 gallery items with a given sleeve colour on a
given torso, too few to show region search) and indexes it with the reference bundle (``reference-gallery/``);
the report's searches and the kiosk (``fsn serve``) use that gallery, and the report says so.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

from fashionsearchnet.errors import FSNError

log = logging.getLogger(__name__)

Bars = Callable[[int | None, str], ContextManager[Callable[[int], None]]]
STATE = "demo.json"
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"  # a bundle shipped with the package, if any
AUTO = "packaged"
STEPS = ("data", "run", "bundle", "gallery", "reference-data", "reference")
REFERENCE_PROFILE, REFERENCE_SPLITS = "regional", (0.0, 0.9, 0.1)


def packaged_reference(folder: Path = REFERENCE_DIR) -> Path | None:
    """The reference bundle shipped in the package (``app/demo/reference/manifest.json``), or None."""
    return folder if (folder / "manifest.json").is_file() else None


@dataclass(frozen=True)
class DemoConfig:
    """What the demo builds. The defaults fit in about 10 minutes on a 2-core CPU."""

    count: int = 600
    size: int = 128
    seed: int = 0
    preset: str = "edge"
    epochs: tuple[int, int, int] = (8, 3, 20)  # measured: 6.8 min in all with (8, 3, 40) on a busy 2-core CPU
    batch_size: int = 32
    lr: float = 0.02
    k: int = 8
    reference_count: int = 2000  # the reference bundle's catalogue (module doc)
    reference_seed: int = 101  # the region study's held-out seed: not the reference model's training data (seed 0)

    def step_key(self, step: str) -> dict[str, Any]:
        """The part of the configuration that a step's output depends on."""
        d = asdict(self)
        keys = {"data": ("count", "size", "seed"),
                "run": ("count", "size", "seed", "preset", "epochs", "batch_size", "lr")}
        keys["bundle"] = keys["run"]
        keys["gallery"] = keys["run"]
        keys["reference-data"] = ("reference_count", "size", "reference_seed")
        keys["reference"] = keys["reference-data"]  # and the bundle itself: the gallery is bound to its sha256
        return {k: d[k] for k in keys[step]}


@dataclass
class DemoResult:
    out: Path
    report: Path
    gallery: Path  # the gallery the report searched and ``fsn serve`` should open
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: Path | None = None  # the reference bundle that answered the searches, if one was used


def _no_bar(total: int | None, desc: str):
    import contextlib

    @contextlib.contextmanager
    def cm():
        yield lambda n=1: None

    return cm()


# ---- state ------------------------------------------------------------------------------------------
def _load_state(out: Path) -> dict[str, Any]:
    p = out / STATE
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        log.warning("%s: unreadable; rebuilding every step", p)
        return {}


def _save_state(out: Path, state: dict[str, Any]) -> None:
    tmp = out / (STATE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    tmp.replace(out / STATE)


def _fresh(state: dict[str, Any], step: str, cfg: DemoConfig, check: Callable[[], bool]) -> bool:
    if state.get(step, {}).get("config") != json.loads(json.dumps(cfg.step_key(step))):
        return False
    try:
        return bool(check())
    except (FSNError, OSError, ValueError, KeyError) as e:
        log.info("%s: existing output is not valid (%s); rebuilding it", step, e)
        return False


# ---- steps ------------------------------------------------------------------------------------------
def _synthesise(data: Path, count: int, seed: int, size: int, bars: Bars, label: str, **kw: Any) -> Path:
    """A fresh synthetic catalogue in ``data`` (replacing what is there), with a progress bar."""
    from fashionsearchnet.data.synth import generate

    if data.exists():
        shutil.rmtree(data)
    with bars(count, label) as advance:
        generate(data, count, seed=seed, size=size, progress=advance, **kw)
    return data


def _step_data(out: Path, cfg: DemoConfig, bars: Bars) -> Path:
    return _synthesise(out / "data", cfg.count, cfg.seed, cfg.size, bars, "1/4 synthesise")


def _step_reference_data(out: Path, cfg: DemoConfig, bars: Bars) -> Path:
    return _synthesise(out / "reference-data", cfg.reference_count, cfg.reference_seed, cfg.size, bars,
                       "5/6 synthesise (reference model's catalogue)", splits=REFERENCE_SPLITS,
                       profile=REFERENCE_PROFILE)


def _step_train(out: Path, data: Path, cfg: DemoConfig, bars: Bars) -> Path:
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.training.trainer import TrainConfig, train

    run = out / "run"
    if run.exists():
        shutil.rmtree(run)
    tcfg = TrainConfig(preset=cfg.preset, methods=("fsn",), seed=cfg.seed, epochs=cfg.epochs,
                       batch_size=cfg.batch_size, lr=cfg.lr)
    train(load_dataset(data), run, tcfg, bars=lambda total, desc: bars(total, f"2/4 train {desc}"))
    return run


def _step_export(out: Path, run: Path) -> Path:
    from fashionsearchnet.export.exporter import export_run

    bundle = out / "bundle"
    export_run(run, bundle, method="fsn")
    return bundle


def _step_index(out: Path, bundle: Path, data: Path, cfg: DemoConfig, bars: Bars, name: str = "gallery",
                label: str = "4/4 index") -> Path:
    from fashionsearchnet.gallery.indexer import index_catalogue

    gallery = out / name
    holder: dict[str, Any] = {}

    def on_total(total: int, done: int) -> None:
        holder["cm"] = bars(total, label)
        holder["advance"] = holder["cm"].__enter__()
        holder["advance"](done)

    try:
        index_catalogue(bundle, data, gallery, backend="ort", batch_size=64, force=True,
                        progress=lambda n: holder["advance"](n), on_total=on_total)
    finally:
        if "cm" in holder:
            holder["cm"].__exit__(None, None, None)
    return gallery


def _bundle_matches_run(bundle: Path, run: Path) -> bool:
    from fashionsearchnet.fileio import sha256_file
    from fashionsearchnet.runtime.bundle import Bundle

    b = Bundle.open(bundle)
    return b.manifest.get("run", {}).get("checkpoint_sha256") == sha256_file(run / "fsn" / "checkpoint.pt")


def _gallery_matches_bundle(gallery: Path, bundle: Path) -> bool:
    from fashionsearchnet.gallery.gallery import Gallery
    from fashionsearchnet.runtime.bundle import Bundle

    return len(Gallery.open(gallery, bundle=Bundle.open(bundle))) > 0


def build(out: str | Path, cfg: DemoConfig = DemoConfig(), bars: Bars | None = None,
          reference: str | Path | None = AUTO) -> DemoResult:
    """Run (or reuse) every step and write ``out/report.html``. ``reference``: a bundle folder that answers the
    report's searches (module doc); the default is the one shipped in the package, if any; None: the fresh model."""
    bars = bars or _no_bar
    ref = packaged_reference() if reference == AUTO else (Path(reference).resolve() if reference else None)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(out)
    steps: dict[str, dict[str, Any]] = {}
    data, run, bundle, gallery = out / "data", out / "run", out / "bundle", out / "gallery"

    def step(name: str, valid: Callable[[], bool], make: Callable[[], Any]) -> None:
        t0 = time.perf_counter()
        if _fresh(state, name, cfg, valid):
            log.info("%s: reusing %s", name, out / name)
            steps[name] = {"reused": True, "seconds": state[name].get("seconds", 0.0)}
            return
        for later in STEPS[STEPS.index(name):]:
            state.pop(later, None)  # everything after a rebuilt step is rebuilt too
        _save_state(out, state)
        make()
        secs = round(time.perf_counter() - t0, 1)
        state[name] = {"config": cfg.step_key(name), "seconds": secs}
        _save_state(out, state)
        steps[name] = {"reused": False, "seconds": secs}
        log.info("%s: done in %.1f s", name, secs)

    step("data", lambda: (data / "attributes.csv").is_file(), lambda: _step_data(out, cfg, bars))
    step("run", lambda: (run / "fsn" / "checkpoint.pt").is_file(), lambda: _step_train(out, data, cfg, bars))
    step("bundle", lambda: _bundle_matches_run(bundle, run), lambda: _step_export(out, run))
    step("gallery", lambda: _gallery_matches_bundle(gallery, bundle), lambda: _step_index(out, bundle, data, cfg, bars))
    searched, searched_data = gallery, data
    if ref is not None:
        searched, searched_data = out / "reference-gallery", out / "reference-data"
        step("reference-data", lambda: (searched_data / "attributes.csv").is_file(),
             lambda: _step_reference_data(out, cfg, bars))
        step("reference", lambda: _gallery_matches_bundle(searched, ref),
             lambda: _step_index(out, ref, searched_data, cfg, bars, "reference-gallery",
                                 "6/6 index (reference model)"))
    t0 = time.perf_counter()
    report = _step_report(out, cfg, steps, searched, ref, searched_data)
    steps["report"] = {"reused": False, "seconds": round(time.perf_counter() - t0, 1)}
    return DemoResult(out, report, searched, steps, ref)


def _model_info(ref: Path | None) -> dict[str, Any]:
    """Which model answered the report's searches (JSON-able)."""
    if ref is None:
        return {"reference": False}
    from fashionsearchnet.runtime.bundle import Bundle

    b = Bundle.open(ref)
    card = ref / "MODEL_CARD.md"
    return {"reference": True, "bundle": str(ref), "sha256": b.sha256, "method": b.method,
            "preset": b.manifest.get("run", {}).get("preset", {}).get("name"),
            "model_card": str(card) if card.is_file() else None}


def _step_report(out: Path, cfg: DemoConfig, steps: dict[str, dict[str, Any]], gallery: Path | None = None,
                 ref: Path | None = None, data: Path | None = None) -> Path:
    """Open the gallery like the service does, run the example searches and write ``report.html`` (+ ``.json``)."""
    from fashionsearchnet.app.demo.examples import make_examples, run_examples
    from fashionsearchnet.app.demo.report import report_data, write_report
    from fashionsearchnet.app.gallery_service import GalleryService
    from fashionsearchnet.data.dataset import load_dataset

    ds = load_dataset(data or out / "data")
    gallery = gallery or out / "gallery"
    service = GalleryService(gallery, backend="ort")
    service.load()
    try:
        examples = make_examples(ds)
        run_examples(ds, service, examples, cfg.k)
        data = report_data(ds, examples, cfg=asdict(cfg), gallery=gallery, service=service.describe(),
                           steps=steps, model=_model_info(ref))
        return write_report(out, data, ds)
    finally:
        service.close()
