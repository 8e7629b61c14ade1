"""Every exception the package raises on purpose, in one place.

Each message is one line that names the file, line, field or value at fault and says how to fix it.
The CLI prints ``str(error)`` and exits non-zero; the HTTP service maps them to 4xx answers.
"""
from __future__ import annotations


class FSNError(Exception):
    """Base class: a mistake the user can fix (bad input, bad file, bad request)."""

    exit_code = 2


class DatasetError(FSNError):
    """A dataset folder, CSV row, image or schema.json is invalid.

    ``problems`` holds every problem found (one line each); ``str()`` gives the first and a count.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        first = self.problems[0] if self.problems else "invalid dataset"
        more = len(self.problems) - 1
        super().__init__(first + (f" (and {more} more problem(s); fix them all and rerun)" if more else ""))


class SchemaError(FSNError):
    """An attribute, value or region is not in the schema (message lists the valid ones)."""


class UsageError(FSNError):
    """A command-line argument or API argument is out of range."""


class RequestError(SchemaError, UsageError):
    """A search request (``attr=value`` / ``region:attr=value``) is malformed, names something the schema lacks,
    or asks one attribute twice. ``entry`` is the entry at fault; ``valid`` the valid choices at fault
    ({"attributes": [...]}, {"values": [...]} or {"regions": [...]}; None for a value asked twice)."""

    def __init__(self, message: str, entry: str = "", valid: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.entry, self.valid = entry, valid


class CheckpointError(FSNError):
    """A training run / checkpoint is missing, corrupt, or was trained on another schema."""


class TrainingError(FSNError):
    """Training cannot go on (empty split, non-finite loss at a given stage and step)."""


class BundleError(FSNError):
    """A model bundle is missing a file, has a checksum mismatch or a newer format."""


class ParityError(FSNError):
    """An exported graph disagrees with the PyTorch reference beyond tolerance."""


class BackendUnavailable(FSNError):
    """A backend (TensorRT, CUDA provider, FP16) was asked for and cannot be had here."""


class EngineCacheError(FSNError):
    """A TensorRT engine was built for another GPU or TensorRT version."""


class ImageError(FSNError):
    """An image cannot be decoded, is empty, or is too large."""


class ImageTooLargeError(ImageError):
    """An image's header announces more pixels than allowed (refused before decoding; HTTP 413)."""


class GalleryError(FSNError):
    """A gallery is missing, corrupt, empty, or bound to another bundle."""


class CatalogueFileError(GalleryError):
    """A catalogue image the gallery points to is missing or now resolves outside its catalogue folder
    (a server-side fault: the HTTP service answers 500 and logs it)."""


def one_line(msg: str) -> str:
    """Collapse a message to one line (for CLI output and HTTP error bodies)."""
    return " ".join(str(msg).split())
