#!/usr/bin/env python3
"""ctest for scripts/time_grid.py: a two-config grid of tiny models on a tiny corpus, timed for two
rounds, then the errors a user meets (a failing config, --only that matches nothing).

    check_time_grid.py PATH/TO/time_grid.py PATH/TO/ctxpool-train
"""
import json
import os
import subprocess
import sys
import tempfile

script, train = sys.argv[1], sys.argv[2]


def run(*args):
    return subprocess.run([sys.executable, script, *args, "--train", train], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def expect(condition, what, output=""):
    if not condition:
        sys.exit(f"FAILED: {what}\n{output}")


with tempfile.TemporaryDirectory(prefix="check_time_grid.") as tmp:
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * i % 97}\n" for i in range(400)))
    base = {"model": {"type": "transformer_lm", "n_layers": 1, "d_model": 16, "n_heads": 2, "d_mlp": 32,
                      "context": 16},
            "data": {"path": corpus, "train_fraction": 0.8, "validation_fraction": 0.1},
            "optim": {"type": "adamw", "lr": 0.003},
            "train": {"steps": 1000, "batch_size": 4, "eval_interval": 1, "log_interval": 1,
                      "run_dir": os.path.join(tmp, "unused")}}
    with open(os.path.join(tmp, "base.json"), "w") as f:
        json.dump(base, f)
    grid = {"name": "tiny", "base_config": "base.json", "base_overrides": {"train": {"steps": 500}},
            "seeds": [1], "reference": {"deep": "plain L=1"},
            "configs": [{"name": "plain L=1", "overrides": {}},
                        {"name": "ContextPool L=1",
                         "overrides": {"model": {"context_pool": {"enabled": True, "window": 4, "s_max": 2}}}}]}
    grid_path = os.path.join(tmp, "grid.json")
    with open(grid_path, "w") as f:
        json.dump(grid, f)

    prefix = os.path.join(tmp, "out", "tiny_timing")
    result = run(grid_path, "--rounds", "2", "--steps", "5", "--skip", "2", "--out", prefix)
    expect(result.returncode == 0, "a two-config grid times cleanly", result.stdout)
    record = json.load(open(prefix + ".json"))
    expect([r["name"] for r in record["rows"]] == ["plain L=1", "ContextPool L=1"], "one row per config, in grid order")
    for row in record["rows"]:
        expect(len(row["rounds"]) == 2 and all(ms > 0 for ms in row["rounds"]), f"two positive rounds for {row['name']}")
        expect(min(row["rounds"]) <= row["ms"] <= max(row["rounds"]), f"the median lies within the rounds ({row})")
    table = open(prefix + ".md").read()
    expect("| plain L=1 |" in table and table.rstrip().splitlines()[-2].endswith("| 1.00 |"),
           "the reference row's ratio is 1.00", table)
    expect(not [n for n in os.listdir(os.path.dirname(prefix)) if ".tmp." in n], "no temporary file is left behind")

    # The evaluation is off: 5 steps with eval_interval 1 in the base config would otherwise evaluate.
    expect("val_bpc" not in result.stdout, "no evaluation during or after the timed steps", result.stdout)

    result = run(grid_path, "--rounds", "1", "--steps", "3", "--skip", "1", "--only", "Pool", "--out", prefix)
    expect(result.returncode == 0, "--only times the matching config", result.stdout)
    expect([r["name"] for r in json.load(open(prefix + ".json"))["rows"]] == ["ContextPool L=1"], "--only filters")

    result = run(grid_path, "--only", "no such config", "--out", prefix)
    expect(result.returncode != 0 and "no config" in result.stdout, "--only matching nothing is an error", result.stdout)

    grid["configs"].append({"name": "broken", "overrides": {"model": {"n_layers": -1}}})
    with open(grid_path, "w") as f:
        json.dump(grid, f)
    result = run(grid_path, "--rounds", "1", "--steps", "3", "--skip", "1", "--out", prefix)
    expect(result.returncode != 0 and "'broken' failed" in result.stdout and "n_layers" in result.stdout,
           "a failing config stops the script, naming the config and ctxpool-train's error", result.stdout)
print("time_grid.py: all checks passed")
