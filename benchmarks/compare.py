"""Print numbanet vs NumPy vs PyTorch for the key ops and the training steps (MLPs, convnet) on this machine.

    python benchmarks/compare.py [--threads {1,all}] [--dtype {float32,float64}] [--epoch]

The calls are the asv suite's own (``bench_*.py``), timed interleaved in this one process
(medians of alternating rounds, like the suite's ``track_*_ratio`` benchmarks). Columns
missing a reference show "-" (PyTorch not installed, or no such reference).
"""

import argparse
import datetime
import platform
import sys
from pathlib import Path


def key_comparisons(dtype, with_epoch):
    """(op, size, {impl: zero-argument call}) for each row of the table."""
    from benchmarks import (
        bench_adam, bench_conv, bench_cross_entropy, bench_kahan, bench_matmul, bench_pool, bench_sigmoid,
        bench_softmax, bench_train,
    )
    from benchmarks.common import normal, torch

    impls = ["numbanet", "numpy"] + (["torch"] if torch is not None else [])
    optim_impls = impls + (["torch_fused"] if torch is not None else [])
    rows = []
    for size in ["nn 128x784x256", "tn 784x128x256", "nt 128x256x784", "nn 128x256x10", "nn 1024x1024x1024"]:
        args = bench_matmul.operands(size, dtype)
        rows.append(("matmul", size, {i: bench_matmul.matmul_call(i, *args) for i in impls}))
    for size in bench_softmax.LOGITS:
        x = bench_softmax.logits(size, dtype)
        rows.append(("softmax", size, {i: bench_softmax.softmax_call(i, x) for i in impls}))
        rows.append(("log_softmax", size, {i: bench_softmax.log_softmax_call(i, x) for i in impls}))
        xy = bench_cross_entropy.logits_and_labels(size, dtype)
        rows.append(("softmax_cross_entropy", size,
                     {i: bench_cross_entropy.softmax_cross_entropy_call(i, *xy) for i in impls}))
    x = bench_sigmoid.activations("10M", dtype)
    rows.append(("sigmoid", "10M", {i: bench_sigmoid.sigmoid_call(i, x) for i in impls}))
    x = normal(bench_kahan.SIZES["10M"], dtype, seed=9)
    rows.append(("kahan_sum (vs sum)", "10M", {i: bench_kahan.sum_call(i, x) for i in impls}))
    rows.append(("adam_step", "10M", {
        i: bench_adam.adam_call(i, *bench_adam.adam_state(bench_adam.SIZES["10M"], dtype)) for i in optim_impls
    }))
    for size in bench_conv.SIZES:
        calls = {i: bench_conv.conv_calls(i, *bench_conv.operands(size, dtype)) for i in impls}
        for op, name in (("forward", "conv2d"), ("input", "conv2d_backward_input"),
                         ("weight", "conv2d_backward_weight")):
            rows.append((name, size.split()[0], {i: calls[i][op] for i in impls}))
    for size in bench_pool.SIZES:
        calls = {i: bench_pool.pool_calls(i, *bench_pool.operands(size, dtype)) for i in impls}
        for op, name in (("forward", "max_pool2d"), ("backward", "max_pool2d_backward")):
            rows.append((name, size.split()[0], {i: calls[i][op] for i in impls}))
    convnet_impls = [i for i in optim_impls if i != "numpy"]  # no NumPy convnet
    for model in bench_train.MODELS:
        rows.append(("train step, batch 128", model,
                     {i: bench_train.step_call(i, model, dtype.name) for i in optim_impls}))
    rows.append(("train step, batch 128", bench_train.CONVNET,
                 {i: bench_train.step_call(i, bench_train.CONVNET, dtype.name) for i in convnet_impls}))
    if with_epoch:
        for model in bench_train.MODELS:
            rows.append(("epoch, 60k samples", model,
                         {i: bench_train.epoch_call(i, model, dtype.name) for i in optim_impls}))
        rows.append(("epoch, 60k samples", bench_train.CONVNET,
                     {i: bench_train.epoch_call(i, bench_train.CONVNET, dtype.name) for i in convnet_impls}))
    return rows


def format_seconds(t):
    if t is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t * 1e9:.3g} ns"


def format_ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.3g}"


COLUMNS = [("op", 22), ("size", 18), ("numbanet", 9), ("numpy", 9), ("torch", 9), ("torch fused", 11),
           ("nb/numpy", 8), ("nb/torch", 8), ("nb/fused", 8)]


def print_row(cells):
    print("  ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, COLUMNS)), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", choices=["1", "all"], default="all", help="threads for every library")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--rounds", type=int, default=7, help="alternating timing rounds per row")
    parser.add_argument("--epoch", action="store_true", help="also time whole epochs (minutes: a convnet epoch takes ~20 s)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import numba
    import numpy as np

    import numbanet
    from benchmarks.common import interleaved_times, n_threads, set_threads, threading_layer, torch

    set_threads(args.threads)
    print(f"numbanet {numbanet.__version__}, numba {numba.__version__} (threading layer "
          f"{threading_layer()}), numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}")
    print(f"{platform.processor() or platform.machine()}, {n_threads(args.threads)} thread(s), {args.dtype}, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; median of {args.rounds} "
          "interleaved rounds; nb/x = numbanet time / x time (below 1: numbanet faster)\n")
    print_row([name for name, _ in COLUMNS])
    for op, size, calls in key_comparisons(np.dtype(args.dtype), args.epoch):
        names = list(calls)
        rounds = args.rounds if op != "epoch, 60k samples" else 2
        sample_time = 0.05 if op != "epoch, 60k samples" else 0.0
        medians = dict(zip(names, interleaved_times([calls[n] for n in names], rounds=rounds,
                                                    sample_time=sample_time)))
        t = {impl: medians.get(impl) for impl in ("numbanet", "numpy", "torch", "torch_fused")}
        print_row([op, size] + [format_seconds(t[i]) for i in ("numbanet", "numpy", "torch", "torch_fused")]
                  + [format_ratio(t["numbanet"], t[ref]) for ref in ("numpy", "torch", "torch_fused")])


if __name__ == "__main__":
    main()
