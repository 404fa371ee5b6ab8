"""What the command-line checks in tests/scripts/ share: a tiny corpus, a tiny LM config, a grid of
a plain and a ContextPool config over it, and the check helpers."""
import json
import os
import subprocess
import sys


def expect(condition, what, output=""):
    if not condition:
        sys.exit(f"FAILED: {what}\n{output}")


def run(*command):
    """Runs a command; its exit code and its stdout and stderr together."""
    return subprocess.run(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f)
    return path


def tiny_config(folder, train):
    """A 1-layer, d 16 character LM on a 20 kB corpus written into `folder`; `train` is its train section."""
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * i % 97}\n" for i in range(400)))
    return {"model": {"type": "transformer_lm", "n_layers": 1, "d_model": 16, "n_heads": 2, "d_mlp": 32, "context": 16},
            "data": {"path": corpus, "train_fraction": 0.8, "validation_fraction": 0.1},
            "optim": {"type": "adamw", "lr": 0.003},
            "train": train}


def tiny_grid(name, **base):
    """A grid of "plain L=1" (the reference) and "ContextPool L=1", one seed; `base` gives its base
    ("base": a config, or "base_config": a file, with "base_overrides")."""
    return {"name": name, **base, "seeds": [1], "reference": {"deep": "plain L=1", "shallow": "plain L=1"},
            "configs": [{"name": "plain L=1", "overrides": {}},
                        {"name": "ContextPool L=1",
                         "overrides": {"model": {"context_pool": {"enabled": True, "window": 4, "s_max": 2}}}}]}
