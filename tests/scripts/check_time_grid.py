#!/usr/bin/env python3
"""ctest for scripts/time_grid.py: a two-config grid of tiny models on a tiny corpus, timed for two
rounds, then the errors a user meets (a failing config, --only that matches nothing).

    check_time_grid.py PATH/TO/time_grid.py PATH/TO/ctxpool-train
"""
import json
import os
import sys
import tempfile

from tiny_grid import expect, run, tiny_config, tiny_grid, write_json

script, train = sys.argv[1], sys.argv[2]


def time_grid(*args):
    return run(sys.executable, script, *args, "--train", train)


with tempfile.TemporaryDirectory(prefix="check_time_grid.") as tmp:
    # eval_interval 1: the script must switch the evaluation off.
    base = tiny_config(tmp, {"steps": 1000, "batch_size": 4, "eval_interval": 1, "log_interval": 1,
                             "run_dir": os.path.join(tmp, "unused")})
    write_json(os.path.join(tmp, "base.json"), base)
    grid = tiny_grid("tiny", base_config="base.json", base_overrides={"train": {"steps": 500}})
    grid_path = write_json(os.path.join(tmp, "grid.json"), grid)

    prefix = os.path.join(tmp, "out", "tiny_timing")
    result = time_grid(grid_path, "--rounds", "2", "--steps", "5", "--skip", "2", "--out", prefix)
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

    result = time_grid(grid_path, "--rounds", "1", "--steps", "3", "--skip", "1", "--only", "Pool", "--out", prefix)
    expect(result.returncode == 0, "--only times the matching config", result.stdout)
    expect([r["name"] for r in json.load(open(prefix + ".json"))["rows"]] == ["ContextPool L=1"], "--only filters")

    result = time_grid(grid_path, "--only", "no such config", "--out", prefix)
    expect(result.returncode != 0 and "no config" in result.stdout, "--only matching nothing is an error", result.stdout)

    grid["configs"].append({"name": "broken", "overrides": {"model": {"n_layers": -1}}})
    write_json(grid_path, grid)
    result = time_grid(grid_path, "--rounds", "1", "--steps", "3", "--skip", "1", "--out", prefix)
    expect(result.returncode != 0 and "'broken' failed" in result.stdout and "n_layers" in result.stdout,
           "a failing config stops the script, naming the config and ctxpool-train's error", result.stdout)
print("time_grid.py: all checks passed")
