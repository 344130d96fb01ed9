"""Start-up of the local stack against the size of its table: how long `make local` takes to be ready (every
service answers; its API's `/health` does only once the table and the endpoint do) on a table holding a simulated
day of N records, and what the table takes on disk.

    python -m loadtest.bench_local_start --model-dir artifacts/model [--records 0 10000 100000] [--starts 3]

Each size gets a state directory of its own under --work-dir, its day written afresh by
`python -m local_stack.simulated_day` (timed too), then the stack is started --starts times on it.
A start above TARGET_READY_S is reported as missed (docs/benchmarks.md#local-stack).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devkit.local_stack_state import DYNAMODB_DATABASE, delete_local_table
from loadtest.target_stack import REPO_ROOT, own_stack

TARGET_READY_S = 10.0
DAY_RECORDS = 100_000  # the size the target is for: a simulated day of steady traffic
LOADED = re.compile(r"(\d+) item\(s\) loaded in ([0-9.]+) s")  # local_stack/dynamodb.py's start-up line


def write_day(state_dir: Path, records: int) -> float:
    """A fresh table of `records` in `state_dir`; the generator's wall time."""
    state_dir.mkdir(parents=True, exist_ok=True)
    delete_local_table(state_dir)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "local_stack.simulated_day", "--records", str(records),
                    "--state-dir", str(state_dir)], cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_start(model_dir: Path, runtime: str, state_dir: Path) -> dict[str, float]:
    """One start to ready (the stack's state file, written once every service answered) and the table's own load."""
    started = time.perf_counter()
    with own_stack(model_dir, runtime, state_dir, keep_table=True):
        ready_s = time.perf_counter() - started
    loads = LOADED.findall((state_dir / "dynamodb.log").read_text())
    return {"ready_s": round(ready_s, 2), "table_load_s": float(loads[-1][1]) if loads else float("nan")}


def disk_mb(state_dir: Path) -> float:
    return sum(path.stat().st_size for path in state_dir.glob(f"{DYNAMODB_DATABASE}*")) / 1e6


def _seconds(starts: list[dict[str, float]], name: str) -> str:
    return ", ".join(f"{start[name]:.1f}" for start in starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "artifacts" / "model")
    parser.add_argument("--runtime", default="auto", help="as `make local` runs it")
    parser.add_argument("--records", type=int, nargs="+", default=[0, 10_000, DAY_RECORDS])
    parser.add_argument("--starts", type=int, default=3, help="starts per size")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "artifacts" / "bench-local-start")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "artifacts" / "bench-local-start.json")
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    for records in args.records:
        state_dir = args.work_dir / str(records)
        generated_s = write_day(state_dir, records)
        starts = [time_start(args.model_dir, args.runtime, state_dir) for _ in range(args.starts)]
        results.append({"records": records, "generator_s": round(generated_s, 1),
                        "disk_mb": round(disk_mb(state_dir), 1), "starts": starts,
                        "met": all(s["ready_s"] <= TARGET_READY_S for s in starts)})
        print(f"{records:>9,} records: ready in {_seconds(starts, 'ready_s')} s (table loaded in "
              f"{_seconds(starts, 'table_load_s')} s), {results[-1]['disk_mb']:.1f} MB on disk, written in "
              f"{generated_s:.1f} s", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"runtime": args.runtime, "model_dir": str(args.model_dir),
                                       "target_ready_s": TARGET_READY_S, "sizes": results}, indent=2) + "\n")
    for result in results:
        print(f"  {result['records']:,} records: ready <= {TARGET_READY_S:g} s: {'met' if result['met'] else 'MISSED'}")
    print(f"wrote {args.output}")  # a benchmark reports misses; it does not fail the run


if __name__ == "__main__":
    main()
