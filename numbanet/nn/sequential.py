"""A stack of layers applied in order; the last layer emits logits."""

import numpy as np

from numbanet import ops

from .inputs import as_model_input
from .io import json_array, load_npz, read_json, save_npz_atomic
from .layer import Layer, mix_seed

MODEL_FORMAT = "numbanet.Sequential/1"


class Sequential:
    """Layers in order: ``forward`` runs them first to last, ``backward`` last to first.

    Every parameter is a view of one 1-D ``param_buffer`` and every gradient a view of
    one ``grad_buffer``, layer by layer in order, so the optimizer's update and the
    gradient norm run as one call each over the whole model.

    Parameters
    ----------
    layers : list of Layer
        The model's layers; the first declares the per-sample input shape (e.g. Dense).
    dtype : {"float32", "float64"}
        Dtype of every parameter, activation and gradient.
    seed : int
        Seeds the generator that initialises the weights, layer by layer in order.
    """

    def __init__(self, layers, *, dtype="float32", seed=0):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("`layers` must hold at least one layer. Received: []")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"`layers[{i}]` must be a numbanet.nn.Layer. Received: {type(layer).__name__}")
            if any(layer is other for other in self.layers[:i]):
                raise ValueError(f"`layers[{i}]` ({layer!r}) appears twice: each layer holds its own weights and buffers")
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"`dtype` must be float32 or float64. Received: dtype={dtype!r}")
        self.dtype = np.dtype(dtype)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.input_shape = self.layers[0].input_shape
        shape = self.input_shape
        for layer in self.layers:
            layer.build(self.dtype, rng)
            shape = layer.output_shape(shape)
        self.output_shape = shape
        self.layers[0].needs_input_grad = False
        self._gather_parameters()
        self.params = [p for layer in self.layers for p in layer.params.values()]
        self.grads = [layer.grads[name] for layer in self.layers for name in layer.params]

    def _gather_parameters(self):
        """Move the layers' parameters into ``param_buffer``, their gradients into ``grad_buffer``."""
        entries = [(layer, name) for layer in self.layers for name in layer.params]
        total = sum(layer.params[name].size for layer, name in entries)
        self.param_buffer = np.empty(total, dtype=self.dtype)
        self.grad_buffer = np.zeros(total, dtype=self.dtype)
        start = 0
        for layer, name in entries:
            param = layer.params[name]
            stop = start + param.size
            self.param_buffer[start:stop] = param.ravel()
            layer.params[name] = self.param_buffer[start:stop].reshape(param.shape)
            layer.grads[name] = self.grad_buffer[start:stop].reshape(param.shape)
            start = stop

    @property
    def n_params(self):
        return sum(p.size for p in self.params)

    def forward(self, x, *, training=False):
        """Logits for a prepared batch ``x`` (dtype of the model, shape (N, *input_shape))."""
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, dlogits):
        """Fill every layer's ``grads`` from dL/dlogits of the last training forward."""
        d = dlogits
        for layer in reversed(self.layers):
            d = layer.backward(d)

    def reseed(self, seed):
        """Give every layer its own seed derived from ``seed`` (for dropout masks)."""
        for i, layer in enumerate(self.layers):
            layer.reseed(mix_seed(seed, i))

    def predict(self, x, *, batch_size=256):
        """Class probabilities (N, n_classes) for images or feature rows ``x`` (softmax of the logits)."""
        x = as_model_input(x, self.input_shape, self.dtype)
        probs = None
        scaled = np.empty((min(batch_size, x.shape[0]),) + x.shape[1:], self.dtype) if x.dtype == np.uint8 else None
        for start in range(0, x.shape[0], batch_size):
            batch = x[start:start + batch_size]
            if scaled is not None:
                index = np.arange(start, start + batch.shape[0])
                batch = ops.gather_pixels(x, index, out=scaled[: batch.shape[0]])
            logits = self.forward(batch, training=False)
            if probs is None:
                probs = np.empty((x.shape[0],) + logits.shape[1:], dtype=self.dtype)
            ops.softmax(logits, out=probs[start:start + batch.shape[0]])
        return probs

    def get_config(self):
        """The architecture as a JSON-serialisable dict."""
        return {
            "dtype": self.dtype.name,
            "layers": [{"class": type(layer).__name__, "config": layer.get_config()} for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config, *, seed=0):
        layers = []
        for entry in config["layers"]:
            layer_class = Layer.registry.get(entry["class"])
            if layer_class is None:
                raise ValueError(
                    f"unknown layer class {entry['class']!r}: import the module that defines it before loading"
                )
            layers.append(layer_class.from_config(entry["config"]))
        return cls(layers, dtype=config["dtype"], seed=seed)

    def state_arrays(self, prefix=""):
        """Architecture (JSON) and weights as ``.npz`` entries, names starting with ``prefix``."""
        arrays = {prefix + "architecture": json_array(self.get_config())}
        for i, layer in enumerate(self.layers):
            for name, value in layer.params.items():
                arrays[f"{prefix}layer{i}.{name}"] = value
        return arrays

    @classmethod
    def from_state_arrays(cls, arrays, path, prefix=""):
        model = cls.from_config(read_json(arrays, prefix + "architecture", path))
        for i, layer in enumerate(model.layers):
            for name, value in layer.params.items():
                key = f"{prefix}layer{i}.{name}"
                if key not in arrays:
                    raise ValueError(f"{str(path)!r} has no weights {key!r} for {layer!r}")
                stored = arrays[key]
                if stored.shape != value.shape or stored.dtype != value.dtype:
                    raise ValueError(
                        f"{str(path)!r}: {key!r} is {stored.dtype}{stored.shape}, "
                        f"but {layer!r} needs {value.dtype}{value.shape}"
                    )
                np.copyto(value, stored)
        return model

    def save(self, path):
        """Write architecture, dtype and weights to the ``.npz`` at ``path`` (atomically)."""
        arrays = {"format": np.array(MODEL_FORMAT), **self.state_arrays()}
        save_npz_atomic(path, arrays)

    @classmethod
    def load(cls, path):
        """The model saved at ``path`` by :meth:`save` (no pickle involved)."""
        arrays = load_npz(path)
        if "format" not in arrays or str(arrays["format"]) != MODEL_FORMAT:
            raise ValueError(f"{str(path)!r} is not a numbanet model file (format {MODEL_FORMAT})")
        return cls.from_state_arrays(arrays, path)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __repr__(self):
        lines = [f"Sequential(dtype={self.dtype.name}, params={self.n_params:,})"]
        lines += [f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers)]
        return "\n".join(lines)

