"""Uploads under concurrency with and without micro-batching, same run, interleaved (issue 22).

    .venv/bin/python -m benchmarks.perf.bench_batching GALLERY [--bundle BUNDLE] [--clients 1,8,32] [--duration 20]
        [--repeats 2] [--config NAME=FLAGS ...] [--out benchmarks/perf/results/batching]

Starts one ``fsn serve`` per configuration (default ``off`` = ``--max-batch 1`` and ``on`` = the defaults), all
on loopback, then for each repeat, each client count and each configuration (order alternating between
repeats) runs ``clients`` keep-alive clients uploading a 640x480 JPEG for ``--duration`` s against that server
alone (the others idle). Reports req/s, p50, p99, errors, the server's RSS and its mean batch size, the spread
over repeats, and each configuration's ratio to the first. ``--config`` replaces the defaults, e.g.
``--config t1="--max-batch 1 --threads 1"``. Writes ``OUT.json`` and ``OUT.md`` with the command, the machine
and what else ran on it (load average and the busiest processes at the start).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks._report import command, write_report
from benchmarks.perf.load_serve import Client, machine, multipart, pct, photo_640x480, rss_mb, wait_ready

DEFAULT_CONFIGS = ("off=--max-batch 1", "on=")


def busiest(n: int = 6) -> list[str]:
    """The ``n`` busiest processes now (``ps``: pid, nice, %CPU, command), to say what else was running."""
    out = subprocess.run(["ps", "-eo", "pid,ni,pcpu,etime,comm", "--sort=-pcpu"], capture_output=True, text=True)
    return [ln.strip() for ln in out.stdout.splitlines()[1:n + 1]]


def start(gallery: str, bundle: str | None, flags: list[str]) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "fashionsearchnet.app.cli", "serve", gallery, "--host", "127.0.0.1",
           "--port", str(port), "--backend", "ort", *(["--bundle", bundle] if bundle else []), *flags]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def health(port: int) -> dict:
    return json.loads(Client("127.0.0.1", port).get("/health")[1])


def load(port: int, pid: int, body: bytes, ctype: str, clients: int, duration: float) -> dict:
    """``clients`` threads posting ``body`` for ``duration`` s: rps, p50/p99 ms, errors, RSS, mean batch."""
    b0 = health(port).get("batching", {})
    lat: list[list[float]] = [[] for _ in range(clients)]
    errs = [0] * clients
    conns = [Client("127.0.0.1", port) for _ in range(clients)]
    go = threading.Event()
    stop_at = [0.0]

    def worker(i: int) -> None:
        go.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            status, _ = conns[i].post(body, ctype)
            lat[i].append((time.perf_counter() - t0) * 1e3)
            errs[i] += status != 200

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    rss = [rss_mb(pid)]
    cpu0 = cpu_s(pid)
    t_start = time.perf_counter()
    stop_at[0] = t_start + duration
    go.set()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        rss.append(rss_mb(pid))
    elapsed = time.perf_counter() - t_start
    cpu = cpu_s(pid) - cpu0
    b1 = health(port).get("batching", {})
    all_lat = [x for ls in lat for x in ls]
    batches = b1.get("batches", 0) - b0.get("batches", 0)
    return {"requests": len(all_lat), "rps": len(all_lat) / elapsed, "p50_ms": pct(all_lat, 50),
            "p99_ms": pct(all_lat, 99), "errors": int(sum(errs)), "rss_start_mb": rss[0], "rss_max_mb": max(rss),
            "server_cpu_ms_per_request": cpu * 1e3 / max(len(all_lat), 1),
            "mean_batch": (b1.get("items", 0) - b0.get("items", 0)) / batches if batches else None,
            "load1": os.getloadavg()[0]}


def summary(runs: list[dict]) -> dict:
    """Median and range over repeats of each measure."""
    out = {}
    for key in ("rps", "p50_ms", "p99_ms", "rss_max_mb", "mean_batch", "server_cpu_ms_per_request"):
        xs = [r[key] for r in runs if r[key] is not None]
        if xs:
            out[key] = {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
    out["errors"] = sum(r["errors"] for r in runs)
    out["requests"] = sum(r["requests"] for r in runs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gallery")
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the gallery's own)")
    ap.add_argument("--clients", default="1,8,32", help="client counts (default 1,8,32)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per measurement (default 20)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds over every client count and configuration")
    ap.add_argument("--config", action="append", default=None, metavar="NAME=FLAGS",
                    help=f"a server configuration (fsn serve flags); default {' and '.join(DEFAULT_CONFIGS)}")
    ap.add_argument("--out", default="benchmarks/perf/results/batching")
    args = ap.parse_args(argv)
    configs = {}
    for spec in args.config or DEFAULT_CONFIGS:
        name, _, flags = spec.partition("=")
        configs[name] = shlex.split(flags)
    counts = [int(x) for x in args.clients.split(",")]
    before = {"load_avg": os.getloadavg(), "busiest_processes": busiest()}
    servers = {name: start(args.gallery, args.bundle, flags) for name, flags in configs.items()}
    runs: dict[str, dict[int, list[dict]]] = {n: {c: [] for c in counts} for n in configs}
    niceness: dict[str, int] = {}
    try:
        for name, (proc, port) in servers.items():
            wait_ready("127.0.0.1", port, proc)
        port0 = next(iter(servers.values()))[1]
        items = json.loads(Client("127.0.0.1", port0).get("/items?limit=1")[1])["items"]
        photo = photo_640x480("127.0.0.1", port0, items[0]["id"])
        body, ctype = multipart(photo)
        for name, (proc, port) in servers.items():  # warm every server the same way
            c = Client("127.0.0.1", port)
            for _ in range(20):
                assert c.post(body, ctype)[0] == 200, f"{name}: upload failed"
        for rep in range(args.repeats):
            order = list(servers) if rep % 2 == 0 else list(servers)[::-1]
            for n in counts:
                for name in order:
                    proc, port = servers[name]
                    r = load(port, proc.pid, body, ctype, n, args.duration)
                    r["repeat"] = rep
                    runs[name][n].append(r)
                    print(json.dumps({"config": name, "clients": n, **{k: (round(v, 2) if isinstance(v, float) else v)
                                                                       for k, v in r.items()}}), flush=True)
        niceness = {name: os.getpriority(os.PRIO_PROCESS, proc.pid) for name, (proc, _) in servers.items()}
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
    base = next(iter(configs))
    table = {name: {n: summary(rs) for n, rs in by.items()} for name, by in runs.items()}
    ratios = {name: {n: {"rps": table[name][n]["rps"]["median"] / table[base][n]["rps"]["median"],
                         "p50": table[name][n]["p50_ms"]["median"] / table[base][n]["p50_ms"]["median"],
                         "p99": table[name][n]["p99_ms"]["median"] / table[base][n]["p99_ms"]["median"]}
                     for n in counts} for name in configs}
    after = {"load_avg": os.getloadavg(), "busiest_processes": busiest()}
    res = {"command": command(), "machine": machine(), "gallery": args.gallery, "jpeg_bytes": len(photo),
           "configs": {n: " ".join(f) or "(defaults)" for n, f in configs.items()}, "clients": counts,
           "duration_s": args.duration, "repeats": args.repeats, "before": before, "after": after, "server_nice_at_end": niceness,
           "runs": runs, "summary": table, "ratio_to_" + base: ratios}
    m = res["machine"]
    md = ["# fsn serve: 640x480 uploads with and without micro-batching (same run, interleaved)", "",
          f"Command: `{res['command']}`", "",
          f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime {m['onnxruntime']}. Load "
          f"average at the start {', '.join(f'{x:.1f}' for x in before['load_avg'])}, at the end "
          f"{', '.join(f'{x:.1f}' for x in after['load_avg'])}; busiest processes at the start (pid, nice, %CPU, "
          f"elapsed, command): {'; '.join(before['busiest_processes'])}; the servers' nice value at the end: "
          f"{niceness}.", "",
          "Configurations: " + "; ".join(f"`{n}`: {res['configs'][n]}" for n in configs) + ". "
          f"{args.repeats} repeats x {args.duration:g} s per cell; the load generator (Python threads, keep-alive) "
          "runs on the same 2 cores. Median over repeats, [min-max] in brackets.", "",
          "| clients | config | req/s | p50 ms | p99 ms | server CPU ms / request | mean batch | errors | "
          f"server RSS max MB | req/s vs `{base}` | p99 vs `{base}` |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda s, k, d=1: (f"{s[k]['median']:.{d}f} [{s[k]['min']:.{d}f}-{s[k]['max']:.{d}f}]"  # noqa: E731
                             if k in s else "-")
    for n in counts:
        for name in configs:
            s = table[name][n]
            md.append(f"| {n} | `{name}` | {fmt(s, 'rps')} | {fmt(s, 'p50_ms')} | {fmt(s, 'p99_ms')} | "
                      f"{fmt(s, 'server_cpu_ms_per_request')} | {fmt(s, 'mean_batch', 2)} | {s['errors']} of {s['requests']} | {fmt(s, 'rss_max_mb', 0)} | "
                      f"{ratios[name][n]['rps']:.2f}x | {ratios[name][n]['p99']:.2f}x |")
    md.append("")
    write_report(args.out, res, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
