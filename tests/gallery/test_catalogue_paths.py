"""Issue 19 items 4, 5 and 7: catalogue layouts with symlinks (supported), paths outside the dataset folder,
looping symlinks, non-UTF-8 names (refused up front in one line), and `update --add` with an id the gallery
already holds for another image (refused, naming both; byte-identical images are skipped)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fashionsearchnet.app.cli import main
from fashionsearchnet.errors import FSNError
from fashionsearchnet.gallery.gallery import Gallery
from fashionsearchnet.gallery.indexer import catalogue_id, list_catalogue


def _img(tiny_synth: Path, i: int) -> bytes:
    return (tiny_synth / "images" / f"{i:06d}.jpg").read_bytes()


def _csv(folder: Path, cells: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{c},{'red' if i % 2 else 'blue'}" for i, c in enumerate(cells)]
    (folder / "attributes.csv").write_text("image,color\n" + "\n".join(rows) + "\n")
    return folder


@pytest.mark.parametrize("rel, ok", [("a/b.jpg", "a/b.jpg"), ("./a//b.jpg", "a/b.jpg"), ("a/../b.jpg", "b.jpg"),
                                     ("../b.jpg", None), ("/etc/b.jpg", None), ("a/\nb.jpg", None),
                                     ("a/\x1b[2Jb.jpg", None), ("a\udcffb.jpg", None)])
def test_catalogue_id(rel, ok):
    if ok is None:
        with pytest.raises(ValueError):
            catalogue_id(rel)
    else:
        assert catalogue_id(rel) == ok


def test_symlinked_images_folder_and_symlinked_image_are_indexed(tmp_path, tiny_synth):
    elsewhere = tmp_path / "big_disk" / "photos"
    elsewhere.mkdir(parents=True)
    for i in range(3):
        (elsewhere / f"{i}.jpg").write_bytes(_img(tiny_synth, i))
    (tmp_path / "lone.jpg").write_bytes(_img(tiny_synth, 5))
    data = _csv(tmp_path / "data", ["images/0.jpg", "images/1.jpg", "images/2.jpg", "extra/lone.jpg"])
    (data / "images").symlink_to(elsewhere, target_is_directory=True)
    (data / "extra").mkdir()
    (data / "extra" / "lone.jpg").symlink_to(tmp_path / "lone.jpg")
    recs = list_catalogue(data)
    assert [r["id"] for r in recs] == ["images/0.jpg", "images/1.jpg", "images/2.jpg", "extra/lone.jpg"]
    assert recs[0]["path"] == str(elsewhere / "0.jpg") and recs[3]["path"] == str(tmp_path / "lone.jpg")
    # the same in a plain folder of images: the symlinked sub-folder is followed (once: no loops)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "images").symlink_to(elsewhere, target_is_directory=True)
    (plain / "loop").symlink_to(plain, target_is_directory=True)
    assert [r["id"] for r in list_catalogue(plain)] == ["images/0.jpg", "images/1.jpg", "images/2.jpg"]


@pytest.mark.parametrize("cell, needle", [("../outside.jpg", "outside the catalogue folder"),
                                          ("ABS", "absolute path")])
def test_paths_outside_the_dataset_folder_are_refused_in_one_line(tmp_path, tiny_synth, cell, needle):
    (tmp_path / "outside.jpg").write_bytes(_img(tiny_synth, 1))
    data = _csv(tmp_path / "data", ["in.jpg", str(tmp_path / "outside.jpg") if cell == "ABS" else cell])
    (data / "in.jpg").write_bytes(_img(tiny_synth, 0))
    with pytest.raises(FSNError) as e:
        list_catalogue(data)
    msg = str(e.value)
    assert "\n" not in msg and "line 3" in msg and needle in msg and "copy the image" in msg, msg


def test_looping_symlink_and_non_utf8_name_are_one_line(tmp_path, tiny_synth):
    data = _csv(tmp_path / "data", ["ok.jpg", "loop.jpg"])
    (data / "ok.jpg").write_bytes(_img(tiny_synth, 0))
    os.symlink("loop.jpg", data / "loop.jpg")
    with pytest.raises(FSNError) as e:
        list_catalogue(data)
    assert "loop.jpg" in str(e.value) and "\n" not in str(e.value)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "ok.jpg").write_bytes(_img(tiny_synth, 0))
    os.symlink("loop2.jpg", plain / "loop2.jpg")
    with pytest.raises(FSNError, match="looping symlink"):
        list_catalogue(plain)
    (plain / "loop2.jpg").unlink()
    with open(os.path.join(os.fsencode(plain), b"caf\xe9.jpg"), "wb") as f:  # Latin-1 bytes, not UTF-8
        f.write(_img(tiny_synth, 1))
    with pytest.raises(FSNError, match="not UTF-8.*rename"):
        list_catalogue(plain)


@pytest.fixture()
def gallery(tmp_path, tmp_path_factory, tiny_synth):
    from tests.support.hardening_site import build_site

    return build_site(tmp_path / "site", tmp_path_factory, tiny_synth, n=4)


def test_update_add_refuses_an_existing_id_for_another_image(gallery, tmp_path, tiny_synth, capsys):
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(gallery["cat"] / "1.jpg", new / "1.jpg")  # the same image: skipped
    (new / "2.jpg").write_bytes(_img(tiny_synth, 30))  # another image under an existing id: refused
    (new / "9.jpg").write_bytes(_img(tiny_synth, 31))
    gen = Gallery.open(gallery["gal"]).generation
    capsys.readouterr()
    assert main(["update", str(gallery["gal"]), "--add", str(new)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "'2.jpg'" in err and str(new / "2.jpg") in err
    assert str(gallery["cat"] / "2.jpg") in err and "--remove 2.jpg" in err
    assert Gallery.open(gallery["gal"]).generation == gen  # nothing changed
    (new / "2.jpg").unlink()
    assert main(["update", str(gallery["gal"]), "--add", str(new)]) == 0
    g = Gallery.open(gallery["gal"])
    assert len(g) == 5 and g.records[g.row_of("1.jpg")]["path"] == str(gallery["cat"] / "1.jpg")
