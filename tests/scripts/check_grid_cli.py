#!/usr/bin/env python3
"""ctest for the ctxpool-grid command line (the library under it has its own tests in
tests/models/test_grid.cpp): --only trains a subset, --table-only trains nothing, a finished grid is
not trained again, and bad arguments end with a clear message and exit code 1.

    check_grid_cli.py PATH/TO/ctxpool-grid
"""
import json
import os
import subprocess
import sys
import tempfile

grid_cli = sys.argv[1]


def run(*args):
    return subprocess.run([grid_cli, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def expect(condition, what, output=""):
    if not condition:
        sys.exit(f"FAILED: {what}\n{output}")


def runs_in(runs_dir):
    """The finished-or-started run directories: config slug -> seeds."""
    if not os.path.isdir(runs_dir):
        return {}
    seeds = lambda config: sorted(s for s in os.listdir(os.path.join(runs_dir, config))
                                  if os.path.isdir(os.path.join(runs_dir, config, s)))  # (not the lock files)
    return {config: seeds(config) for config in sorted(os.listdir(runs_dir))
            if os.path.isdir(os.path.join(runs_dir, config))}


with tempfile.TemporaryDirectory(prefix="check_grid_cli.") as tmp:
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * i % 97}\n" for i in range(400)))
    grid = {"name": "tiny_cli",
            "base": {"model": {"type": "transformer_lm", "n_layers": 1, "d_model": 16, "n_heads": 2, "d_mlp": 32,
                               "context": 16},
                     "data": {"path": corpus, "train_fraction": 0.8, "validation_fraction": 0.1},
                     "optim": {"type": "adamw", "lr": 0.003},
                     "train": {"steps": 4, "batch_size": 4, "eval_interval": 2, "log_interval": 2,
                               "checkpoint_interval": 2, "max_eval_windows": 8}},
            "seeds": [1], "reference": {"deep": "plain L=1", "shallow": "plain L=1"},
            "configs": [{"name": "plain L=1", "overrides": {}},
                        {"name": "ContextPool L=1",
                         "overrides": {"model": {"context_pool": {"enabled": True, "window": 4, "s_max": 2}}}}]}
    grid_path = os.path.join(tmp, "grid.json")
    with open(grid_path, "w") as f:
        json.dump(grid, f)
    runs_dir, results_dir = os.path.join(tmp, "runs"), os.path.join(tmp, "results")
    dirs = ["--runs-dir", runs_dir, "--results-dir", results_dir]
    table_path = os.path.join(results_dir, "tiny_cli.json")

    result = run("--grid", grid_path, "--only", "Pool", *dirs)
    expect(result.returncode == 0, "--only trains the matching config", result.stdout)
    trained = runs_in(runs_dir)
    expect(list(trained) == ["ContextPool-L-1"] and trained["ContextPool-L-1"] == ["seed-1"],
           f"--only trained just ContextPool L=1, seed 1 (got {trained})", result.stdout)
    expect(os.path.exists(table_path) and os.path.exists(os.path.join(results_dir, "tiny_cli.md")),
           "the table is written (md and json)")

    result = run("--grid", grid_path, "--table-only", *dirs)
    expect(result.returncode == 0, "--table-only succeeds", result.stdout)
    expect(list(runs_in(runs_dir)) == ["ContextPool-L-1"], "--table-only trains nothing", result.stdout)
    table = open(os.path.join(results_dir, "tiny_cli.md")).read()
    expect("ContextPool L=1" in table and "plain L=1" in table, "the table lists every config of the grid", table)

    result = run("--grid", grid_path, *dirs)
    expect(result.returncode == 0, "the whole grid trains", result.stdout)
    expect(sorted(runs_in(runs_dir)) == ["ContextPool-L-1", "plain-L-1"], "both configs have a run", result.stdout)
    expect("2 runs finished" in result.stdout, "both runs are reported finished", result.stdout)
    metrics = os.path.join(runs_dir, "ContextPool-L-1", "seed-1", "metrics.jsonl")
    before = os.path.getmtime(metrics)
    result = run("--grid", grid_path, *dirs)
    expect(result.returncode == 0 and os.path.getmtime(metrics) == before, "a finished run is not trained again",
           result.stdout)

    for args, message in [(["--grid", grid_path, "--bogus"], "unknown argument '--bogus'"),
                          ([], "give --grid FILE"),
                          (["--grid", os.path.join(tmp, "missing.json")], "missing.json"),
                          (["--grid", grid_path, "--only"], "--only needs a value")]:
        result = run(*args)
        expect(result.returncode == 1 and message in result.stdout, f"{args} ends with exit 1 and '{message}'",
               result.stdout)
print("ctxpool-grid: all command-line checks passed")
