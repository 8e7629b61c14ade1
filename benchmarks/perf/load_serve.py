"""Bounded load test of ``fsn serve`` on loopback: uploaded-photo latency, then N concurrent clients for D seconds.

    .venv/bin/python -m benchmarks.perf.load_serve GALLERY [--clients 8] [--duration 60] [--uploads 200]
    .venv/bin/python -m benchmarks.perf.load_serve --url http://127.0.0.1:8080 --pid PID ...   (a running server)

Phase 1: ``POST /search`` with an uploaded 640x480 JPEG, one at a time -> p50 / p99 (targets 30 / 80 ms).
Phase 2: ``--clients`` keep-alive Python clients searching by gallery item with a changing manipulation, as
kiosk shoppers tapping items and colours do, for ``--duration`` s -> requests/s (target >= 50), errors
(target 0), p50 / p99, and the server's RSS at start and end (memory flat). Only 127.0.0.1 / localhost is
accepted. Writes ``OUT.json`` and ``OUT.md`` (command, machine, table).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np

from benchmarks._report import command, write_report

MIX = {"item": "item searches", "upload": "640x480 uploads", "both": "item searches + uploads"}
TARGETS = {"upload_p50_ms": 30.0, "upload_p99_ms": 80.0, "rps": 50.0, "errors": 0}


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    try:
        import onnxruntime as ort
        ortv = ort.__version__
    except ImportError:
        ortv = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "onnxruntime": ortv,
            "platform": platform.platform(), "load_avg_at_start": os.getloadavg()}


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def post(self, body: bytes, ctype: str) -> tuple[int, bytes]:
        try:
            self.conn.request("POST", "/search", body=body, headers={"content-type": ctype})
            r = self.conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            return -1, b""

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        return r.status, r.read()


def multipart(image: bytes, k: int = 12) -> tuple[bytes, str]:
    b = "loadbench0boundary"
    body = (f'--{b}\r\nContent-Disposition: form-data; name="k"\r\n\r\n{k}\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{b}--\r\n".encode()
    return body, f"multipart/form-data; boundary={b}"


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def start_server(gallery: str, threads: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "fashionsearchnet.app.cli", "serve", gallery, "--host", "127.0.0.1",
           "--port", str(port), "--backend", "ort", "--threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(host: str, port: int, proc: subprocess.Popen | None, timeout: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"fsn serve exited with {proc.returncode}")
        try:
            if Client(host, port).get("/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready in time")


def photo_640x480(host: str, port: int, item_id: str) -> bytes:
    status, data = Client(host, port).get("/items/" + item_id.replace("/", "%2F") + "/image")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if status == 200 else None
    if img is None:
        img = np.full((480, 640, 3), 200, np.uint8)
    img = cv2.resize(img, (640, 480), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gallery", nargs="?", help="gallery folder: start `fsn serve` on it (loopback, free port)")
    ap.add_argument("--url", help="an already running server on 127.0.0.1 (give --pid for its RSS)")
    ap.add_argument("--pid", type=int, help="pid of the --url server (for RSS)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of sustained load (default 60)")
    ap.add_argument("--uploads", type=int, default=200, help="sequential 640x480 JPEG uploads (default 200)")
    ap.add_argument("--threads", type=int, default=0, help="server ONNX Runtime threads (default 0 = all cores)")
    ap.add_argument("--mix", choices=("item", "upload", "both"), default="item",
                    help="sustained-load requests: item searches with manipulations (default), 640x480 uploads, or both")
    ap.add_argument("--out", default="benchmarks/perf/results/load_serve", help="output path without suffix")
    args = ap.parse_args(argv)
    if bool(args.gallery) == bool(args.url):
        ap.error("give a GALLERY folder or --url of a running server")
    proc = None
    if args.gallery:
        proc, url = start_server(args.gallery, args.threads)
        pid = proc.pid
    else:
        url, pid = args.url, args.pid
    u = urlparse(url)
    if u.hostname not in ("127.0.0.1", "localhost"):
        ap.error(f"--url {url}: this load test only runs against 127.0.0.1 / localhost")
    host, port = u.hostname, u.port or 80
    try:
        wait_ready(host, port, proc)
        c = Client(host, port)
        items = json.loads(c.get("/items?limit=200")[1])["items"]
        attrs = json.loads(c.get("/attributes")[1])
        ids = [it["id"] for it in items]
        sets_pool = [[]] + [[f"{a['name']}={v}"] for a in attrs["attributes"] for v in a["values"]] + \
            [[f"{r['name']}:{a}={v}"] for r in attrs["regions"] for a in r["attributes"] for v in r["values"][a]][:20]
        photo = photo_640x480(host, port, ids[0])
        body, ctype = multipart(photo)
        # phase 1: uploads, one at a time
        for _ in range(5):
            c.post(body, ctype)
        up_ms, up_err = [], 0
        for _ in range(args.uploads):
            t0 = time.perf_counter()
            status, _ = c.post(body, ctype)
            up_ms.append((time.perf_counter() - t0) * 1e3)
            up_err += status != 200
        # phase 2: sustained load
        rss_start = rss_mb(pid) if pid else None
        stop = time.perf_counter() + args.duration
        lat: list[list[float]] = [[] for _ in range(args.clients)]
        errs = [0] * args.clients
        rss_samples: list[float] = []

        def worker(i: int) -> None:
            rng = random.Random(i)
            cl = Client(host, port)
            n = 0
            while time.perf_counter() < stop:
                n += 1
                if args.mix == "upload" or (args.mix == "both" and n % 2):
                    b, ct = body, ctype
                else:
                    b = json.dumps({"item_id": rng.choice(ids), "sets": rng.choice(sets_pool), "k": 12}).encode()
                    ct = "application/json"
                t0 = time.perf_counter()
                status, _ = cl.post(b, ct)
                lat[i].append((time.perf_counter() - t0) * 1e3)
                errs[i] += status != 200

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
        t_start = time.perf_counter()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            if pid:
                rss_samples.append(rss_mb(pid))
            time.sleep(1.0)
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t_start
        rss_end = rss_mb(pid) if pid else None
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    all_lat = [x for ls in lat for x in ls]
    n = len(all_lat)
    res = {
        "command": command(),
        "machine": machine(), "url": url, "clients": args.clients, "mix": args.mix, "duration_s": round(elapsed, 1),
        "upload_640x480": {"n": len(up_ms), "p50_ms": round(pct(up_ms, 50), 2), "p99_ms": round(pct(up_ms, 99), 2),
                           "errors": up_err, "jpeg_bytes": len(photo)},
        "load": {"requests": n, "rps": round(n / elapsed, 1), "errors": int(sum(errs)),
                 "p50_ms": round(pct(all_lat, 50), 2), "p99_ms": round(pct(all_lat, 99), 2)},
        "rss_mb": {"start": rss_start and round(rss_start, 1), "end": rss_end and round(rss_end, 1),
                   "max": round(max(rss_samples), 1) if rss_samples else None},
        "targets": TARGETS,
    }
    ok = {"upload p50 <= 30 ms": res["upload_640x480"]["p50_ms"] <= 30,
          "upload p99 <= 80 ms": res["upload_640x480"]["p99_ms"] <= 80,
          ">= 50 req/s": res["load"]["rps"] >= 50, "zero errors": res["load"]["errors"] == 0 and up_err == 0}
    res["met"] = ok
    m = res["machine"]
    md = ["# fsn serve load test", "", f"Command: `{res['command']}`", "",
          f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime {m['onnxruntime']}, "
          f"load average at start {', '.join(f'{x:.1f}' for x in m['load_avg_at_start'])}", "",
          "| measure | value | target |", "|---|---|---|",
          f"| POST /search, uploaded 640x480 JPEG, p50 | {res['upload_640x480']['p50_ms']} ms | <= 30 ms |",
          f"| POST /search, uploaded 640x480 JPEG, p99 | {res['upload_640x480']['p99_ms']} ms | <= 80 ms |",
          f"| {args.clients} clients x {res['duration_s']} s, {MIX[args.mix]}: throughput | {res['load']['rps']} req/s | >= 50 |",
          f"| same: errors | {res['load']['errors']} of {n} | 0 |",
          f"| same: latency p50 / p99 | {res['load']['p50_ms']} / {res['load']['p99_ms']} ms | |",
          f"| server RSS start / end / max | {res['rss_mb']['start']} / {res['rss_mb']['end']} / {res['rss_mb']['max']} MB | flat |",
          "", "Met: " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in ok.items()), ""]
    write_report(args.out, res, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
