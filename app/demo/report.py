"""The demo report: what the example searches found, as data (``report.json``) and as a self-contained page
(``report.html``, pictures inline) rendered from ``report.html.j2`` with autoescaping.

:func:`report_data` gathers every fact and number the page shows; :func:`render` turns it (plus the pictures)
into HTML; nothing is computed in the template. Query pictures are drawn by
:func:`fashionsearchnet.gallery.explain.draw_query`, the same drawing as ``fsn search --explain``.
"""
from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from fashionsearchnet.errors import FSNError
from fashionsearchnet.fileio import atomic_write_text

TEMPLATE = "report.html.j2"
QUERY_PX = 256
THUMB_PX = 128


def _hex(rgb: Sequence[int]) -> str:
    return "#%02x%02x%02x" % tuple(int(c) for c in rgb)


def report_data(ds: Any, examples: Sequence[Any], cfg: Mapping[str, Any], gallery: str | Path,
                service: Mapping[str, Any], steps: Mapping[str, Mapping[str, Any]],
                model: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything the report says (JSON-able): the configuration, the gallery, which model answered (``model``:
    ``{"reference": False}`` = the one the demo trained), and per example its query, request, predictions, boxes,
    ranked results with their truth and mark, counts and timing."""
    from fashionsearchnet.gallery.explain import box_color

    out = []
    for ex in examples:
        info = ex.answer.query
        results = []
        for i, r in enumerate(ex.answer.results, 1):
            row = ex.rows.get(r["id"])
            truth = ", ".join(f"{a.name}={a.values[v]}" for a, v in zip(ds.schema.attributes, ds.labels[row])
                              if v >= 0) if row is not None else ""
            results.append({"rank": i, "id": r["id"], "name": r["id"].split("/")[-1],
                            "distance": float(r["distance"]), "mark": ex.hit(row) if row is not None else "",
                            "truth": truth})
        out.append({
            "title": ex.title, "explain": ex.explain, "query": ex.query, "sets": list(ex.sets),
            "command": shlex.join(["fsn", "search", str(gallery), ex.query,
                                   *[w for s in ex.sets for w in ("--set", s)], "-k", str(cfg["k"])]),
            "predicted": info.predicted,
            "boxes": [dict(b.to_dict(), color=_hex(box_color(j))) for j, b in enumerate(info.boxes)],
            "results": results,
            "full": sum(r["mark"] == "full" for r in results),
            "part": sum(r["mark"] in ("full", "part") for r in results),
            "method": ex.answer.method, "exact": bool(ex.answer.exact), "candidates": int(ex.answer.candidates),
            "took_ms": round(ex.took_ms, 1),
        })
    return {"config": json.loads(json.dumps(dict(cfg))), "gallery": str(gallery), "items": service["items"],
            "model": json.loads(json.dumps(dict(model or {"reference": False}))),
            "backend": service["backend"], "examples": out,
            "steps": {k: {"reused": bool(v.get("reused")), "seconds": float(v.get("seconds", 0.0))}
                      for k, v in steps.items()}}


# ---- pictures ---------------------------------------------------------------------------------------
def data_url(rgb: np.ndarray) -> str:
    """An RGB picture as an inline JPEG ``data:`` URL."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise FSNError("report: cannot encode a picture as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()


def query_picture(rgb: np.ndarray, example: Mapping[str, Any]) -> str:
    """The query scaled to :data:`QUERY_PX` with its attention boxes: attributes 2 px, regions 1 px, each in the
    colour its legend entry names."""
    from fashionsearchnet.gallery.explain import draw_query

    h, w = rgb.shape[:2]
    boxes = example["boxes"]
    frac = np.array([b["box"] for b in boxes], np.float64).reshape(-1, 4) / np.array([w, h, w, h], np.float64)
    img = draw_query(rgb, frac, [b["name"] for b in boxes], size=QUERY_PX,
                     widths=[2 if b["kind"] == "attribute" else 1 for b in boxes], captions=False, stagger=1)
    return data_url(img)


def pictures(ds: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """Inline pictures for :func:`render`: ``{"queries": [url per example], "results": {item id: url}}``."""
    from fashionsearchnet.data.preprocess import read_image
    from fashionsearchnet.gallery.explain import fit

    queries, thumbs = [], {}
    for ex in data["examples"]:
        qpath = Path(ex["query"]) if Path(ex["query"]).is_absolute() else ds.root / ex["query"]
        queries.append(query_picture(read_image(qpath), ex))
        for r in ex["results"]:
            if r["id"] not in thumbs:
                thumbs[r["id"]] = data_url(fit(read_image(ds.root / r["id"]), THUMB_PX))
    return {"queries": queries, "results": thumbs}


# ---- page -------------------------------------------------------------------------------------------
def render(data: Mapping[str, Any], pics: Mapping[str, Any]) -> str:
    """The report page from :data:`TEMPLATE`; every value from ``data`` is HTML-escaped."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["g3"] = lambda x: f"{x:.3g}"
    env.filters["pct"] = lambda x: f"{x:.0%}"
    return env.get_template(TEMPLATE).render(r=data, pics=pics)


def write_report(out: Path, data: Mapping[str, Any], ds: Any) -> Path:
    """Write ``out/report.json`` and ``out/report.html`` (atomically); returns the page's path."""
    atomic_write_text(out / "report.json", json.dumps(data, indent=1))
    path = out / "report.html"
    atomic_write_text(path, render(data, pictures(ds, data)))
    return path
