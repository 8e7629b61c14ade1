"""Small file helpers shared by every writer and reader: checksums and durable directory updates."""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path
from typing import Mapping


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file via a temporary file + fsync + rename: a crash leaves the old file or the new one.

    The temporary file's name is unique (process id + random suffix, created exclusively) so concurrent writers of
    one path never share it; the rename makes the last writer's complete file win. Permissions follow the umask."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a UTF-8 text file atomically (:func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(path: str | Path) -> None:
    """fsync a directory so that a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify_checksums(folder: str | Path, files: Mapping[str, str], error: type[Exception], listed_in: str,
                     missing_hint: str, fix: str) -> None:
    """Raise ``error`` for the first file of ``files`` (name -> sha256) that is missing or differs."""
    for name, expected in files.items():
        fp = Path(folder) / name
        if not fp.is_file():
            raise error(f"{fp}: missing {missing_hint} (listed in {listed_in}); {fix}")
        got = sha256_file(fp)
        if got != expected:
            raise error(f"{fp}: sha256 mismatch ({listed_in} {expected[:12]}..., file {got[:12]}...); "
                        f"the file was changed or truncated, {fix}")
