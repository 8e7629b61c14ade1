"""What this machine offers the GPU backends, read without a GPU library where possible (torch-free).

* :func:`driver_info`: the NVIDIA driver version (``/proc/driver/nvidia/version``) and the newest CUDA version the
  driver supports (``cuDriverGetVersion`` from ``libcuda.so.1`` through ctypes: no cuda-python needed).
* :func:`cuda_runtime_version`: the CUDA runtime cuda-python was built for (``cudaRuntimeGetVersion``).
* :func:`describe`: both in one line, appended to every GPU "backend unavailable" message, including the
  mismatch the extras guard against: a CUDA 13 runtime (``[gpu-cu13]``) on a driver that supports only CUDA 12.
* :func:`onnxruntime_distributions`: the installed packages that provide the ``onnxruntime`` module (package
  metadata). ``onnxruntime`` and ``onnxruntime-gpu`` both install it; with both, whichever was installed last
  wins and the CUDA provider may be reported missing although installed. :func:`onnxruntime_conflict` says how to
  fix it.
"""
from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable

PROC_VERSION = Path("/proc/driver/nvidia/version")
LIBCUDA = ("libcuda.so.1", "libcuda.so", "nvcuda.dll")
# distributions that install the ``onnxruntime`` import package (normalised names)
ORT_PROVIDERS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml",
                 "onnxruntime-training", "ort-nightly", "ort-nightly-gpu")
GPU_EXTRA = {12: "gpu-cu12", 13: "gpu-cu13"}


@dataclass(frozen=True)
class DriverInfo:
    """``version`` like "580.65.06" (None when unknown), ``cuda`` like (13, 0) = newest CUDA the driver runs."""

    version: str | None
    cuda: tuple[int, int] | None

    @property
    def found(self) -> bool:
        return self.version is not None or self.cuda is not None


def _cuda_pair(v: int) -> tuple[int, int]:
    """CUDA's integer version (12040) -> (12, 4)."""
    return int(v) // 1000, (int(v) % 1000) // 10


def driver_version(proc: Path = PROC_VERSION) -> str | None:
    """The kernel module's version from ``/proc/driver/nvidia/version`` (x86 and recent Jetson), else None."""
    try:
        text = proc.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r"Kernel Module(?: for [\w-]+)?\s+(\d+\.\d+(?:\.\d+)?)", text) or re.search(r"\b(\d{3}\.\d+(?:\.\d+)?)\b", text)
    return m.group(1) if m else None


def driver_cuda_version(libs: Iterable[str] = LIBCUDA) -> tuple[int, int] | None:
    """The newest CUDA version the installed driver supports (``cuDriverGetVersion``), None without a driver."""
    for name in libs:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        v = ctypes.c_int(0)
        try:
            if lib.cuDriverGetVersion(ctypes.byref(v)) == 0 and v.value > 0:
                return _cuda_pair(v.value)
        except AttributeError:
            continue
    return None


def driver_info(proc: Path = PROC_VERSION, libs: Iterable[str] = LIBCUDA) -> DriverInfo:
    return DriverInfo(driver_version(proc), driver_cuda_version(libs))


def cuda_runtime_version() -> tuple[int, int] | None:
    """The CUDA runtime version of cuda-python's bindings, None when cuda-python is missing or fails."""
    try:
        from cuda.bindings import runtime as cudart  # noqa: PLC0415
    except ImportError:
        try:
            from cuda import cudart  # type: ignore  # noqa: PLC0415
        except ImportError:
            return None
    try:
        err, v = cudart.cudaRuntimeGetVersion()
    except Exception:  # noqa: BLE001 - a broken install: report "unknown", the caller's message says what failed
        return None
    return _cuda_pair(v) if int(err) == 0 else None


def describe(driver: DriverInfo | None = None, runtime: tuple[int, int] | None | str = "probe") -> str:
    """One line: driver version, the CUDA it supports, cuda-python's CUDA runtime, and a mismatch hint."""
    d = driver if driver is not None else driver_info()
    rt = cuda_runtime_version() if runtime == "probe" else runtime
    if not d.found:
        parts = ["no NVIDIA driver found (no /proc/driver/nvidia/version, libcuda.so.1 not loadable)"]
    else:
        parts = [f"NVIDIA driver {d.version or 'version unknown'}"
                 + (f" (supports CUDA up to {d.cuda[0]}.{d.cuda[1]})" if d.cuda else "")]
    parts.append(f"CUDA runtime {rt[0]}.{rt[1]} (cuda-python)" if rt else "CUDA runtime: cuda-python not installed")
    line = "; ".join(parts)
    if d.cuda and rt and rt[0] > d.cuda[0]:
        fix = GPU_EXTRA.get(d.cuda[0])
        line += (f"; the CUDA {rt[0]} packages need a driver that supports CUDA {rt[0]}: upgrade the driver"
                 + (f" or install the [{fix}] extra instead" if fix else ""))
    return line


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def onnxruntime_distributions(dists: Callable[[], Iterable] = metadata.distributions) -> dict[str, str]:
    """{normalised distribution name: version} of every installed package that provides ``onnxruntime``."""
    out = {}
    for d in dists():
        name = _norm(d.metadata.get("Name", "") or "")
        if name in ORT_PROVIDERS:
            out[name] = d.version
    return out


def onnxruntime_conflict(found: dict[str, str] | None = None) -> str | None:
    """A one-line problem and fix when more than one onnxruntime package is installed, else None."""
    found = onnxruntime_distributions() if found is None else found
    if len(found) < 2:
        return None
    names = sorted(found)
    listed = " and ".join(f"{n} {found[n]}" for n in names)
    keep = "onnxruntime-gpu" if "onnxruntime-gpu" in found else names[-1]
    again = "'onnxruntime-gpu[cuda,cudnn]==" + found[keep] + "'" if keep == "onnxruntime-gpu" else f"{keep}=={found[keep]}"
    return (f"{listed} are installed together; they share the 'onnxruntime' module, so whichever was installed last "
            f"wins and GPU providers can go missing; fix: pip uninstall -y {' '.join(names)} && pip install {again}")
