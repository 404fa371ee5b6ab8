"""PyTorch golden values for every op in ops/ops.h, edge values included (tests/golden/ops.safetensors).

Used by make_golden.py, which writes the file; tests/ops/test_golden_ops.cpp reads it. A case is an
op name (a key of TORCH_OPS here and of the C++ test's table), named inputs, JSON arguments, the
inputs to differentiate, and flags:
  transposed  inputs stored as s and passed as s.transpose(-2, -1) (non-contiguous; the gradient is
              the stored tensor's)
  f32         also checked in float32 (off where float32's range changes the answer)
  error       PyTorch refuses the call; ctxpool must throw a ctxpool::Error
Stored per case i: case<i>.in.<name>, case<i>.out<k>, case<i>.gy<k> (the upstream gradient of every
floating output that requires grad) and case<i>.grad.<name>; metadata case<i> (JSON) and
case<i>.description.
"""
import json
import math

import torch
import torch.nn.functional as F

INF, NAN = math.inf, math.nan
DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64, "bool": torch.bool}


def _sdpa(q, k, v, causal, scale, window=None):
    """softmax(scale q k^T + mask) v, written out: torch 1.13 has no fused attention to compare with."""
    scale = scale if scale > 0 else 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    t, s = scores.shape[-2:]
    i = torch.arange(t).unsqueeze(1)
    j = torch.arange(s).unsqueeze(0)
    mask = torch.zeros(t, s, dtype=torch.bool)
    if causal:
        mask |= j > i
    if window is not None:
        mask |= (j > i) | (j <= i - window)
    return torch.matmul(torch.softmax(scores.masked_fill(mask, -INF), -1), v)


def _slice(x, dim, start, end, step):
    index = [slice(None)] * x.dim()
    index[dim] = slice(start, end, step)
    return x[tuple(index)]


def _adamw(p, g, m, v, a):
    p = p.detach().clone()
    opt = torch.optim.AdamW([p], lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"],
                            weight_decay=a["weight_decay"])
    opt.state[p] = {"step": torch.tensor(float(a["step"] - 1)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
    p.grad = g.clone()
    opt.step()
    return [p, opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]]


def _sgd(p, g, buf, a):
    p = p.detach().clone()
    opt = torch.optim.SGD([p], lr=a["lr"], momentum=a["momentum"], weight_decay=a["weight_decay"],
                          nesterov=a["nesterov"])
    if a["momentum"] != 0 and not a["first"]:
        opt.state[p] = {"momentum_buffer": buf.clone()}
    p.grad = g.clone()
    opt.step()
    return [p] + ([opt.state[p]["momentum_buffer"]] if a["momentum"] != 0 else [])


def _copy(dst, src):
    out = dst.clone()
    out.copy_(src)
    return out


# op name -> f(inputs (list, in the case's order), args (dict)) -> a tensor or a list of tensors.
TORCH_OPS = {
    "add": lambda t, a: torch.add(*t), "sub": lambda t, a: torch.sub(*t), "mul": lambda t, a: torch.mul(*t),
    "div": lambda t, a: torch.div(*t), "pow": lambda t, a: torch.pow(*t),
    "pow_scalar": lambda t, a: torch.pow(t[0], a["exponent"]),
    "maximum": lambda t, a: torch.maximum(*t), "minimum": lambda t, a: torch.minimum(*t),
    "neg": lambda t, a: torch.neg(t[0]), "exp": lambda t, a: torch.exp(t[0]), "log": lambda t, a: torch.log(t[0]),
    "sqrt": lambda t, a: torch.sqrt(t[0]), "rsqrt": lambda t, a: torch.rsqrt(t[0]),
    "tanh": lambda t, a: torch.tanh(t[0]), "sigmoid": lambda t, a: torch.sigmoid(t[0]),
    "relu": lambda t, a: torch.relu(t[0]), "abs": lambda t, a: torch.abs(t[0]), "sign": lambda t, a: torch.sign(t[0]),
    "gelu": lambda t, a: F.gelu(t[0], approximate=a["approximate"]),
    "clamp": lambda t, a: torch.clamp(t[0], a["min"], a["max"]),
    "scalar_like": lambda t, a: torch.tensor(a["value"], dtype=t[0].dtype),
    "eq": lambda t, a: torch.eq(*t), "ne": lambda t, a: torch.ne(*t), "lt": lambda t, a: torch.lt(*t),
    "le": lambda t, a: torch.le(*t), "gt": lambda t, a: torch.gt(*t), "ge": lambda t, a: torch.ge(*t),
    "logical_and": lambda t, a: torch.logical_and(*t), "logical_not": lambda t, a: torch.logical_not(t[0]),
    "where": lambda t, a: torch.where(*t),
    "masked_fill": lambda t, a: t[0].masked_fill(t[1], a["value"]),
    "sum": lambda t, a: torch.sum(t[0]), "mean": lambda t, a: torch.mean(t[0]),
    "sum_dims": lambda t, a: torch.sum(t[0], a["dims"], keepdim=a["keepdim"]),
    "mean_dims": lambda t, a: torch.mean(t[0], a["dims"], keepdim=a["keepdim"]),
    "var": lambda t, a: torch.var(t[0], a["dims"], unbiased=a["correction"] == 1, keepdim=a["keepdim"]),
    "max": lambda t, a: torch.max(t[0]), "min": lambda t, a: torch.min(t[0]),
    "max_dim": lambda t, a: list(torch.max(t[0], a["dim"], keepdim=a["keepdim"])),
    "min_dim": lambda t, a: list(torch.min(t[0], a["dim"], keepdim=a["keepdim"])),
    "argmax": lambda t, a: torch.argmax(t[0], a["dim"], keepdim=a["keepdim"]),
    "sum_to_size": lambda t, a: t[0].sum_to_size(a["sizes"]),
    "matmul": lambda t, a: torch.matmul(*t),
    "view": lambda t, a: t[0].view(a["sizes"]), "reshape": lambda t, a: t[0].reshape(a["sizes"]),
    "permute": lambda t, a: t[0].permute(a["dims"]), "transpose": lambda t, a: t[0].transpose(a["dim0"], a["dim1"]),
    "narrow": lambda t, a: t[0].narrow(a["dim"], a["start"], a["length"]),
    "slice": lambda t, a: _slice(t[0], a["dim"], a["start"], a["end"], a["step"]),
    "select": lambda t, a: t[0].select(a["dim"], a["index"]), "expand": lambda t, a: t[0].expand(a["sizes"]),
    "squeeze": lambda t, a: t[0].squeeze(a["dim"]), "squeeze_all": lambda t, a: t[0].squeeze(),
    "unsqueeze": lambda t, a: t[0].unsqueeze(a["dim"]),
    "flatten": lambda t, a: t[0].flatten(a["start_dim"], a["end_dim"]),
    "contiguous": lambda t, a: t[0].contiguous(), "clone": lambda t, a: t[0].clone(),
    "cat": lambda t, a: torch.cat(t, a["dim"]), "stack": lambda t, a: torch.stack(t, a["dim"]),
    "split": lambda t, a: list(torch.split(t[0], a["split_size"], a["dim"])),
    "split_sizes": lambda t, a: list(torch.split(t[0], a["sizes"], a["dim"])),
    "chunk": lambda t, a: list(torch.chunk(t[0], a["chunks"], a["dim"])),
    "to_dtype": lambda t, a: t[0].to(DTYPES[a["dtype"]]), "to_device": lambda t, a: t[0].to("cpu"),
    "embedding": lambda t, a: F.embedding(t[1], t[0]),
    "gather": lambda t, a: torch.gather(t[0], a["dim"], t[1]),
    "scatter_add": lambda t, a: torch.scatter_add(t[0], a["dim"], t[1], t[2]),
    "one_hot": lambda t, a: F.one_hot(t[0], a["num_classes"]).to(DTYPES[a["dtype"]]),
    "softmax": lambda t, a: torch.softmax(t[0], a["dim"]), "log_softmax": lambda t, a: torch.log_softmax(t[0], a["dim"]),
    "layer_norm": lambda t, a: F.layer_norm(t[0], a["normalized_shape"], *(t[1:] + [None] * (3 - len(t))),
                                            eps=a["eps"]),
    "dropout": lambda t, a: F.dropout(t[0], a["p"], a["training"]),
    "scaled_dot_product_attention": lambda t, a: _sdpa(*t, a["causal"], a["scale"]),
    "local_attention": lambda t, a: _sdpa(*t, False, a["scale"], window=a["window"]),
    "im2col2d": lambda t, a: F.unfold(t[0], a["kernel_size"], a["dilation"], a["padding"], a["stride"]),
    "col2im2d": lambda t, a: F.fold(t[0], a["output_size"], a["kernel_size"], a["dilation"], a["padding"],
                                    a["stride"]),
    "cross_entropy": lambda t, a: F.cross_entropy(t[0], t[1], ignore_index=a["ignore_index"],
                                                  reduction=a["reduction"]),
    "adamw_update_": lambda t, a: _adamw(*t, a), "sgd_update_": lambda t, a: _sgd(*t, a),
    "fill_": lambda t, a: t[0].clone().fill_(a["value"]), "copy_": lambda t, a: _copy(*t),
}


def _f64(*values):
    return torch.tensor(values, dtype=torch.float64)


def _i64(*values):
    return torch.tensor(values, dtype=torch.int64)


def _bool(*values):
    return torch.tensor(values, dtype=torch.bool)


def _randn(*shape):
    """_randn(2, 3) or _randn(()) (0-d) or _randn(torch.Size)."""
    if len(shape) == 1 and isinstance(shape[0], tuple):
        shape = shape[0]
    return torch.randn(tuple(shape), dtype=torch.float64)


def _evaluate(op, inputs, args, grad, transposed, error):
    leaves = {n: t.clone().requires_grad_(n in grad) for n, t in inputs.items()}
    passed = [leaves[n].transpose(-2, -1) if n in transposed else leaves[n] for n in inputs]
    try:
        out = TORCH_OPS[op](passed, args)
    except (RuntimeError, IndexError, ValueError) as e:
        if error:
            return {}, str(e).splitlines()[0]
        raise
    assert not error, f"{op}: PyTorch accepted a case marked error"
    outs = out if isinstance(out, list) else [out]
    tensors = {f"out{k}": o.detach().clone() for k, o in enumerate(outs)}
    with_grad = [k for k, o in enumerate(outs) if o.requires_grad]
    tensors.update({f"grad.{n}": torch.zeros_like(leaves[n]) for n in grad})  # when nothing reaches them
    if with_grad:
        gys = [_randn(tuple(outs[k].shape)) for k in with_grad]
        tensors.update({f"gy{k}": gy for k, gy in zip(with_grad, gys)})
        got = torch.autograd.grad([outs[k] for k in with_grad], [leaves[n] for n in grad], gys, allow_unused=True)
        for n, g in zip(grad, got):
            tensors[f"grad.{n}"] = torch.zeros_like(leaves[n]) if g is None else g
    return tensors, None


def _json_number(v):
    """JSON has no NaN or infinity: they are written as the strings "nan", "inf" and "-inf"."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


class Cases:
    """Collects cases; build() evaluates them in PyTorch."""

    def __init__(self):
        self.cases = []

    def add(self, op, description, inputs, args=None, grad=None, f32=True, transposed=(), error=False):
        if grad is None:  # by default every floating input
            grad = [n for n, t in inputs.items() if t.is_floating_point()]
        self.cases.append((op, description, inputs, args or {}, list(grad), f32, list(transposed), error))

    def build(self):
        """-> (tensors {name: tensor}, metadata {str: str})"""
        tensors, metadata = {}, {"cases": str(len(self.cases))}
        for i, (op, description, inputs, args, grad, f32, transposed, error) in enumerate(self.cases):
            case_tensors, message = _evaluate(op, inputs, args, grad, transposed, error)
            case_tensors.update({f"in.{n}": t for n, t in inputs.items()})
            tensors.update({f"case{i}.{n}": t for n, t in case_tensors.items()})
            meta = {"op": op, "args": {k: _json_number(v) for k, v in args.items()}, "inputs": list(inputs), "grad": grad, "transposed": transposed,
                    "f32": f32, "error": error}
            if message:
                meta["pytorch_error"] = message
            metadata[f"case{i}"] = json.dumps(meta, sort_keys=True, allow_nan=False)
            metadata[f"case{i}.description"] = f"{op}: {description}"
        return tensors, metadata


def all_cases():
    from golden_op_cases import add_all  # the case list, kept apart from the machinery
    torch.manual_seed(7)
    cases = Cases()
    add_all(cases, _f64, _i64, _bool, _randn)
    return cases
