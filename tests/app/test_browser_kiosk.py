"""The kiosk page in a real headless Chromium (Playwright driving Debian's /usr/bin/chromium) against
``fsn serve`` on a tiny trained gallery: pick a catalogue item, change its colour, the results turn that colour.

Set-up: when /usr/bin/chromium is missing the test tries ``apt-get install -y chromium`` and skips with the
reason if that fails; without Playwright, or without chromium and root + apt-get, the ``browser`` marker skips it
(tests/conftest.py). ``playwright install`` is never run (no browser download).
Set FSN_SCREENSHOT_TO=docs/kiosk.png to also copy the screenshot there (for the README).
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    try:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, capture_output=True, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (subprocess.SubprocessError, OSError) as e:
        pytest.skip(f"could not install chromium with apt-get: {e}")
    if not CHROMIUM.exists():
        pytest.skip("apt-get install chromium did not provide /usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api

    _ensure_chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def _api(url: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _labels(data: Path) -> dict[str, dict[str, str]]:
    with open(data / "attributes.csv", newline="") as f:
        return {r["image"]: r for r in csv.DictReader(f)}


def _shown(page) -> list[str]:
    return page.eval_on_selector_all("#grid [data-testid=card]", "els => els.map(e => e.dataset.id)")


def _open_kiosk(browser, url: str, width: int, height: int) -> tuple[Any, list[str]]:
    """A touch page on the kiosk, ready; the list collects page errors and failed requests as they happen."""
    page = browser.new_page(viewport={"width": width, "height": height}, has_touch=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=20000)
    return page, errors


def test_pick_item_change_colour_results_turn_that_colour(browser, kiosk_server, kiosk_demo, tmp_path):
    res, _ = kiosk_demo
    labels = _labels(res.out / "data")
    page, errors = _open_kiosk(browser, kiosk_server, 1280, 860)
    cards = page.locator("#grid [data-testid=card]")
    assert cards.count() == 24  # first catalogue page
    # query: the first catalogue item; target colour: a colour it does not have (by the catalogue's labels)
    qid = cards.nth(0).get_attribute("data-id")
    own = labels[qid]["color"]
    target = next(c for c in ("red", "green", "blue") if c != own)
    cards.nth(0).tap()
    page.wait_for_selector("#grid[data-mode='results']", timeout=20000)
    before = _shown(page)
    assert qid not in before and len(before) == 12
    assert page.locator("#query-img").get_attribute("src").endswith("/image")
    # the page shows exactly what the service answers for the same request
    assert before == [r["id"] for r in _api(kiosk_server, "/search", {"item_id": qid, "k": 12})["results"]]

    page.locator(f"#attr-controls .attr-row[data-attr='color'] .chip[data-value='{target}']").tap()
    page.wait_for_selector(f"#grid[data-mode='results'][data-sets='color={target}']", timeout=20000)
    after = _shown(page)
    want = _api(kiosk_server, "/search", {"item_id": qid, "sets": [f"color={target}"], "k": 12})
    assert after == [r["id"] for r in want["results"]]
    frac_before = np.mean([labels[i]["color"] == target for i in before])
    frac_after = np.mean([labels[i]["color"] == target for i in after])
    # 16 colours with close shades (green/olive/teal): the target must be the commonest colour shown, not all
    counts = Counter(labels[i]["color"] for i in after)
    # (commonest: no other colour shown more often; a tie at the top is decided by the pytest temp folder's number)
    assert counts[target] == max(counts.values()) and frac_after >= 0.3 and frac_after > frac_before, (target, counts)
    assert page.locator("#changes .tag").inner_text() == f"color={target}"
    assert page.locator(f".chip.chosen[data-value='{target}']").count() == 1
    # the query's attention boxes are painted on the canvas over the photo
    painted = page.evaluate("""() => { const c = document.getElementById('query-boxes');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
    assert painted > 100
    shot = tmp_path / "kiosk.png"
    page.screenshot(path=str(shot), full_page=False)
    assert cv2.imread(str(shot)).shape[:2] == (860, 1280)
    if os.environ.get("FSN_SCREENSHOT_TO"):
        shutil.copy(shot, os.environ["FSN_SCREENSHOT_TO"])
    assert not errors, errors
    page.close()


def test_photo_upload_and_catalogue_paging(browser, kiosk_server, kiosk_demo, tmp_path):
    res, _ = kiosk_demo
    page, _ = _open_kiosk(browser, kiosk_server, 800, 1200)
    first = _shown(page)
    page.locator("#next").tap()
    page.wait_for_function("document.querySelector('#page-info').textContent.startsWith('page 2')")
    assert _shown(page)[0] == _api(kiosk_server, "/items?offset=24&limit=1")["items"][0]["id"] != first[0]
    # a 640x480 camera-style photo of a catalogue garment, picked with the file input (capture=environment)
    src = cv2.imread(str(res.out / "data" / first[3]))
    photo = cv2.copyMakeBorder(cv2.resize(src, (360, 360)), 60, 60, 140, 140, cv2.BORDER_CONSTANT, value=(235, 235, 235))
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), photo)
    assert page.locator("#photo").get_attribute("capture") == "environment"
    page.set_input_files("#photo", str(path))
    page.wait_for_selector("#grid[data-mode='results']", timeout=20000)
    assert len(_shown(page)) == 12
    assert page.locator("#attr-controls .chip.detected").count() == 5  # one detected value per attribute
    # a region change (sleeve colour) from the region tabs
    page.locator("#region-tabs .tab[data-region='sleeve']").tap()
    page.locator("#region-controls .attr-row[data-attr='sleeve:color'] .chip[data-value='red']").tap()
    page.wait_for_selector("#grid[data-sets='sleeve:color=red']", timeout=20000)
    assert len(_shown(page)) == 12
    page.close()


def test_describe_it_without_a_photo(browser, kiosk_server, kiosk_demo):
    """Issue 24: "Describe it" - pick values (no photo), the grid shows what POST /search answers for those sets
    alone, and the described colour is over-represented against the catalogue; touch-sized controls."""
    res, _ = kiosk_demo
    labels = _labels(res.out / "data")
    page, errors = _open_kiosk(browser, kiosk_server, 1080, 1600)
    assert page.locator("#describe").bounding_box()["height"] >= 56  # touch-sized (before a tap: :active shrinks it)
    page.locator("#describe").tap()
    page.wait_for_selector("#grid[data-mode='describe']", timeout=20000)
    assert _shown(page) == [] and page.locator("#query-figure").is_hidden()
    assert page.locator("#grid [data-testid=describe-hint]").is_visible()
    assert page.locator("#attr-controls .chip.detected").count() == 0  # nothing detected: no photo
    assert min(c["height"] for c in page.locator("#attr-controls .chip").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().toJSON())")) >= 48
    # a colour (the tiny 64 px demo model tells colours apart, categories hardly): green is 7% of the catalogue
    counts = Counter(r["color"] for r in labels.values())
    page.locator("#attr-controls .attr-row[data-attr='color'] .chip[data-value='green']").tap()
    page.wait_for_selector("#grid[data-mode='results'][data-sets='color=green']", timeout=20000)
    shown = _shown(page)
    want = _api(kiosk_server, "/search", {"sets": ["color=green"], "k": 12})
    assert shown == [r["id"] for r in want["results"]] and len(shown) == 12
    base = counts["green"] / sum(counts.values())
    frac = np.mean([labels[i]["color"] == "green" for i in shown])
    assert frac >= 0.25 and frac > 2 * base, (frac, base)
    # a region value as well: both are sent, in the order picked
    page.locator("#region-tabs .tab[data-region='sleeve']").tap()
    page.locator("#region-controls .attr-row[data-attr='sleeve:color'] .chip[data-value='red']").tap()
    page.wait_for_selector("#grid[data-sets='color=green,sleeve:color=red']", timeout=20000)
    want = _api(kiosk_server, "/search", {"sets": ["color=green", "sleeve:color=red"], "k": 12})
    assert _shown(page) == [r["id"] for r in want["results"]]
    assert page.locator("#results-title").inner_text() == "Matching your description"
    # "Start again" drops every value: back to the prompt, no request that the service would refuse
    page.locator("#reset").tap()
    page.wait_for_selector("#grid[data-mode='describe']", timeout=20000)
    assert _shown(page) == [] and page.locator("#toast").is_hidden()
    assert not errors, errors
    page.close()
