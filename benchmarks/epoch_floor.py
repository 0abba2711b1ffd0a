"""How far numbanet's epochs are from PyTorch's, and how much of it matmul explains.

    python benchmarks/epoch_floor.py [--model 784-512-256-10] [--threads {1,all}] [--rounds 5]

Times, alternating in this one process, a 60k-sample epoch of numbanet, of numbanet with
its layers' ``matmul`` swapped for NumPy's (OpenBLAS; same shapes, transposes as views),
and of PyTorch with its default Adam, and prints each one's median and its median ratio
to PyTorch. The middle row is the epoch numbanet would have at OpenBLAS's matmul speed:
what is left between it and the target is the rest of the step.
"""

import argparse
import sys
import time
from pathlib import Path


def blas_matmul(a, b, *, trans_a=False, trans_b=False, out=None):
    """``numbanet.ops.matmul``'s signature over ``np.matmul`` (no validation)."""
    import numpy as np

    return np.matmul(a.T if trans_a else a, b.T if trans_b else b, out=out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="784-512-256-10", help="a key of bench_train.MODELS")
    parser.add_argument("--threads", choices=["1", "all"], default="all", help="threads for every library")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of whole epochs")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import numpy as np

    from numbanet import ops
    from benchmarks import bench_train
    from benchmarks.common import n_threads, set_threads, torch

    if torch is None:
        parser.error("PyTorch is not installed: there is no reference epoch")
    set_threads(args.threads)
    numbanet_epoch = bench_train.epoch_call("numbanet", args.model)
    swapped_epoch = bench_train.epoch_call("numbanet", args.model)

    def with_blas_matmul():
        numbanet_matmul, ops.matmul = ops.matmul, blas_matmul
        try:
            swapped_epoch()
        finally:
            ops.matmul = numbanet_matmul

    calls = {"numbanet": numbanet_epoch, "numbanet, np.matmul": with_blas_matmul,
             "torch": bench_train.epoch_call("torch", args.model)}
    for call in calls.values():
        call()
    seconds = {name: [] for name in calls}
    for r in range(args.rounds):
        for name in calls if r % 2 == 0 else reversed(calls):
            started = time.perf_counter()
            calls[name]()
            seconds[name].append(time.perf_counter() - started)
    print(f"{args.model}, {n_threads(args.threads)} thread(s), {args.rounds} alternating rounds")
    reference = np.array(seconds["torch"])
    for name, times in seconds.items():
        print(f"{name:22s} median {np.median(times):.3f} s   ratio to torch {np.median(np.array(times) / reference):.3f}")


if __name__ == "__main__":
    main()
