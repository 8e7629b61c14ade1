"""The image file behind a gallery item, checked before it is read or served: the record's path is where the
image resolved when it was indexed, so a file that now resolves elsewhere (a symlink swapped in, perhaps to a
file outside the catalogue) is refused, and a missing one is reported as the server-side fault it is."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fashionsearchnet.errors import CatalogueFileError


def catalogue_image(record: dict[str, Any]) -> Path:
    """The checked image path of a gallery record ``{"id", "path", ...}`` (CatalogueFileError otherwise)."""
    path, key = Path(record["path"]), record["id"]
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise CatalogueFileError(f"{path}: image of item {key!r} is missing on disk; restore the catalogue folder "
                                 "or remove the item (`fsn update GALLERY --remove ID`)") from None
    except (OSError, RuntimeError) as e:
        raise CatalogueFileError(f"{path}: image of item {key!r} cannot be resolved ({e}); fix the catalogue "
                                 "folder") from None
    if real != path.absolute():
        raise CatalogueFileError(f"{path}: image of item {key!r} now resolves to {real}, not the file that was "
                                 "indexed (a symlink was put in its place); refused: restore the file or re-index")
    if not real.is_file():
        raise CatalogueFileError(f"{path}: image of item {key!r} is not a file any more; restore the catalogue folder")
    return real
