"""Two checkouts of gantransfer, the same benchmark, interleaved: is the new code as fast as the old?

    python benchmarks/bench_ab.py --old /tmp/oldmain --new . [--rounds 3] [--threads 1]
        [--json PATH] -- bench_inference.py --size 128 --batch 1 ...

Each round runs ``benchmarks/<script>`` of both checkouts once, each in a fresh process with
``PYTHONPATH=<tree>:<tree>/plugins`` in front (so that tree's ``gantransfer`` and plugins are
imported, even where another tree is installed editable; checked by printing
``gantransfer.__file__`` first); the order alternates (old-new, new-old, ...) so a machine that
slows down during the session hurts both sides alike. Each side runs its own copy of the script
(a benchmark's imports follow its tree's API). The table compares the medians over rounds of each
row's timing: ``new / old`` near 1.00 means no change; the spread of the per-round ratios says
how much noise there is.

Understood outputs (``--json`` of the scripts): ``bench_inference.py`` rows keyed by backend and
batch (``median_ms``); ``bench_translate.py`` rows keyed by backend (``model_seconds``,
``end_to_end_seconds``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# script -> (the row fields that name a row, the timing fields to compare)
KNOWN: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bench_inference.py": (("backend", "batch"), ("median_ms",)),
    "bench_translate.py": (("backend",), ("model_seconds", "end_to_end_seconds")),
}


def _env(tree: Path, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tree), str(tree / "plugins"), *filter(None, [env.get("PYTHONPATH")])])
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        env["MKL_NUM_THREADS"] = str(threads)
    return env


def _check_tree(tree: Path, env: dict[str, str], cwd: str) -> str:
    """Which files a process started with ``env`` imports; raises unless they are ``tree``'s."""
    code = ("import gantransfer, gantransfer_cyclegan; "
            "print(gantransfer.__file__); print(gantransfer_cyclegan.__file__)")
    files = subprocess.run([sys.executable, "-c", code], env=env, check=True, text=True,
                           capture_output=True, cwd=cwd).stdout.split()
    for f in files:
        if not Path(f).resolve().is_relative_to(tree.resolve()):
            raise SystemExit(f"{f} is not inside {tree}: the tree would not be the one measured")
    return files[0]


def _rows(result: dict[str, Any], keys: tuple[str, ...], fields: tuple[str, ...]
          ) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for row in result["rows"]:
        if "skipped" in row:
            continue
        out["/".join(str(row[k]) for k in keys)] = {f: float(row[f]) for f in fields}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the old checkout's root")
    parser.add_argument("--new", type=Path, default=Path("."), help="the new checkout's root")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS/MKL_NUM_THREADS for both sides")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("bench", nargs=argparse.REMAINDER,
                        help="-- SCRIPT ARGS...: a script of benchmarks/ and its arguments")
    args = parser.parse_args()
    bench = [a for a in args.bench if a != "--"] if args.bench[:1] == ["--"] else args.bench
    if not bench or bench[0] not in KNOWN:
        parser.error(f"name a benchmark after --: one of {', '.join(KNOWN)}")
    script, bench_args = bench[0], bench[1:]
    keys, fields = KNOWN[script]
    sides = {"old": args.old.resolve(), "new": args.new.resolve()}
    envs = {side: _env(tree, args.threads) for side, tree in sides.items()}
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"old": [], "new": []}
    # The processes start in an empty folder: a checkout in the current folder would otherwise
    # come first on sys.path (before PYTHONPATH) for `python -c`.
    with tempfile.TemporaryDirectory(prefix="bench_ab_") as tmp:
        imported = {side: _check_tree(tree, envs[side], tmp) for side, tree in sides.items()}
        print(f"old: {imported['old']}\nnew: {imported['new']}")
        for r in range(args.rounds):
            for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
                out = Path(tmp) / f"{side}_{r}.json"
                cmd = [sys.executable, str(sides[side] / "benchmarks" / script), *bench_args,
                       "--json", str(out)]
                start = time.perf_counter()
                subprocess.run(cmd, env=envs[side], check=True, stdout=subprocess.DEVNULL, cwd=tmp)
                print(f"round {r + 1}/{args.rounds} {side}: {time.perf_counter() - start:.0f} s",
                      flush=True)
                runs[side].append(_rows(json.loads(out.read_text()), keys, fields))
    table = []
    for key in runs["old"][0]:
        for f in fields:
            old = [run[key][f] for run in runs["old"]]
            new = [run[key][f] for run in runs["new"]]
            per_round = [n / o for n, o in zip(new, old, strict=True)]
            table.append({"row": key, "field": f, "old": old, "new": new,
                          "old_median": statistics.median(old),
                          "new_median": statistics.median(new),
                          "new_over_old": statistics.median(new) / statistics.median(old),
                          "per_round_new_over_old": per_round})
    print(f"\n{script} {' '.join(bench_args)}: {args.rounds} rounds, medians")
    print(f"{'row':<22}{'field':<20}{'old':>10}{'new':>10}{'new/old':>9}  per round")
    for t in table:
        rounds = " ".join(f"{x:.2f}" for x in t["per_round_new_over_old"])
        print(f"{t['row']:<22}{t['field']:<20}{t['old_median']:>10.3f}{t['new_median']:>10.3f}"
              f"{t['new_over_old']:>9.3f}  {rounds}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "benchmark": script, "args": bench_args, "rounds": args.rounds,
            "threads": args.threads, "trees": {s: str(t) for s, t in sides.items()},
            "imported": imported, "rows": table}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
