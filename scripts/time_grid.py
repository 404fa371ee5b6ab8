#!/usr/bin/env python3
"""Step time of every config of a grid, measured again on one build and one machine.

A grid's own ms/step column comes from runs that may have trained on different builds and under
different loads (two processes sharing the cores, a build running beside them). This script trains
each config for a few steps, one at a time, in rounds whose order rotates (so a slow spell of the
machine does not fall on one config only), and reports per config the median ms/step of each round,
the median over rounds and the ratio to the grid's "deep" reference.

    python3 scripts/time_grid.py examples/grids/contextpool_lm.json
    python3 scripts/time_grid.py GRID --rounds 3 --steps 40 --skip 10 --threads 1 --only L=2

Run it on a quiet machine (no build, no grid training). It writes docs/results/<grid>_timing.md
and .json (or --out PREFIX.md/.json), each atomically. The runs go to a temporary directory.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def flatten(overrides, prefix=""):
    """{"model": {"n_layers": 2}} -> [("model.n_layers", 2)]: the leaves, as ctxpool-train's --set takes them."""
    leaves = []
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            leaves += flatten(value, path + ".")
        else:
            leaves.append((path, value))
    return leaves


def set_flags(overrides):
    return [arg for key, value in flatten(overrides) for arg in ("--set", f"{key}={json.dumps(value)}")]


def median_ms(metrics_path, skip):
    """The median ms_per_step of the steps after the first `skip` (allocation and cache warm-up)."""
    ms = []
    with open(metrics_path) as f:
        for line in f:
            record = json.loads(line)
            if record.get("step", 0) > skip and "ms_per_step" in record:
                ms.append(record["ms_per_step"])
    if not ms:
        sys.exit(f"time_grid: {metrics_path} has no step after step {skip} (is --steps > --skip?)")
    return statistics.median(ms)


def time_config(args, grid, grid_dir, config, run_dir):
    """Trains one config for args.steps steps and returns its median ms/step."""
    command = [args.train, "--config", os.path.join(grid_dir, grid["base_config"]), "--run-dir", run_dir,
               "--overwrite"]
    command += set_flags(grid.get("base_overrides", {})) + set_flags(config.get("overrides", {}))
    # Last, so that they win over the grid's overrides: a short run with no evaluation. --stop-after
    # ends it before train.steps, so that the end-of-run evaluation does not run either.
    command += ["--stop-after", str(args.steps), "--eval-interval", "0", "--log-interval", str(args.steps),
                "--threads", str(args.threads), "--seed", "1337",
                "--set", f"train.checkpoint_interval={args.steps}"]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.exit(f"time_grid: '{config['name']}' failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n"
                 f"command: {' '.join(command)}")
    return median_ms(os.path.join(run_dir, "metrics.jsonl"), args.skip)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def write_atomically(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.tmp.{os.getpid()}"
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def markdown(grid, args, rows, reference, started, machine):
    lines = [f"# Step time of the {grid['name']} grid, measured again",
             "",
             f"Made by `python3 scripts/time_grid.py {args.grid_arg}"
             + (f" --rounds {args.rounds} --steps {args.steps} --skip {args.skip} --threads {args.threads}")
             + (f" --only {args.only}" if args.only else "") + "`"
             + f" on {started} ({machine}). Each config trains {args.steps} steps (seed 1337, the grid's"
             f" base config and overrides, {args.threads} thread{'s' if args.threads != 1 else ''}); a"
             f" round's figure is the median ms/step of steps {args.skip + 1}-{args.steps}; the rounds run"
             f" the configs one at a time, in rotated order. Ratio: the median over rounds divided by"
             f" '{reference}'s.",
             "",
             "| config | ms/step (median of rounds) | rounds | spread of rounds | vs " + reference + " |",
             "|---|---:|---|---:|---:|"]
    reference_ms = next((r["ms"] for r in rows if r["name"] == reference), None)
    for r in rows:
        spread = (max(r["rounds"]) - min(r["rounds"])) / r["ms"]
        ratio = f"{r['ms'] / reference_ms:.2f}" if reference_ms else "-"
        rounds = " / ".join(f"{ms:.0f}" for ms in r["rounds"])
        lines.append(f"| {r['name']} | {r['ms']:.0f} | {rounds} | {100 * spread:.0f}% | {ratio} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("grid", help="a grid file, e.g. examples/grids/contextpool_lm.json")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="steps per run")
    parser.add_argument("--skip", type=int, default=10, help="steps left out of the median (warm-up)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="", help="only the configs whose name contains this text")
    parser.add_argument("--train", default="build/examples/ctxpool-train")
    parser.add_argument("--out", default="", help="output prefix (default docs/results/<grid name>_timing)")
    args = parser.parse_args()
    args.grid_arg = args.grid
    if args.rounds < 1 or args.steps <= args.skip or args.skip < 0 or args.threads < 1:
        sys.exit("time_grid: needs --rounds >= 1, --steps > --skip >= 0 and --threads >= 1")
    if not os.access(args.train, os.X_OK):
        sys.exit(f"time_grid: {args.train} is not an executable (build first: bash scripts/setup.sh)")
    with open(args.grid) as f:
        grid = json.load(f)
    grid_dir = os.path.dirname(os.path.abspath(args.grid))
    if "base_config" not in grid:
        sys.exit(f"time_grid: {args.grid} has no 'base_config' (a grid with an inline 'base' is not supported)")
    configs = [c for c in grid["configs"] if args.only in c["name"]]
    if not configs:
        sys.exit(f"time_grid: no config of {args.grid} has '{args.only}' in its name")
    reference = grid.get("reference", {}).get("deep", configs[0]["name"])
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = f"{cpu_model()}, {os.cpu_count()} CPUs, {os.uname().machine}"

    per_config = {c["name"]: [] for c in configs}
    with tempfile.TemporaryDirectory(prefix="time_grid.") as scratch:
        for round_index in range(args.rounds):
            order = configs[round_index % len(configs):] + configs[:round_index % len(configs)]
            for config in order:
                ms = time_config(args, grid, grid_dir, config, os.path.join(scratch, "run"))
                per_config[config["name"]].append(ms)
                print(f"round {round_index + 1}/{args.rounds}  {config['name']:<45} {ms:8.1f} ms/step", flush=True)

    rows = [{"name": c["name"], "rounds": per_config[c["name"]], "ms": statistics.median(per_config[c["name"]])}
            for c in configs]
    prefix = args.out or os.path.join("docs", "results", f"{grid['name']}_timing")
    record = {"grid": grid["name"], "date": started, "machine": machine, "rounds": args.rounds, "steps": args.steps,
              "skip": args.skip, "threads": args.threads, "reference": reference, "rows": rows}
    write_atomically(prefix + ".json", json.dumps(record, indent=1) + "\n")
    text = markdown(grid, args, rows, reference, started, machine)
    write_atomically(prefix + ".md", text)
    print("\n" + text + f"\nwritten: {prefix}.md, {prefix}.json")


if __name__ == "__main__":
    main()
