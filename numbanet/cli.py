"""``numbanet train`` and ``numbanet evaluate``: train an MLP or a convnet on MNIST from the command line.

Every ``train`` flag maps one-to-one onto a field of :class:`TrainConfig`. Bad options end
with one line on stderr and exit status 2; failures while running (unreadable data, a
non-finite loss) with one line and status 1 — never a traceback.
"""

import argparse
import json
import math
import os
import sys
import threading
from dataclasses import asdict, dataclass, field

N_CLASSES = 10
CHECKPOINT_NAME = "checkpoint.npz"
# The dropout rate each model uses when --dropout is not given.
DEFAULT_DROPOUT = {"mlp": 0.0, "convnet": 0.5}


@dataclass
class TrainConfig:
    dataset: str = "mnist"  # "mnist" (full, falls back to the sample offline), "mnist-sample" or an IDX directory
    model: str = "mlp"  # "mlp" (Dense layers) or "convnet" (the Keras MNIST convnet, see build_convnet)
    hidden: list | None = field(default_factory=lambda: [256])  # MLP hidden widths: Dense with ReLU (+ Dropout) each; None for the convnet
    epochs: int = 10  # total epochs of the run (a resumed run counts the epochs already done)
    batch_size: int = 128  # samples per mini-batch; the last partial batch is used
    lr: float = 1e-3  # learning rate
    optimizer: str = "adam"  # "adam" or "sgd"
    momentum: float = 0.0  # SGD momentum (ignored by Adam)
    dropout: float = 0.0  # MLP: rate after each hidden ReLU; convnet: rate before the output layer (0 = none)
    clip_norm: float | None = None  # clip gradients to this global L2 norm (None = no clipping)
    dtype: str = "float32"  # "float32" or "float64" for weights, activations and gradients
    threads: int | None = None  # Numba threads (None = all available)
    seed: int = 0  # seeds initialisation, shuffling and dropout
    out: str = "runs/mnist"  # directory for model.npz, checkpoint.npz, history.json/.csv, curves.png
    resume: bool = False  # continue the run saved in OUT/checkpoint.npz


class CommandError(Exception):
    """A problem the user can fix; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


def _float_in(low, high, *, low_open=False, high_open=False):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if not math.isfinite(value) or too_low or too_high:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"must lie in {left}{low}, {high}{right}, got {text}")
        return value
    return parse


def _widths(text):
    try:
        widths = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 512,256, got {text!r}") from None
    if any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return widths


def build_parser():
    parser = _Parser(prog="numbanet",
                     description="Train and evaluate MLPs and convnets on MNIST with numbanet's CPU kernels.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    defaults = TrainConfig()
    train = commands.add_parser("train", help="train a model and write its model, checkpoint, history and curves")
    train.add_argument("--dataset", default=defaults.dataset, metavar="{mnist,mnist-sample,DIR}",
                       help="full MNIST (downloaded once, else the offline sample), the offline 5,000-digit "
                            "sample, or a directory of IDX files such as Fashion-MNIST (default: %(default)s)")
    train.add_argument("--model", choices=("mlp", "convnet"), default=defaults.model,
                       help="mlp: Dense layers with ReLU of --hidden widths, then Dense(10); convnet: Conv2D(1->32, 3x3)+"
                            "ReLU, MaxPool 2, Conv2D(32->64, 3x3)+ReLU, MaxPool 2, Flatten, Dropout, Dense(10) "
                            "(default: %(default)s)")
    train.add_argument("--hidden", type=_widths, default=None, metavar="WIDTHS",
                       help="comma-separated hidden layer widths of the mlp (default: 256); "
                            "an error with --model convnet")
    train.add_argument("--epochs", type=_int_at_least(0), default=defaults.epochs)
    train.add_argument("--batch-size", type=_int_at_least(1), default=defaults.batch_size)
    train.add_argument("--lr", type=_float_in(0, math.inf, low_open=True), default=defaults.lr)
    train.add_argument("--optimizer", choices=("adam", "sgd"), default=defaults.optimizer)
    train.add_argument("--momentum", type=_float_in(0, 1, high_open=True), default=defaults.momentum)
    train.add_argument("--dropout", type=_float_in(0, 1, high_open=True), default=None,
                       help="dropout rate: after each hidden ReLU of the mlp (default: 0), before the convnet's "
                            "output layer (default: 0.5)")
    train.add_argument("--clip-norm", type=_float_in(0, math.inf, low_open=True), default=defaults.clip_norm)
    train.add_argument("--dtype", choices=("float32", "float64"), default=defaults.dtype)
    train.add_argument("--threads", type=_int_at_least(1), default=defaults.threads)
    train.add_argument("--seed", type=_int_at_least(0), default=defaults.seed)
    train.add_argument("--out", default=defaults.out, metavar="DIR")
    train.add_argument("--resume", action="store_true", help=f"continue from DIR/{CHECKPOINT_NAME}")
    evaluate = commands.add_parser("evaluate", help="report test loss and accuracy of a saved model")
    evaluate.add_argument("model", metavar="MODEL", help="a model.npz written by `numbanet train`")
    evaluate.add_argument("--dataset", default="mnist", metavar="{mnist,mnist-sample,DIR}")
    evaluate.add_argument("--batch-size", type=_int_at_least(1), default=256)
    evaluate.add_argument("--threads", type=_int_at_least(1), default=None)
    return parser


def load_dataset(name):
    """``(x_train, y_train), (x_test, y_test)`` for a ``--dataset`` value."""
    from numbanet.data import MNISTUnavailable, load_idx_dataset, load_mnist, load_mnist_sample

    if name == "mnist-sample":
        return load_mnist_sample()
    if name == "mnist":
        try:
            return load_mnist(timeout=10.0, progressbar=True)
        except MNISTUnavailable as error:
            reason = str(error).splitlines()[0].rstrip(":")
            print(f"{reason} and could not be downloaded; using the offline 5,000-digit sample instead "
                  "(see numbanet.data.load_mnist for providing the files)")
            return load_mnist_sample()
    if not os.path.isdir(name):
        raise CommandError(f"--dataset must be mnist, mnist-sample or a directory of IDX files; "
                           f"{name!r} is none of these")
    return load_idx_dataset(name)


def set_threads(threads):
    if threads is None:
        return
    import numba

    available = numba.config.NUMBA_NUM_THREADS
    if threads > available:
        raise CommandError(f"--threads must be at most {available} (NUMBA_NUM_THREADS). Received: {threads}")
    numba.set_num_threads(threads)


def build_model(config, image_shape):
    """The ``--model`` network for images of per-sample shape ``image_shape``, e.g. (28, 28)."""
    if config.model == "convnet":
        return build_convnet(config, image_shape)
    return build_mlp(config, math.prod(image_shape))


def build_mlp(config, n_features):
    from numbanet.nn import Dense, Dropout, Sequential

    layers, width = [], n_features
    for hidden in config.hidden:
        layers.append(Dense(width, hidden, activation="relu"))
        if config.dropout > 0:
            layers.append(Dropout(config.dropout))
        width = hidden
    layers.append(Dense(width, N_CLASSES))
    return Sequential(layers, dtype=config.dtype, seed=config.seed)


def build_convnet(config, image_shape):
    """Keras' "simple MNIST convnet": two 3x3 convolutions (32, 64 filters) with ReLU and 2x2 max pooling."""
    from numbanet.nn import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential

    height, width = image_shape[:2]
    layers = [
        Conv2D(1, 32, 3, input_shape=(height, width, 1)), ReLU(), MaxPool2D(2),
        Conv2D(32, 64, 3), ReLU(), MaxPool2D(2),
        Flatten(),
    ]
    shape = layers[0].input_shape
    for layer in layers:
        shape = layer.output_shape(shape)
    if config.dropout > 0:
        layers.append(Dropout(config.dropout))
    layers.append(Dense(math.prod(shape), N_CLASSES))
    return Sequential(layers, dtype=config.dtype, seed=config.seed)


def build_trainer(config, image_shape):
    from numbanet.optim import SGD, Adam
    from numbanet.train import Trainer

    if config.optimizer == "adam":
        optimizer = Adam(lr=config.lr, clip_norm=config.clip_norm)
    else:
        optimizer = SGD(lr=config.lr, momentum=config.momentum, clip_norm=config.clip_norm)
    return Trainer(build_model(config, image_shape), optimizer, batch_size=config.batch_size, seed=config.seed)


def warm_up(trainer, sample_counts=(), *, announce_after=1.5):
    """Compile (or load from cache) every kernel before the first step, saying so if it takes a while.

    ``sample_counts``: the sizes of the datasets the run will see, whose short last batches
    may take other kernels (``Trainer.warm_up``).

    A cold Numba cache means about a minute of compilation; a warm one loads in a second
    or two, so the line only appears when the wait is noticeable.
    """
    layers = ", ".join(dict.fromkeys(type(layer).__name__ for layer in trainer.model.layers))
    message = (f"compiling numbanet's {trainer.model.dtype.name} kernels for {layers}, the loss and "
               f"{trainer.optimizer.op_name} (about a minute on a first run; later runs load them from "
               "Numba's cache)...")
    timer = threading.Timer(announce_after, lambda: print(message, flush=True))
    timer.start()
    try:
        trainer.warm_up(sample_counts)
    finally:
        timer.cancel()


def train(config):
    from numbanet.train import ProgressBar, Trainer

    set_threads(config.threads)
    (x_train, y_train), (x_test, y_test) = load_dataset(config.dataset)
    os.makedirs(config.out, exist_ok=True)
    checkpoint = os.path.join(config.out, CHECKPOINT_NAME)
    if config.resume:
        if not os.path.exists(checkpoint):
            raise CommandError(f"--resume: no checkpoint at {checkpoint!r}")
        trainer = Trainer.from_checkpoint(checkpoint)
        print(f"resuming {checkpoint} at epoch {trainer.epoch + 1}, step {trainer.step + 1}")
    else:
        trainer = build_trainer(config, x_train.shape[1:])
    with open(os.path.join(config.out, "config.json"), "w") as f:
        json.dump(asdict(config), f, indent=2)
    print(f"{len(x_train):,} training and {len(x_test):,} test samples; {trainer!r}")
    warm_up(trainer, (len(x_train), len(x_test)))
    history = trainer.fit(x_train, y_train, epochs=config.epochs, validation_data=(x_test, y_test),
                          checkpoint=checkpoint, callbacks=[ProgressBar(config.epochs)])
    trainer.model.save(os.path.join(config.out, "model.npz"))
    history.to_json(os.path.join(config.out, "history.json"))
    history.to_csv(os.path.join(config.out, "history.csv"))
    if history.epoch:
        history.plot(os.path.join(config.out, "curves.png"))
    if trainer.epoch < config.epochs:
        print(f"stopped at epoch {trainer.epoch + 1}, step {trainer.step}; "
              f"continue with: numbanet train --dataset {config.dataset} --out {config.out} --resume "
              f"--epochs {config.epochs}")
    print(f"wrote model.npz, {CHECKPOINT_NAME}, history.json, history.csv, curves.png to {config.out}")


def evaluate(model_path, dataset, batch_size, threads):
    from numbanet.nn import Sequential
    from numbanet.optim import SGD
    from numbanet.train import Trainer

    set_threads(threads)
    if not os.path.isfile(model_path):
        raise CommandError(f"MODEL must be a model file written by `numbanet train`; {model_path!r} does not exist")
    model = Sequential.load(model_path)
    _, (x_test, y_test) = load_dataset(dataset)
    # Evaluation updates nothing; the trainer just needs an optimizer to exist.
    metrics = Trainer(model, SGD(lr=1.0), batch_size=batch_size).evaluate(x_test, y_test)
    print(f"test loss {metrics['loss']:.4f} - test accuracy {metrics['accuracy']:.4f} ({len(x_test):,} samples)")


def train_config(args, parser):
    """The :class:`TrainConfig` of parsed ``train`` options, with each model's defaults filled in."""
    options = {name: value for name, value in vars(args).items() if name != "command"}
    if options["model"] == "convnet":
        if options["hidden"] is not None:
            parser.error("argument --hidden: only applies to --model mlp")
    elif options["hidden"] is None:
        options["hidden"] = TrainConfig().hidden
    if options["dropout"] is None:
        options["dropout"] = DEFAULT_DROPOUT[options["model"]]
    return TrainConfig(**options)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    config = train_config(args, parser) if args.command == "train" else None
    from numbanet.data import IDXError, MNISTUnavailable
    from numbanet.train import NonFiniteError

    try:
        if args.command == "train":
            train(config)
        else:
            evaluate(args.model, args.dataset, args.batch_size, args.threads)
    except (CommandError, IDXError, MNISTUnavailable, NonFiniteError, OSError, ValueError, TypeError) as error:
        print(f"numbanet {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"numbanet {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
