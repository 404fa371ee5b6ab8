#!/usr/bin/env python3
"""ctest for the ctxpool-grid command line (the library under it has its own tests in
tests/models/test_grid.cpp): --only trains a subset, --table-only trains nothing, a finished grid is
not trained again, and bad arguments end with a clear message and exit code 1.

    check_grid_cli.py PATH/TO/ctxpool-grid
"""
import os
import sys
import tempfile

from tiny_grid import expect, run, tiny_config, tiny_grid, write_json

grid_cli = sys.argv[1]


def runs_in(runs_dir):
    """The finished-or-started run directories: config slug -> seeds."""
    if not os.path.isdir(runs_dir):
        return {}
    seeds = lambda config: sorted(s for s in os.listdir(os.path.join(runs_dir, config))
                                  if os.path.isdir(os.path.join(runs_dir, config, s)))  # (not the lock files)
    return {config: seeds(config) for config in sorted(os.listdir(runs_dir))
            if os.path.isdir(os.path.join(runs_dir, config))}


with tempfile.TemporaryDirectory(prefix="check_grid_cli.") as tmp:
    train = {"steps": 4, "batch_size": 4, "eval_interval": 2, "log_interval": 2, "checkpoint_interval": 2,
             "max_eval_windows": 8}
    grid_path = write_json(os.path.join(tmp, "grid.json"), tiny_grid("tiny_cli", base=tiny_config(tmp, train)))
    runs_dir, results_dir = os.path.join(tmp, "runs"), os.path.join(tmp, "results")
    dirs = ["--runs-dir", runs_dir, "--results-dir", results_dir]
    table_path = os.path.join(results_dir, "tiny_cli.json")

    result = run(grid_cli, "--grid", grid_path, "--only", "Pool", *dirs)
    expect(result.returncode == 0, "--only trains the matching config", result.stdout)
    trained = runs_in(runs_dir)
    expect(list(trained) == ["ContextPool-L-1"] and trained["ContextPool-L-1"] == ["seed-1"],
           f"--only trained just ContextPool L=1, seed 1 (got {trained})", result.stdout)
    expect(os.path.exists(table_path) and os.path.exists(os.path.join(results_dir, "tiny_cli.md")),
           "the table is written (md and json)")

    result = run(grid_cli, "--grid", grid_path, "--table-only", *dirs)
    expect(result.returncode == 0, "--table-only succeeds", result.stdout)
    expect(list(runs_in(runs_dir)) == ["ContextPool-L-1"], "--table-only trains nothing", result.stdout)
    table = open(os.path.join(results_dir, "tiny_cli.md")).read()
    expect("ContextPool L=1" in table and "plain L=1" in table, "the table lists every config of the grid", table)

    result = run(grid_cli, "--grid", grid_path, *dirs)
    expect(result.returncode == 0, "the whole grid trains", result.stdout)
    expect(sorted(runs_in(runs_dir)) == ["ContextPool-L-1", "plain-L-1"], "both configs have a run", result.stdout)
    expect("2 runs finished" in result.stdout, "both runs are reported finished", result.stdout)
    metrics = os.path.join(runs_dir, "ContextPool-L-1", "seed-1", "metrics.jsonl")
    before = os.path.getmtime(metrics)
    result = run(grid_cli, "--grid", grid_path, *dirs)
    expect(result.returncode == 0 and os.path.getmtime(metrics) == before, "a finished run is not trained again",
           result.stdout)

    for args, message in [(["--grid", grid_path, "--bogus"], "unknown argument '--bogus'"),
                          ([], "give --grid FILE"),
                          (["--grid", os.path.join(tmp, "missing.json")], "missing.json"),
                          (["--grid", grid_path, "--only"], "--only needs a value")]:
        result = run(grid_cli, *args)
        expect(result.returncode == 1 and message in result.stdout, f"{args} ends with exit 1 and '{message}'",
               result.stdout)
print("ctxpool-grid: all command-line checks passed")
