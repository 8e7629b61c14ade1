"""Waiting for a `fsn serve` started in a subprocess to answer /health with 200 (the tests that start one)."""
from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Poll ``url``/health until it answers 200; fail with the server's log if it exits or ``timeout_s`` passes."""
    t0 = time.time()
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"fsn serve exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.time() - t0 > timeout_s:
            raise AssertionError(f"fsn serve did not become ready in {timeout_s:g} s: {log.read_text()[-2000:]}")
        time.sleep(0.1)
