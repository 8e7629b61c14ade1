"""``--backend openvino`` without the openvino package (the kiosk base install): a one-line error naming the
[openvino] extra, from the API and the CLI; ``auto`` skips it with that reason. Runs whether or not it is installed
(the import is made to fail)."""
from __future__ import annotations

import logging
import sys

import cv2
import numpy as np
import pytest

from fashionsearchnet.app.cli import main as fsn
from fashionsearchnet.errors import BackendUnavailable
from fashionsearchnet.runtime.backends import select_backend
from fashionsearchnet.runtime.backends import openvino as OV
from fashionsearchnet.runtime.bundle import Bundle

from tests.support.make_tiny_bundle import asset_copy


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return Bundle.open(asset_copy(tmp_path_factory))


@pytest.fixture
def no_openvino(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError


def test_api_error_names_the_extra_and_auto_skips_it(bundle, no_openvino, caplog):
    with pytest.raises(BackendUnavailable, match=r"openvino package is not installed .*\[openvino\] extra"):
        select_backend("openvino", bundle)
    assert "[openvino] extra" in OV.auto_skip_reason(bundle, None, None)
    with caplog.at_level(logging.INFO, logger="fashionsearchnet.runtime.backends"):
        be = select_backend("auto", bundle)
    be.close()
    assert be.name == "ort-cpu"
    assert any("openvino: backend openvino: the openvino package is not installed" in r.getMessage()
               for r in caplog.records)


def test_cli_error_is_one_line_naming_the_extra(bundle, no_openvino, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "a.jpg"), np.full((64, 64, 3), 128, np.uint8))
    rc = fsn(["index", str(bundle.path), str(imgs), "--out", str(tmp_path / "g"), "--backend", "openvino"])
    err = [ln for ln in capsys.readouterr().err.splitlines()
           if ln.strip() and ln.split()[0] not in ("INFO", "WARNING", "DEBUG")]
    assert rc != 0 and len(err) == 1, err
    assert err[0].startswith("fsn index: error:") and "pip install 'fashionsearchnet-edge[openvino]'" in err[0]
