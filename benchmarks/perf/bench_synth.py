"""Time `fsn synth` (issue 2: 2,000 images in under a minute).

    .venv/bin/python -m benchmarks.perf.bench_synth --count 2000 --out benchmarks/perf/results/synth

Writes OUT.json and OUT.md with the command and the machine. Runs the CLI as a user would (a subprocess, start-up
included), ``--repeats`` times into fresh folders, and reports the median and the spread.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._report import command, machine, write_report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/perf/results/synth")
    args = ap.parse_args(argv)
    times = []
    for r in range(args.repeats):
        d = Path(tempfile.mkdtemp(prefix="fsn-synth-"))
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "fashionsearchnet.app.cli", "synth", str(d / "s"), "--count",
                        str(args.count), "--seed", "1", "--size", str(args.size)], check=True, capture_output=True)
        times.append(time.monotonic() - t0)
        shutil.rmtree(d)
    cmd, mach = command(), machine()
    res = {"command": cmd, "machine": mach, "count": args.count, "size": args.size, "seconds": times,
           "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
    md = [f"# fsn synth --count {args.count} --size {args.size}", "", f"Command: `{cmd}`", "", f"Machine: {mach}", "",
          "| median s | min s | max s | runs | target |", "|---|---|---|---|---|",
          f"| {res['median_s']:.1f} | {res['min_s']:.1f} | {res['max_s']:.1f} | {args.repeats} | < 60 s |", ""]
    write_report(args.out, res, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
