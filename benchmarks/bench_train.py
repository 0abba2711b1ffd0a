"""Training: one Adam step of an MLP at batch 128 and one epoch over 60,000 MNIST-shaped
samples, numbanet against a straightforward NumPy-from-scratch MLP and PyTorch CPU;
the same for the Keras MNIST convnet against PyTorch; and how far a float32 run drifts
from a float64 run of the same model.

The numbanet step goes through the public layer API (forward, loss, backward, update:
the work of ``Trainer``'s step without its accuracy and guard); the epoch is
``Trainer.fit`` itself. Random images of MNIST's shape are fine for timing.
"""

import functools

import numpy as np
from asv_runner.benchmarks.mark import skip_for_params

from numbanet.nn import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential, SoftmaxCrossEntropy
from numbanet.optim import Adam
from numbanet.train import Trainer

from .bench_adam import HYPER, numpy_adam_step
from .common import (
    DTYPES, ERROR_UNIT, THREADS, interleaved_ratio, interleaved_times, require, scaled_error,
    set_threads, skip_all_but, skip_single_thread_references, torch,
)

MODELS = {"784-256-10": (784, 256, 10), "784-512-256-10": (784, 512, 256, 10)}
CONVNET = "convnet"  # Conv2D 1->32 3x3 + ReLU, MaxPool 2, Conv2D 32->64 3x3 + ReLU, MaxPool 2, Flatten, Dropout 0.5, Dense 1600->10
IMPLS = ("numbanet", "numpy", "torch", "torch_fused")  # torch_fused: Adam(fused=True)
BATCH = 128
EPOCH_SAMPLES = 60_000
DRIFT_STEPS = 100


@functools.lru_cache(maxsize=None)
def mnist_shaped(n, seed=0):
    """``n`` random uint8 images (n, 784) and labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 784), dtype=np.uint8), rng.integers(0, 10, size=n)


def batch(dtype):
    images, labels = mnist_shaped(BATCH, seed=1)
    return images.astype(dtype) / dtype.type(255), labels


# --------------------------------------------------------------------------- numbanet

def numbanet_model(sizes, dtype, seed=0):
    """The MLP as ``numbanet train`` builds it: hidden Dense layers with a fused ReLU."""
    hidden = [Dense(fan_in, fan_out, activation="relu") for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1])]
    return Sequential(hidden + [Dense(sizes[-2], sizes[-1])], dtype=dtype.name, seed=seed)


def numbanet_adam():
    return Adam(lr=HYPER["lr"], beta1=HYPER["beta1"], beta2=HYPER["beta2"], eps=HYPER["eps"])


def numbanet_convnet(dtype, seed=0):
    """Keras' "simple MNIST convnet" (issue 6), as ``numbanet train --model convnet`` builds it."""
    return Sequential([
        Conv2D(1, 32, 3, input_shape=(28, 28, 1)), ReLU(), MaxPool2D(2),
        Conv2D(32, 64, 3), ReLU(), MaxPool2D(2),
        Flatten(), Dropout(0.5), Dense(1600, 10),
    ], dtype=dtype.name, seed=seed)


def numbanet_step(sizes, dtype):
    if sizes == CONVNET:
        model = numbanet_convnet(dtype)
    else:
        model = numbanet_model(sizes, dtype)
    optimizer, loss_fn = numbanet_adam(), SoftmaxCrossEntropy()
    optimizer.bind(model.params)
    x, y = batch(dtype)
    if sizes == CONVNET:
        x = x.reshape(-1, 28, 28, 1)

    def step():
        logits = model.forward(x, training=True)
        loss, dlogits = loss_fn(logits, y)
        model.backward(dlogits)
        optimizer.apply_buffers(model.param_buffer, model.grad_buffer)
        return loss

    return step


def numbanet_epoch(sizes, dtype):
    model = numbanet_convnet(dtype) if sizes == CONVNET else numbanet_model(sizes, dtype)
    trainer = Trainer(model, numbanet_adam(), batch_size=BATCH, seed=0)
    trainer.warm_up()
    x, y = mnist_shaped(EPOCH_SAMPLES)
    return lambda: trainer.fit(x, y, epochs=trainer.epoch + 1)


# --------------------------------------------------------------------------- numpy

class NumpyMLP:
    """The straightforward NumPy MLP: matmuls through ``@``, max-shifted softmax
    cross-entropy, backprop by hand, Glorot-uniform weights and numpy Adam."""

    def __init__(self, sizes, dtype, seed=0):
        rng = np.random.default_rng(seed)
        self.weights, self.biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            limit = np.sqrt(6 / (fan_in + fan_out))
            self.weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype))
            self.biases.append(np.zeros(fan_out, dtype))
        self.params = self.weights + self.biases
        self.moments = [(np.zeros_like(p), np.zeros_like(p)) for p in self.params]
        self.t = 0

    def step(self, x, y):
        rows = np.arange(len(y))
        activations = [x]
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            activations.append(np.maximum(activations[-1] @ w + b, 0))
        logits = activations[-1] @ self.weights[-1] + self.biases[-1]
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = (np.log(s[:, 0]) - z[rows, y]).mean()
        d = e / s
        d[rows, y] -= 1
        d /= len(y)
        dweights, dbiases = [None] * len(self.weights), [None] * len(self.biases)
        for i in reversed(range(len(self.weights))):
            dweights[i] = activations[i].T @ d
            dbiases[i] = d.sum(axis=0)
            if i:
                d = (d @ self.weights[i].T) * (activations[i] > 0)
        self.t += 1
        for p, g, (m, v) in zip(self.params, dweights + dbiases, self.moments):
            numpy_adam_step(p, g, m, v, self.t, **HYPER)
        return loss


def numpy_step(sizes, dtype):
    mlp, (x, y) = NumpyMLP(sizes, dtype), batch(dtype)
    return lambda: mlp.step(x, y)


def numpy_epoch(sizes, dtype):
    mlp, rng = NumpyMLP(sizes, dtype), np.random.default_rng(0)
    images, labels = mnist_shaped(EPOCH_SAMPLES)

    def epoch():
        order = rng.permutation(EPOCH_SAMPLES)
        for start in range(0, EPOCH_SAMPLES, BATCH):
            index = order[start:start + BATCH]
            mlp.step(images[index].astype(dtype) / dtype.type(255), labels[index])

    return epoch


# --------------------------------------------------------------------------- torch

def torch_convnet():
    """The same convnet in PyTorch's default (NCHW, contiguous) layout; takes (N, 784) rows."""
    nn = torch.nn
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10),
    )


def torch_model_step(sizes, dtype, fused):
    """One training step (x, y) -> loss of the model ``sizes`` (an MLP's widths or "convnet")."""
    if sizes == CONVNET:
        model = torch_convnet()
    else:
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1])
    model = model.to(getattr(torch, dtype.name))
    optimizer = torch.optim.Adam(model.parameters(), lr=HYPER["lr"], betas=(HYPER["beta1"], HYPER["beta2"]),
                                 eps=HYPER["eps"], fused=fused)

    def step(x, y):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def torch_step(sizes, dtype, fused):
    step = torch_model_step(sizes, dtype, fused)
    x, y = (torch.from_numpy(a) for a in batch(dtype))
    return lambda: step(x, y)


def torch_epoch(sizes, dtype, fused):
    step = torch_model_step(sizes, dtype, fused)
    images, labels = (torch.from_numpy(a) for a in mnist_shaped(EPOCH_SAMPLES))
    generator = torch.Generator().manual_seed(0)
    torch_dtype = getattr(torch, dtype.name)
    step(images[:BATCH].to(torch_dtype).div_(255), labels[:BATCH])  # first-call costs out of the timing

    def epoch():
        order = torch.randperm(EPOCH_SAMPLES, generator=generator)
        for start in range(0, EPOCH_SAMPLES, BATCH):
            index = order[start:start + BATCH]
            step(images[index].to(torch_dtype).div_(255), labels[index])

    return epoch


def step_call(impl, model, dtype):
    """A zero-argument training step of ``impl`` for ``model`` (a key of MODELS or CONVNET)."""
    sizes, dtype = MODELS.get(model, model), np.dtype(dtype)
    if impl == "numbanet":
        return numbanet_step(sizes, dtype)
    if impl == "numpy":
        return numpy_step(sizes, dtype)
    return torch_step(sizes, dtype, fused=impl == "torch_fused")


def epoch_call(impl, model, dtype="float32"):
    """A zero-argument call that trains one more epoch over 60,000 samples."""
    sizes, dtype = MODELS.get(model, model), np.dtype(dtype)
    if impl == "numbanet":
        return numbanet_epoch(sizes, dtype)
    if impl == "numpy":
        return numpy_epoch(sizes, dtype)
    return torch_epoch(sizes, dtype, fused=impl == "torch_fused")


# --------------------------------------------------------------------------- speed

class TrainStep:
    params = [IMPLS, DTYPES, list(MODELS), THREADS]
    param_names = ["impl", "dtype", "model", "threads"]
    timeout = 300

    def setup(self, impl, dtype, model, threads):
        require(impl, threads)
        set_threads(threads)
        self.step = step_call(impl, model, dtype)
        self.step()

    @skip_single_thread_references(params)
    def time_train_step(self, impl, dtype, model, threads):
        self.step()

    @skip_all_but(params, param_names, impl=["numbanet", "numpy"], dtype=["float32"],
                  model=["784-512-256-10"], threads=["all"])
    def peakmem_train_step(self, impl, dtype, model, threads):
        self.step()


class TrainEpoch:
    """One epoch (469 steps) in float32 on all threads; numbanet through Trainer.fit.

    PyTorch's fused Adam has no absolute epoch time here (its epoch is in
    TrainEpochRatio): each 60k epoch costs ``asv run --quick`` seconds.
    """

    params = [["numbanet", "numpy", "torch"], list(MODELS)]
    param_names = ["impl", "model"]
    timeout = 300
    number = 1
    repeat = (1, 3, 10.0)
    min_run_count = 1
    warmup_time = 0.0

    def setup(self, impl, model):
        require(impl)
        set_threads("all")
        self.epoch = epoch_call(impl, model)

    def time_train_epoch(self, impl, model):
        self.epoch()


# --------------------------------------------------------------------------- ratios

class TrainStepRatio:
    """numbanet / reference time of one float32 step on all threads, interleaved."""

    params = [["numpy", "torch", "torch_fused"], list(MODELS)]
    param_names = ["reference", "model"]
    unit = "ratio"
    timeout = 300

    def setup(self, reference, model):
        require(reference)
        set_threads("all")
        self.numbanet = step_call("numbanet", model, "float32")
        self.reference = step_call(reference, model, "float32")

    def track_train_step_ratio(self, reference, model):
        return interleaved_ratio(self.numbanet, self.reference, sample_time=0.05)


class TrainEpochRatio:
    """numbanet / PyTorch time of one float32 epoch on all threads, interleaved.

    One round (one epoch each, both warmed up): asv runs a track benchmark once per run,
    so ``asv run --quick`` trains one 60k epoch per implementation and parameter.
    """

    params = [["torch", "torch_fused"], list(MODELS)]
    param_names = ["reference", "model"]
    unit = "ratio"
    timeout = 600

    def setup(self, reference, model):
        require(reference)
        set_threads("all")
        self.numbanet = epoch_call("numbanet", model)
        self.reference = epoch_call(reference, model)

    def track_train_epoch_ratio(self, reference, model):
        return interleaved_ratio(self.numbanet, self.reference, rounds=1, sample_time=0.0)


class TrainEpochSpeedup:
    """numbanet's epoch time on 1 thread / on all threads, interleaved in one process
    (the larger model only: its speed-up is the one with a target); one epoch each."""

    params = [["784-512-256-10"]]
    param_names = ["model"]
    unit = "ratio"
    timeout = 600

    def setup(self, model):
        set_threads("all")
        self.epoch = epoch_call("numbanet", model)

    def _on(self, threads):
        def epoch():
            set_threads(threads)
            self.epoch()
        return epoch

    def track_train_epoch_speedup(self, model):
        one, many = interleaved_times([self._on("1"), self._on("all")], rounds=1, sample_time=0.0)
        return one / many


# --------------------------------------------------------------------------- convnet

class ConvnetStep:
    """One Adam step of the Keras convnet at batch 128 (PyTorch in NCHW, its default layout)."""

    params = [["numbanet", "torch"], DTYPES, THREADS]
    param_names = ["impl", "dtype", "threads"]
    timeout = 600  # a cold Numba cache compiles the conv kernels in setup

    def setup(self, impl, dtype, threads):
        require(impl, threads)
        set_threads(threads)
        self.step = step_call(impl, CONVNET, dtype)
        self.step()

    @skip_for_params([("torch", dtype, "1") for dtype in DTYPES])
    def time_convnet_step(self, impl, dtype, threads):
        self.step()


class ConvnetStepRatio:
    """numbanet / PyTorch time of one float32 convnet step, interleaved, on 1 and all threads."""

    params = [THREADS]
    param_names = ["threads"]
    unit = "ratio"
    timeout = 600

    def setup(self, threads):
        require("torch")
        set_threads(threads)
        self.numbanet = step_call("numbanet", CONVNET, "float32")
        self.torch = step_call("torch", CONVNET, "float32")

    def track_convnet_step_ratio(self, threads):
        return interleaved_ratio(self.numbanet, self.torch, rounds=5, sample_time=0.2)


class ConvnetEpochRatio:
    """numbanet / PyTorch time of one float32 convnet epoch over 60,000 samples on all
    threads (issue 6's target: <= 0.7 at 2 threads).

    One round, one epoch each (28-32 s apiece on 2 Zen 3 cores), warmed up in ``setup``:
    asv runs a track benchmark once per run, so ``asv run --quick`` trains exactly one
    60k epoch per implementation; the run-to-run history supplies the repetition.
    """

    params = [["torch"]]
    param_names = ["reference"]
    unit = "ratio"
    timeout = 900

    def setup(self, reference):
        require(reference)
        set_threads("all")
        self.numbanet = epoch_call("numbanet", CONVNET)
        self.reference = epoch_call(reference, CONVNET)

    def track_convnet_epoch_ratio(self, reference):
        return interleaved_ratio(self.numbanet, self.reference, rounds=1, sample_time=0.0)


# --------------------------------------------------------------------------- drift

def numbanet_drift_runs(sizes, x, y, x_eval, y_eval):
    """Final evaluation loss and parameters of float32 and float64 ``Trainer.fit`` runs."""
    models = {dt: numbanet_model(sizes, np.dtype(dt)) for dt in ("float32", "float64")}
    for p32, p64 in zip(models["float32"].params, models["float64"].params):
        p32[...] = p64
        p64[...] = p32  # both now hold the same float32-representable values
    runs = {}
    for dt, model in models.items():
        trainer = Trainer(model, numbanet_adam(), batch_size=BATCH, seed=0)
        trainer.fit(x, y, epochs=1)
        runs[dt] = trainer.evaluate(x_eval, y_eval)["loss"], model.params
    return runs


def numpy_drift_runs(sizes, x, y, x_eval, y_eval):
    """The same for the NumPy MLP, on the same batches in the same order."""
    mlps = {dt: NumpyMLP(sizes, np.dtype(dt)) for dt in ("float32", "float64")}
    for p32, p64 in zip(mlps["float32"].params, mlps["float64"].params):
        p64[...] = p32
    order = np.random.default_rng(0).permutation(len(y))
    runs = {}
    for dt, mlp in mlps.items():
        scale = np.dtype(dt).type(255)
        for start in range(0, len(y), BATCH):
            index = order[start:start + BATCH]
            mlp.step(x[index].astype(dt) / scale, y[index])
        logits = x_eval.astype(dt) / scale
        for w, b in zip(mlp.weights[:-1], mlp.biases[:-1]):
            logits = np.maximum(logits @ w + b, 0)
        logits = logits @ mlp.weights[-1] + mlp.biases[-1]
        z = logits - logits.max(axis=1, keepdims=True)
        loss = (np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y_eval)), y_eval]).mean()
        runs[dt] = loss, mlp.params
    return runs


def drift(impl, model, steps=DRIFT_STEPS):
    """float32 vs float64 runs of ``model`` from the same initial weights, same batches.

    Returns the scaled-eps difference of the final evaluation loss and the largest of
    the weights', after ``steps`` Adam steps. Adam divides by sqrt(v) + eps, so weights
    whose gradients are tiny move by about lr in a direction rounding can flip: the
    weight difference grows far beyond a single op's error, in NumPy as in numbanet.
    """
    x, y = mnist_shaped(steps * BATCH, seed=2)
    x_eval, y_eval = mnist_shaped(1000, seed=3)
    runs = (numbanet_drift_runs if impl == "numbanet" else numpy_drift_runs)(MODELS[model], x, y, x_eval, y_eval)
    (loss32, params32), (loss64, params64) = runs["float32"], runs["float64"]
    return {
        "loss": scaled_error(loss32, loss64),
        "weights": max(scaled_error(p32, p64) for p32, p64 in zip(params32, params64)),
    }


class TrainDrift:
    """float32 vs float64 runs after 100 Adam steps from the same weights (NumPy's beside)."""

    params = [["numbanet", "numpy"], list(MODELS)]
    param_names = ["impl", "model"]
    unit = ERROR_UNIT
    timeout = 300

    def setup_cache(self):
        return {(impl, model): drift(impl, model) for impl in self.params[0] for model in MODELS}

    def track_train_loss_error(self, results, impl, model):
        return results[impl, model]["loss"]

    def track_train_weight_error(self, results, impl, model):
        return results[impl, model]["weights"]
