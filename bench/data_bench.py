"""Dataset loader benchmark: rows/s and peak RSS of ``load_dataset`` on generated bars CSVs.

    .venv/bin/python bench/data_bench.py                    # 200k and 1M rows
    .venv/bin/python bench/data_bench.py --rows 200k,1m,10m # pick sizes (k/m suffixes)
    .venv/bin/python bench/data_bench.py --repeat 5 --json  # best of 5, one JSON line per size

Each size is loaded in a fresh subprocess so its peak RSS (``ru_maxrss``) is the loader's own;
``load alone`` is the peak minus the RSS right before the first load (interpreter, numpy, treasure). Files are
generated once (seeded, canonical ``bars_to_csv`` rows with 4-decimal prices) and cached under
``--dir`` (default: the system temp directory), so repeated runs time only the load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

T0 = 1_767_225_600_000
STEP = 60_000
_POOL = 100_000  # distinct OHLCV tails, cycled (the walk itself is not what is measured)


def parse_size(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def generate(path: Path, rows: int) -> None:
    """A valid ``rows``-bar CSV: seeded synth OHLCV tails, strictly increasing one-minute t_ms."""
    from treasure.data import bars_to_csv, generate_bars

    pool = generate_bars(n_bars=min(rows, _POOL), seed=7, interval_ms=STEP, gaps=0, duplicates=0)
    tails = [line.split(b",", 1)[1] for line in bars_to_csv(pool).rstrip(b"\n").split(b"\n")[1:]]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(b"t_ms,open,high,low,close,volume\n")
        block = 1_000_000
        for start in range(0, rows, block):
            stop = min(rows, start + block)
            fh.write(b"".join(b"%d,%s\n" % (T0 + i * STEP, tails[i % len(tails)])
                              for i in range(start, stop)))
    os.replace(tmp, path)


def _current_rss_kb() -> int:
    """Resident set size right now (Linux /proc; falls back to the peak so far elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _child(path: str, repeat: int) -> None:
    import resource
    import time

    from treasure.data import load_dataset

    before = _current_rss_kb()
    best = float("inf")
    n = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        ds = load_dataset(path)
        best = min(best, time.perf_counter() - t0)
        n = len(ds)
        del ds
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": n, "seconds": best, "rss_before_kb": before, "peak_kb": peak}))


def measure(path: Path, repeat: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", str(path), "--repeat", str(repeat)],
                         check=True, capture_output=True, text=True, cwd=str(_ROOT))
    got = json.loads(out.stdout.strip().splitlines()[-1])
    size = path.stat().st_size
    peak = got["peak_kb"] * 1024
    load = (got["peak_kb"] - got["rss_before_kb"]) * 1024
    return {
        "rows": got["rows"],
        "file_mb": round(size / 1e6, 1),
        "seconds": round(got["seconds"], 3),
        "rows_per_s": round(got["rows"] / got["seconds"]),
        "peak_rss_mb": round(peak / 1e6, 1),
        "peak_over_file": round(peak / size, 2),
        "load_rss_over_file": round(load / size, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="200k,1m", help="comma-separated sizes, e.g. 200k,1m,10m")
    ap.add_argument("--repeat", type=int, default=3, help="loads per size; the best time is reported")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where generated CSVs are cached")
    ap.add_argument("--json", action="store_true", help="one JSON object per size")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child, args.repeat)
        return 0
    for size in (parse_size(s) for s in args.rows.split(",") if s.strip()):
        path = Path(args.dir) / f"treasure_data_bench_{size}.csv"
        if not path.exists():
            generate(path, size)
        result = measure(path, args.repeat)
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(f"{result['rows']:>11,} rows  {result['file_mb']:>7.1f} MB  {result['seconds']:>7.3f} s  "
                  f"{result['rows_per_s']:>11,} rows/s  peak RSS {result['peak_rss_mb']:>7.1f} MB "
                  f"({result['peak_over_file']:.2f}x file; load alone {result['load_rss_over_file']:.2f}x)",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
