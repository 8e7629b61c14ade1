"""``fsn demo``: synthesise a catalogue, train briefly, export, index, run example searches and write a report.

Every step writes into ``DIR`` and is skipped on a rerun when its output exists and is valid (``DIR/demo.json``
records the configuration each output was made with): ``data/`` (synthetic catalogue), ``run/`` (training run),
``bundle/`` (ONNX bundle), ``gallery/`` (search index), ``report.html`` (always rewritten, seconds).

The example searches go through :class:`~fashionsearchnet.app.gallery_service.GalleryService`, the same code
the HTTP service runs. Torch is imported only by the train and export steps.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

import cv2
import numpy as np

from fashionsearchnet.errors import FSNError

log = logging.getLogger(__name__)

Bars = Callable[[int | None, str], ContextManager[Callable[[int], None]]]
STATE = "demo.json"


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

    def step_key(self, step: str) -> dict[str, Any]:
        """The part of the configuration that a step's output depends on."""
        d = asdict(self)
        keys = {"data": ("count", "size", "seed"),
                "run": ("count", "size", "seed", "preset", "epochs", "batch_size", "lr")}
        keys["bundle"] = keys["run"]
        keys["gallery"] = keys["run"]
        return {k: d[k] for k in keys[step]}


@dataclass
class Example:
    title: str
    explain: str
    query: str  # item id in the gallery, or an image file (a shopper's photo)
    sets: list[str]
    hit: Callable[[int], str]  # dataset row -> "full" | "part" | ""
    answer: Any = None
    took_ms: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)  # gallery item id -> dataset row


@dataclass
class DemoResult:
    out: Path
    report: Path
    gallery: Path
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)


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
def _step_data(out: Path, cfg: DemoConfig, bars: Bars) -> Path:
    from fashionsearchnet.data.synth import generate

    data = out / "data"
    if data.exists():
        shutil.rmtree(data)
    with bars(cfg.count, "1/4 synthesise") as advance:
        generate(data, cfg.count, seed=cfg.seed, size=cfg.size, progress=advance)
    return data


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


def _step_index(out: Path, bundle: Path, data: Path, cfg: DemoConfig, bars: Bars) -> Path:
    from fashionsearchnet.gallery.indexer import index_catalogue

    gallery = out / "gallery"
    holder: dict[str, Any] = {}

    def on_total(total: int, done: int) -> None:
        holder["cm"] = bars(total, "4/4 index")
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


def build(out: str | Path, cfg: DemoConfig = DemoConfig(), bars: Bars | None = None) -> DemoResult:
    """Run (or reuse) every step and write ``out/report.html``."""
    bars = bars or _no_bar
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
        for later in ("data", "run", "bundle", "gallery")[("data", "run", "bundle", "gallery").index(name):]:
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
    t0 = time.perf_counter()
    report = write_report(out, cfg, steps)
    steps["report"] = {"reused": False, "seconds": round(time.perf_counter() - t0, 1)}
    return DemoResult(out, report, gallery, steps)


# ---- examples ---------------------------------------------------------------------------------------
def make_examples(ds: Any, gallery: Any) -> list[Example]:
    """Three searches from the catalogue's query split: a shopper's photo, a colour change, a sleeve colour change."""
    schema = ds.schema
    names = list(schema.names)
    a_col = names.index("color") if "color" in names else len(names) - 1
    colors = schema.attributes[a_col].values
    labels = ds.labels
    rel = {str(p.relative_to(ds.root).as_posix()): i for i, p in enumerate(ds.images)}
    qrows = [int(r) for r in ds.indices("query")] or [0]
    q = qrows[0]
    q2 = qrows[1] if len(qrows) > 1 else q
    qid2 = ds.images[q2].relative_to(ds.root).as_posix()

    def same_all(row: int, target: np.ndarray) -> bool:
        return bool(np.array_equal(labels[row], target))

    def hit_query(row: int) -> str:
        return "full" if same_all(row, labels[q]) else ""

    # colour change: the most common colour among the other items, not the query's own
    counts = np.bincount(labels[:, a_col][labels[:, a_col] >= 0], minlength=len(colors))
    counts[labels[q2, a_col]] = -1
    target_c = int(np.argmax(counts))
    target = labels[q2].copy()
    target[a_col] = target_c

    def hit_color(row: int) -> str:
        if same_all(row, target):
            return "full"
        return "part" if labels[row, a_col] == target_c else ""

    examples = [
        Example("A shopper's photo", "The query is a photo (features extracted from the image file, as an upload "
                "to the kiosk); results are the nearest items with no change. Marked: the same attributes.",
                str(ds.images[q]), [], hit_query),
        Example(f"Same, but {colors[target_c]}", f"Attribute manipulation (eq. 7): the query's colour "
                f"representation is replaced by the {colors[target_c]} prototype. Marked: colour matches "
                "(thin) / every attribute equals the target (thick).", qid2, [f"{names[a_col]}={colors[target_c]}"],
                hit_color),
    ]
    region_key = next((k for k in ("sleeve:color",) if k in ds.region_labels), None)
    if region_key is None and ds.region_labels:
        region_key = next(iter(ds.region_labels))
    if region_key:
        reg, attr = region_key.split(":")
        a = names.index(attr)
        vals = schema.attributes[a].values
        rl = ds.region_labels[region_key]
        q3 = next((r for r in qrows if labels[r, names.index("sleeve")] != 0), qrows[-1]) if "sleeve" in names else q
        own = rl[q3]
        cnt = np.bincount(rl[rl >= 0], minlength=len(vals))
        if own >= 0:
            cnt[own] = -1
        cnt[labels[q3, a]] = -1  # a sleeve colour unlike the torso, so the change is region-specific
        v = int(np.argmax(cnt))

        def hit_region(row: int, v=v, q3=q3) -> str:
            if rl[row] != v:
                return ""
            return "full" if labels[row, a] == labels[q3, a] else "part"

        examples.append(Example(f"Only the {reg} in {vals[v]}", f"Region-specific manipulation (section 3.4): "
                                f"{reg}:{attr}={vals[v]} changes the {reg} region's {attr} and keeps the rest. "
                                f"Marked: {reg} {attr} is {vals[v]} (thin) / and the {attr} elsewhere is the query's "
                                "(thick).", ds.images[q3].relative_to(ds.root).as_posix(),
                                [f"{reg}:{attr}={vals[v]}"], hit_region))
    for ex in examples:
        ex.rows = rel
    return examples


# ---- pictures ---------------------------------------------------------------------------------------
_BOX_BGR = [(70, 57, 230), (143, 157, 42), (97, 162, 244), (157, 123, 69), (229, 93, 155), (181, 91, 241)]


def draw_boxes(rgb: np.ndarray, info: Any, size: int = 256) -> np.ndarray:
    """The query image scaled to ``size`` with its attention boxes (attributes solid 2 px, regions 1 px);
    colours follow :func:`box_legend`."""
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    img = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
    for i, b in enumerate(info.boxes):
        c = _BOX_BGR[i % len(_BOX_BGR)]
        x0, y0, x1, y1 = (int(round(v * s)) for v in b.box)
        cv2.rectangle(img, (x0 + 1 + i % 3, y0 + 1 + i % 3), (max(x0 + 1, x1 - 2 - i % 3), max(y0 + 1, y1 - 2 - i % 3)), c,
                      2 if b.kind == "attribute" else 1)
    return img


def box_legend(info: Any) -> str:
    """HTML legend of the boxes drawn by :func:`draw_boxes` (same colours)."""
    out = []
    for i, b in enumerate(info.boxes):
        bgr = _BOX_BGR[i % len(_BOX_BGR)]
        rgb = "#%02x%02x%02x" % (bgr[2], bgr[1], bgr[0])
        name = html.escape(b.name) + ("" if b.kind == "attribute" else " region")
        out.append(f'<span class="lg" style="border-color:{rgb};border-style:{"solid" if b.kind == "attribute" else "dashed"}">'
                   f"{name}</span>")
    return " ".join(out)


def _data_url(bgr: np.ndarray) -> str:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise FSNError("report: cannot encode a picture as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()


def _thumb(path: Path, size: int = 128) -> str:
    from fashionsearchnet.data.preprocess import read_image

    rgb = read_image(path)
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    return _data_url(cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (round(w * s), round(h * s)),
                                interpolation=cv2.INTER_CUBIC))


# ---- report -----------------------------------------------------------------------------------------
def run_examples(out: Path, cfg: DemoConfig) -> tuple[Any, Any, list[Example]]:
    """Open the gallery like the service does and run the example searches."""
    from fashionsearchnet.app.gallery_service import GalleryService
    from fashionsearchnet.data.dataset import load_dataset
    from fashionsearchnet.data.preprocess import read_image
    from fashionsearchnet.search.request import Request

    ds = load_dataset(out / "data")
    backend = GalleryService(out / "gallery", backend="ort")
    backend.load()
    examples = make_examples(ds, backend.gallery)
    for ex in examples:
        t0 = time.perf_counter()
        query = read_image(ex.query) if Path(ex.query).is_absolute() else ex.query
        ex.answer = backend.search(query, Request.parse(ex.sets, backend.schema), [], cfg.k)
        ex.took_ms = (time.perf_counter() - t0) * 1e3
    return ds, backend, examples


def write_report(out: Path, cfg: DemoConfig, steps: dict[str, dict[str, Any]]) -> Path:
    """Run the examples and write ``out/report.html`` (self-contained: pictures are inline)."""
    from fashionsearchnet.data.preprocess import read_image

    ds, backend, examples = run_examples(out, cfg)
    desc = backend.describe()
    sections = []
    for ex in examples:
        qpath = Path(ex.query) if Path(ex.query).is_absolute() else ds.root / ex.query
        qimg = _data_url(draw_boxes(read_image(qpath), ex.answer.query))
        pred = ", ".join(f"{a}={p['value']} ({p['confidence']:.0%})" for a, p in ex.answer.query.predicted.items())
        cards = []
        n_full = n_part = 0
        for i, r in enumerate(ex.answer.results, 1):
            row = ex.rows.get(r["id"])
            mark = ex.hit(row) if row is not None else ""
            n_full += mark == "full"
            n_part += mark in ("full", "part")
            truth = ", ".join(f"{a.name}={a.values[v]}" for a, v in zip(ds.schema.attributes, ds.labels[row])
                              if v >= 0) if row is not None else ""
            cards.append(
                f'<figure class="r {mark}"><img src="{_thumb(ds.root / r["id"])}" alt="{html.escape(r["id"])}">'
                f'<figcaption>{i}. {html.escape(r["id"].split("/")[-1])}<br><small>d={r["distance"]:.3g}'
                f'{" ✓✓" if mark == "full" else " ✓" if mark == "part" else ""}</small>'
                f'<br><small class="t">{html.escape(truth)}</small></figcaption></figure>')
        change = " ".join(ex.sets) or "no change"
        summary = (f"{n_part} of {len(cards)} results match the change, {n_full} match every attribute of the target"
                   if ex.sets else f"{n_full} of {len(cards)} results have every attribute of the query")
        sections.append(
            f'<section><h2>{html.escape(ex.title)}</h2><p>{html.escape(ex.explain)}</p>'
            f'<p class="cmd"><code>fsn search {html.escape(str(out / "gallery"))} {html.escape(ex.query)} '
            f'{" ".join("--set " + html.escape(s) for s in ex.sets)} -k {cfg.k}</code></p>'
            f'<div class="row"><figure class="q"><img src="{qimg}" alt="query"><figcaption><b>query</b> '
            f'({html.escape(change)})<br><small>predicted: {html.escape(pred)}</small><br>{box_legend(ex.answer.query)}'
            f'</figcaption></figure>'
            f'<div class="grid">{"".join(cards)}</div></div>'
            f'<p class="sum">{summary}; {ex.answer.method}, {"exact" if ex.answer.exact else "hnsw"} over '
            f'{ex.answer.candidates} items, {ex.took_ms:.0f} ms.</p></section>')
    step_rows = "".join(f"<tr><td>{k}</td><td>{'reused' if v.get('reused') else 'built'}</td>"
                        f"<td>{v.get('seconds', 0):.1f} s</td></tr>" for k, v in steps.items())
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>FashionSearchNet Edge demo</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; margin: 24px; color: #1f2328;
  background: #f5f3ef; }}
section {{ background: #fff; border-radius: 14px; padding: 16px 20px; margin: 18px 0; }}
.row {{ display: flex; gap: 18px; align-items: flex-start; flex-wrap: wrap; }}
.q {{ width: 256px; flex: none; }} .q img {{ border-radius: 8px; }}
.lg {{ display: inline-block; border: 2px solid; border-radius: 4px; padding: 0 4px; margin: 2px 2px 0 0; font-size: 12px; }}
.grid {{ display: grid; grid-template-columns: repeat(4, 140px); gap: 10px; }}
figure {{ margin: 0; font-size: 13px; }}
figure.r {{ border: 3px solid #e3dfd7; border-radius: 10px; padding: 4px; background: #fff; }}
figure.r.part {{ border-color: #8fc7a0; }}
figure.r.full {{ border-color: #1d7f3f; border-width: 5px; padding: 2px; }}
figure.r img {{ width: 128px; height: 128px; object-fit: contain; display: block; }}
small.t {{ color: #6a6f76; }}
.cmd code {{ background: #f0eee9; padding: 2px 6px; border-radius: 4px; font-size: 13px; }}
.sum {{ color: #2f5d50; font-weight: 600; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 3px 12px; border-bottom: 1px solid #e3dfd7; }}
</style></head><body>
<h1>FashionSearchNet Edge demo</h1>
<p>A synthetic catalogue of {cfg.count} images ({cfg.size} px), a model trained briefly on this CPU
(preset <b>{cfg.preset}</b>, epochs {cfg.epochs[0]}/{cfg.epochs[1]}/{cfg.epochs[2]}), exported to ONNX, indexed
({desc['items']} items, backend {desc['backend']}) and searched. Boxes on the query are where the model looked for
each attribute (attribute activation maps, thick) and each region (thin). The model is trained for minutes, not
hours: expect the idea to show, not the paper's accuracy.</p>
{''.join(sections)}
<section><h2>Try it on the kiosk page</h2><p><code>fsn serve {html.escape(str(out / 'gallery'))} --port 8080</code>
then open <code>http://127.0.0.1:8080/</code>.</p>
<table><tr><th>step</th><th></th><th>time</th></tr>{step_rows}</table></section>
</body></html>"""
    path = out / "report.html"
    tmp = out / "report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    backend.close()
    return path
