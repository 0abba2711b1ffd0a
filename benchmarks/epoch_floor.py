"""How far numbanet's epochs are from PyTorch's, and how much of it matmul explains.

    python benchmarks/epoch_floor.py [--model 784-512-256-10] [--threads {1,all}] [--rounds 5]

Times, alternating in this one process, a 60k-sample epoch of numbanet, of numbanet with
its layers' ``matmul`` swapped for NumPy's (OpenBLAS; same shapes, transposes as views),
and of PyTorch with its default Adam, and prints each one's median and its median ratio
to PyTorch. The middle row is the epoch numbanet would have at OpenBLAS's matmul speed:
what is left between it and the target is the rest of the step. Then each product of a
step, timed inside the two numbanet epochs (per step, summed over the timed rounds), and
last every other op of numbanet's epoch and what is left outside the ops (the trainer's
and the layers' Python, and the timers themselves).
"""

import argparse
import collections
import sys
import time
from pathlib import Path


def blas_matmul(a, b, *, trans_a=False, trans_b=False, out=None):
    """``numbanet.ops.matmul``'s signature over ``np.matmul`` (no validation)."""
    import numpy as np

    return np.matmul(a.T if trans_a else a, b.T if trans_b else b, out=out)


def product(a, b, *, trans_a=False, trans_b=False, out=None):
    """A matmul call's (op(a) shape, op(b) shape, flags)."""
    return (a.shape[::-1] if trans_a else a.shape, b.shape[::-1] if trans_b else b.shape,
            "ta" if trans_a else "tb" if trans_b else "nn")


def named(name):
    """A key for ``timed`` that files every call under ``name``."""
    return lambda *args, **kwargs: name


def timed(op, seconds, key):
    """``op`` adding each call's time to ``seconds[key(*args, **kwargs)]``."""
    def call(*args, **kwargs):
        started = time.perf_counter()
        result = op(*args, **kwargs)
        seconds[key(*args, **kwargs)] += time.perf_counter() - started
        return result
    return call


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
    products = {"numbanet": collections.Counter(), "np.matmul": collections.Counter()}
    other_ops = collections.Counter()
    names = [name for name in dir(ops) if not name.startswith("_") and callable(getattr(ops, name))]

    def with_ops(replacements, epoch):
        """``epoch`` run with ``replacements`` (op name -> function) in place of the ops."""
        def call():
            originals = {name: getattr(ops, name) for name in replacements}
            for name, op in replacements.items():
                setattr(ops, name, op)
            try:
                epoch()
            finally:
                for name, op in originals.items():
                    setattr(ops, name, op)
        return call

    def timed_ops(matmul, matmul_seconds, seconds):
        """Every op timed: ``matmul`` per product into ``matmul_seconds``, the others by name
        into ``seconds`` (both numbanet epochs carry the same timers)."""
        replacements = {name: timed(getattr(ops, name), seconds, named(name)) for name in names}
        replacements["matmul"] = timed(matmul, matmul_seconds, product)
        return replacements

    calls = {
        "numbanet": with_ops(timed_ops(ops.matmul, products["numbanet"], other_ops),
                             bench_train.epoch_call("numbanet", args.model)),
        "numbanet, np.matmul": with_ops(timed_ops(blas_matmul, products["np.matmul"], collections.Counter()),
                                        bench_train.epoch_call("numbanet", args.model)),
        "torch": bench_train.epoch_call("torch", args.model),
    }
    for call in calls.values():
        call()
    for counter in (*products.values(), other_ops):
        counter.clear()
    seconds = {name: [] for name in calls}
    for r in range(args.rounds):
        for name in calls if r % 2 == 0 else reversed(calls):
            started = time.perf_counter()
            calls[name]()
            seconds[name].append(time.perf_counter() - started)
    print(f"{args.model}, {n_threads(args.threads)} thread(s), {args.rounds} alternating rounds")
    reference = np.array(seconds["torch"])
    for name, times in seconds.items():
        ratio = np.median(np.array(times) / reference)
        print(f"{name:22s} median {np.median(times):.3f} s   ratio to torch {ratio:.3f}")
    steps = args.rounds * -(-bench_train.EPOCH_SAMPLES // bench_train.BATCH)
    print("\nproduct (op(a) @ op(b))      numbanet   np.matmul   ratio   (us a step)")
    for key, total in products["numbanet"].most_common():
        blas = products["np.matmul"][key]
        shapes = f"{str(key[0]):>11s} @ {str(key[1]):11s} {key[2]}"
        print(f"{shapes}  {total / steps * 1e6:8.1f}  {blas / steps * 1e6:10.1f}   {total / blas:.2f}")
    total, blas = (sum(products[name].values()) / steps * 1e6 for name in ("numbanet", "np.matmul"))
    print(f"{'all':28s}  {total:8.1f}  {blas:10.1f}   {total / blas:.2f}")
    step = sum(seconds["numbanet"]) / steps * 1e6
    print(f"\nnumbanet's epoch step, {step:.1f} us:   us a step   share")
    rows = [("matmul (the products above)", total)]
    rows += [(name, spent / steps * 1e6) for name, spent in other_ops.most_common()]
    rows.append(("outside the ops", step - sum(us for _, us in rows)))
    for name, us in rows:
        print(f"{name:30s} {us:10.1f}   {us / step:6.1%}")


if __name__ == "__main__":
    main()
