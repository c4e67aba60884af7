"""Runner and report shared by every benchmark script.

Arguments (:func:`make_parser`, :func:`setup`), data (:func:`dynamic_split`), training
(:func:`fit_table1`), the experiments that several scripts read (the fixed-ISR sweep of
Fig. 3 and the ISR learning of Table 2), formatting and the results writer
(:class:`Report`). Sizes come from the one configuration object,
:class:`benchmarks.config.Profile`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import importlib
import json
import math
import os
import shlex
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
from skorch.callbacks import Callback, Checkpoint

from benchmarks import stats
from benchmarks.config import (
    LEARN_START,
    PROFILES,
    RESULTS_DIR,
    SWEEP_SIGMA_BASIS,
    paper_differences_text,
)
from skscale.callbacks import SCALE_PARAM_GROUP
from skscale.nn.scales import PARAMETERISATIONS
from skscale.utils import Integer, Real, machine_line, system_info, versions_line

# argparse types; the errors name the option and the value.
positive_int = Integer(low=1).argparse_type(int)
upper_bound = Real(low=1, closed="neither").argparse_type(float)


# ---------------------------------------------------------------------------- arguments
# The parameterisations a script can learn the scales with (``--form``).
LEARNED_FORMS = tuple(name for name in PARAMETERISATIONS if name != "fixed")


def make_parser(description, training=True, learned=False):
    """Argument parser shared by every script.

    ``--profile`` picks a :class:`~benchmarks.config.Profile` and ``--output-dir`` receives
    the results. With ``training`` (the scripts that train networks), ``--seeds``
    overrides the profile's realisations, ``--epoch-factor`` its training length
    (:meth:`Profile.stretched`) and ``--distributions`` its data scale distributions, and
    ``--device`` is passed to the classifier; without it the script runs on the CPU.
    With ``learned`` (the scripts that learn scales), ``--form`` picks the learned
    parameterisation (default: the profile's ``form``).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="cpu",
        help="problem size: the paper's protocol, the CPU-sized one, or a smoke test (default: cpu)",
    )
    if training:
        parser.add_argument(
            "--device",
            default=None,
            help="torch device for training, e.g. cuda (default: cuda for --profile paper when "
            "available, else cpu)",
        )
        parser.add_argument(
            "--seeds", type=int, nargs="+", default=None, help="realisations to run (default: the profile's)"
        )
        parser.add_argument(
            "--epoch-factor",
            type=positive_int,
            default=None,
            metavar="N",
            help="train N times the profile's epochs, the learning-rate decays stretched alike (default: 1)",
        )
        parser.add_argument(
            "--n-jobs",
            type=positive_int,
            default=None,
            metavar="N",
            help="worker processes for the independent fits, one torch thread each (default: 1; "
            "training_length: every core on the CPU)",
        )
        parser.add_argument(
            "--distributions",
            type=upper_bound,
            nargs="+",
            default=None,
            metavar="HIGH",
            help="upper bounds of the log-uniform [1, HIGH] data scale distributions (default: "
            "the profile's)",
        )
    if learned:
        parser.add_argument(
            "--form",
            choices=LEARNED_FORMS,
            default=None,
            help="learned parameterisation of the internal scales (default: the profile's form)",
        )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=RESULTS_DIR,
        help=f"where <name>-<profile>.md/.png/.json go (default: {RESULTS_DIR})",
    )
    return parser


def setup(parser, argv=None, sections=("training",)):
    """Parse the arguments, configure torch and return ``(args, profile)``.

    The profile has ``--seeds``, ``--epoch-factor`` and ``--distributions`` applied (where
    the parser has them); its description (every setting of ``sections`` that differs from
    the paper's, see :meth:`Profile.describe`) is printed. ``args.argv`` keeps the
    arguments for the command line of the report.
    """
    import torch

    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    profile = PROFILES[args.profile]
    if getattr(args, "seeds", None) is not None:
        profile = dataclasses.replace(
            profile, seeds=tuple(args.seeds), mnist_scale={**profile.mnist_scale, "seeds": tuple(args.seeds)}
        )
    if getattr(args, "epoch_factor", None) is not None:
        profile = profile.stretched(args.epoch_factor)
    if getattr(args, "distributions", None) is not None:
        profile = dataclasses.replace(
            profile, distributions=tuple((1.0, high) for high in args.distributions)
        )
    if getattr(args, "form", None) is not None:
        profile = dataclasses.replace(profile, form=args.form)
    if "device" not in vars(args):
        args.device = "cpu"
    if args.device is None:
        args.device = "cuda" if args.profile == "paper" and torch.cuda.is_available() else "cpu"
    if args.device == "cpu":
        # The networks are small: one thread per process beats two on a shared machine.
        torch.set_num_threads(1)
    print("\n".join(profile.describe(sections)), flush=True)
    return args, profile


# ---------------------------------------------------------------------------- data
def _shuffled_and_shrunk(bunch, size):
    """A loader's images and labels shuffled once (fixed seed), the images downsampled to
    ``size`` pixels (antialiased; unchanged at their own size), and its source name."""
    from skscale.datasets import rescale_images

    order = np.random.RandomState(0).permutation(len(bunch.target))
    images, labels = bunch.data[order], bunch.target[order]
    side = images.shape[-1]
    if size != side:
        images = rescale_images(images, size / side, output_size=size, antialias=True)
    return images, labels, bunch.source


@lru_cache(maxsize=4)
def load_digits(digit_size, source="auto"):
    """MNIST digits (shuffled once, fixed seed) downsampled to ``digit_size`` pixels.

    Returns ``(images, labels, source_name)``; images are float32 in [0, 1].
    """
    from skscale.datasets import load_mnist

    return _shuffled_and_shrunk(load_mnist(source=source), digit_size)


@lru_cache(maxsize=2)
def load_fashion_items(item_size):
    """Fashion-MNIST's items (shuffled once, fixed seed) downsampled to ``item_size`` pixels.

    Returns ``(images, labels, source_name)``; images are float32 in [0, 1]. An item fills
    its frame, where a digit fills :data:`~skscale.datasets.MNIST_OBJECT_FRACTION` of it.
    """
    from skscale.datasets import load_fashion_mnist

    return _shuffled_and_shrunk(load_fashion_mnist(), item_size)


# The objects a Dynamic Scale split can be made of: MNIST's digits or Fashion-MNIST's items.
OBJECT_DATASETS = ("mnist", "fashion")


def scale_objects(profile, dataset):
    """``(images, labels, object_fraction)`` of ``dataset`` for ``profile``: an object at scale 1
    spans the same pixels either way (a digit's 20 of 28, an item shrunk to that size)."""
    from skscale.datasets import MNIST_OBJECT_FRACTION

    if dataset == "mnist":
        images, labels, _ = load_digits(profile.digit_size)
        return images, labels, MNIST_OBJECT_FRACTION
    if dataset == "fashion":
        images, labels, _ = load_fashion_items(round(profile.digit_size * MNIST_OBJECT_FRACTION))
        return images, labels, 1.0
    raise ValueError(f"dataset must be one of {OBJECT_DATASETS}, got {dataset!r}.")


def dynamic_split(profile, scale_range, seed, *, grid=False, dataset="mnist", distribution="loguniform"):
    """One realisation of Dynamic Scale MNIST for ``profile``, as arrays.

    :func:`skscale.datasets.make_dynamic_split` with the profile's sizes: the digits are
    split (by ``seed``) into disjoint training and test pools; the training pool of
    ``n_train + n_val`` digits gets scales drawn log-uniformly from ``scale_range`` (at
    least 1), and its last ``n_val`` digits are held out for validation; test digits get
    scales from the same distribution. With ``grid=True`` the first ``n_grid_digits``
    test digits are also rendered at every scale of ``scale_grid(*grid_octaves,
    grid_per_octave)`` (``grid_octaves`` None: from 2^0 to the upper bound). Every set is
    normalised with the statistics of the training pool.

    ``dataset="fashion"`` takes Fashion-MNIST's items instead (:func:`scale_objects`) and
    ``distribution`` (``"loguniform"`` or ``"lognormal"``) is that of
    :func:`skscale.datasets.make_dynamic_split`.

    Returns
    -------
    data : dict
        ``X_train, y_train, s_train, X_val, y_val, s_val, X_test, y_test, s_test`` and,
        with ``grid``, ``X_grid, y_grid, s_grid`` (images of shape (n, 1, canvas, canvas)).
    """
    from skscale.datasets import make_dynamic_split, scale_grid

    images, labels, object_fraction = scale_objects(profile, dataset)
    octaves = profile.grid_octaves or (0.0, float(np.log2(scale_range[1])))
    split = make_dynamic_split(
        images,
        labels,
        n_train=profile.n_train + profile.n_val,
        n_test=profile.n_test,
        scale_range=scale_range,
        canvas_size=profile.canvas_size,
        distribution=distribution,
        grid=scale_grid(*octaves, profile.grid_per_octave) if grid else None,
        n_grid=profile.n_grid_digits if grid else None,
        object_fraction=object_fraction,
        random_state=seed,
    )
    sets = ("train", "test", "grid") if grid else ("train", "test")
    data = {}
    for name in sets:
        data[f"X_{name}"], data[f"y_{name}"], data[f"s_{name}"] = (
            split[f"X_{name}"],
            split[f"y_{name}"],
            split[f"scales_{name}"],
        )
    for key in ("X", "y", "s"):
        pool = data[f"{key}_train"]
        data[f"{key}_train"], data[f"{key}_val"] = pool[: profile.n_train], pool[profile.n_train :]
    return data


def fit_table1(
    data,
    profile,
    seed,
    device="cpu",
    *,
    sigma_basis=2.0,
    isr=3.0,
    parameterisation="isr",
    max_epochs=None,
    **params,
):
    """Train the paper's Table-1 network on ``data["X_train"]`` as the authors do.

    ``sigma_basis`` is in the paper's units and is multiplied by ``profile.shrink``. The
    fit validates on ``data["X_val"]`` after every epoch and ends with the weights (and
    scales) of its best validation epoch (:func:`checkpoint`); the learning rates follow
    :func:`lr_schedule`.
    """
    from skscale import ScaleEquivariantClassifier

    epochs = profile.max_epochs if max_epochs is None else max_epochs
    train_split, callbacks = validation(data["X_val"], data["y_val"], profile.checkpoint_monitor, epochs)
    add_profile_lr_schedule(callbacks, profile, parameterisation)
    params.setdefault("callbacks", callbacks)
    clf = ScaleEquivariantClassifier(
        architecture="table1",
        n_scales=3,
        parameterisation=parameterisation,
        init_sigma_basis=sigma_basis * profile.shrink,
        init_isr=isr,
        kernel_extent=profile.kernel_extent,
        module__max_order=profile.max_order,
        module__conv_kwargs={"index_set": profile.index_set},
        max_epochs=epochs,
        batch_size=profile.batch_size,
        lr=profile.lr,
        scale_lr=profile.scale_lr,
        scale_warmup_epochs=profile.scale_warmup_epochs,
        train_split=train_split,
        device=device,
        random_state=seed,
        **params,
    )
    return clf.fit(data["X_train"], data["y_train"])


def validation(X_val, y_val, monitor, max_epochs, patience=None):
    """``(train_split, callbacks)`` of a fit that validates on ``(X_val, y_val)`` after every
    epoch and ends with its best ``monitor`` epoch restored (:func:`checkpoint`; with
    ``patience``, it stops that many epochs without a better one).

    ``X_val`` is ``(n, channels, height, width)``, or ``(n, height, width)`` single-channel
    images (given a channel axis, as the network reads them).
    """
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    X_val = np.asarray(X_val, dtype=np.float32)
    if X_val.ndim == 3:
        X_val = X_val[:, None]
    valid = Dataset(X_val, np.asarray(y_val, dtype=np.int64))
    return predefined_split(valid), [("checkpoint", checkpoint(monitor, max_epochs, patience))]


def checkpoint(monitor, max_epochs, patience=None):
    """skorch ``EarlyStopping`` that restores the best ``monitor`` epoch; it stops training
    after ``patience`` epochs without a better one (None: never, all ``max_epochs`` run).

    ``monitor`` is ``"valid_acc"`` (higher is better) or ``"valid_loss"``; at the end of
    training the module (weights and internal scales) is reloaded from the best epoch.
    """
    from skorch.callbacks import EarlyStopping

    return EarlyStopping(
        monitor=monitor,
        lower_is_better=monitor != "valid_acc",
        patience=max_epochs + 1 if patience is None else patience,
        threshold=0.0,
        threshold_mode="abs",
        load_best=True,
        sink=lambda *args, **kwargs: None,
    )


class UntilConverged(Callback):
    """skorch callback: train until the validation error has converged, decaying the rates.

    After every epoch it asks :func:`benchmarks.stats.converged` of the validation errors
    (``valid_acc``), once the epochs since the last decay fill its window (the new rates
    get that many epochs before the next verdict): the first ``decays`` times the answer
    is yes, the weights' learning rate is multiplied by ``weight_gamma`` and the internal
    scales' (:data:`skscale.callbacks.SCALE_PARAM_GROUP`) by ``scale_gamma``; the next
    time, training stops (``max_epochs`` caps it). Every epoch records in the history the
    decays made so far, ``lr_decays``, and whether training stops there, ``stop``; with
    ``defer_stop`` it only records that and :class:`StopWhenRecorded`, listed after it,
    stops the fit (so that a checkpoint between them saves the last epoch, as
    :func:`resumable_fit` arranges). The rates live in the optimiser, so a fit resumed
    from a checkpoint of both continues the same schedule.
    """

    def __init__(self, decays, weight_gamma, scale_gamma, defer_stop=False):
        self.decays = decays
        self.weight_gamma = weight_gamma
        self.scale_gamma = scale_gamma
        self.defer_stop = defer_stop

    def on_epoch_end(self, net, **kwargs):
        done = [row.get("lr_decays", 0) for row in net.history[:-1]]
        current = done[-1] if done else 0
        # Epochs trained at the current rates: those after the epoch of the last decay.
        since = len(net.history) - (done.index(current) + 1 if current else 0)
        converged = since >= stats.CONVERGENCE_WINDOW and stats.converged(val_history(net))
        stop = converged and current == self.decays
        if converged and not stop:
            for group in net.optimizer_.param_groups:
                scales = group.get("name") == SCALE_PARAM_GROUP
                group["lr"] *= self.scale_gamma if scales else self.weight_gamma
            current += 1
        net.history.record("lr_decays", current)
        net.history.record("stop", stop)
        if stop and not self.defer_stop:
            raise KeyboardInterrupt  # skorch ends the fit as after EarlyStopping


class StopWhenRecorded(Callback):
    """skorch callback: end the fit after an epoch whose history records ``stop``
    (:class:`UntilConverged` with ``defer_stop``)."""

    def on_epoch_end(self, net, **kwargs):
        if net.history[-1].get("stop"):
            raise KeyboardInterrupt  # caught by skorch, which then ends the fit


class _StagedCheckpoint(Checkpoint):
    """skorch ``Checkpoint`` that writes its files to a staging folder and then moves them
    into place, history last: an interruption while saving leaves the files of the
    previous epoch whole."""

    def save_model(self, net):
        final = self.dirname
        self.dirname = os.path.join(final, "staging")
        os.makedirs(self.dirname, exist_ok=True)
        try:
            super().save_model(net)
        finally:
            staging, self.dirname = self.dirname, final
        names = sorted(os.listdir(staging), key=lambda name: name.endswith("history.json"))
        for name in names:
            os.replace(os.path.join(staging, name), os.path.join(final, name))


def _last_history(folder):
    """The history file of the last epoch :func:`resumable_fit` saved in ``folder``."""
    return Path(folder) / "last_history.json"


def saved_epochs(folder):
    """The history rows of the epochs :func:`resumable_fit` saved in ``folder`` (none: ``[]``)."""
    saved = _last_history(folder)
    return json.loads(saved.read_text()) if saved.exists() else []


def resumable_fit(clf, X, y, folder, max_epochs):
    """Fit ``clf`` (validating on its ``train_split``) so that a fit cut short continues.

    After every epoch the network, the optimiser and the history are saved in ``folder``
    (``last_*``) and, when the validation accuracy is the best so far, the network alone
    (``best_*``), which is restored at the end. If ``folder`` already holds a saved epoch,
    the fit continues from it for the epochs left of ``max_epochs`` (none if that epoch
    ended the fit) instead of starting over; the continued epochs are shuffled and
    augmented afresh, so the result is not the one an uninterrupted fit would have given.
    Training may end early only through the history's ``stop`` (its
    :class:`UntilConverged` callbacks are made to defer to :class:`StopWhenRecorded`, which
    runs after the last checkpoint); any other interruption, such as Ctrl-C, which skorch
    would swallow, raises ``KeyboardInterrupt`` here instead of passing for a finished fit.
    ``clf`` must not be fitted yet and its callbacks must record ``valid_acc``. Returns
    ``clf``, fitted, with the best epoch restored.
    """
    folder = Path(folder)
    best = Checkpoint(
        monitor="valid_acc_best",
        dirname=str(folder),
        fn_prefix="best_",
        f_optimizer=None,
        f_criterion=None,
        f_history=None,
        event_name=None,
        load_best=True,
    )
    last = _StagedCheckpoint(
        monitor=None, dirname=str(folder), fn_prefix="last_", f_criterion=None, event_name=None
    )
    callbacks = list(clf.callbacks or [])
    for _, callback in callbacks:
        if isinstance(callback, UntilConverged):
            callback.set_params(defer_stop=True)
    clf.set_params(
        callbacks=[
            ("best_checkpoint", best),
            *callbacks,
            ("last_checkpoint", last),
            ("stop", StopWhenRecorded()),
        ]
    )
    saved = _last_history(folder)
    if not saved.exists():
        clf.set_params(max_epochs=max_epochs).fit(X, y)
    else:
        X = np.asarray(X)
        clf.set_params(image_shape=X.shape[1:], classes=np.unique(y)).initialize()
        clf.load_params(
            f_params=folder / "last_params.pt", f_optimizer=folder / "last_optimizer.pt", f_history=saved
        )
        log(f"{folder.name}: continuing after epoch {len(clf.history)}")
        left = 0 if clf.history[-1].get("stop") else max(0, max_epochs - len(clf.history))
        clf.set_params(max_epochs=left).partial_fit(X, y)
    if len(clf.history) < max_epochs and not clf.history[-1].get("stop"):
        raise KeyboardInterrupt(
            f"the fit was interrupted after epoch {len(clf.history)} of at most {max_epochs}; "
            f"its epochs are saved in {folder}: run it again to continue"
        )
    return clf


def val_history(clf):
    """The validation error (%) after every epoch of a fit that validated (``valid_acc``)."""
    return [100.0 * (1.0 - float(accuracy)) for accuracy in clf.history[:, "valid_acc"]]


def journal_path(markdown):
    """The append-only fit journal beside a results file: ``<stem>.fits.jsonl``
    (:func:`run_fits_resumable`)."""
    return Path(markdown).with_suffix(".fits.jsonl")


def checkpoints_path(journal):
    """The folder of the epoch checkpoints of the fits in progress beside a fit journal:
    ``<stem>.checkpoints`` (:func:`resumable_fit`)."""
    journal = Path(journal)
    return journal.with_name(journal.name.removesuffix(".fits.jsonl") + ".checkpoints")


def best_epoch(clf):
    """``(epoch, validation error %)`` of the epoch a fit restored at its end: the best
    ``monitor`` epoch of its :func:`checkpoint`, or else (:func:`resumable_fit`) the last
    epoch whose ``valid_acc`` was a new best."""
    stopping = dict(clf.callbacks_).get("checkpoint")
    if stopping is not None:
        epoch = int(stopping.best_epoch_)
        row = next(r for r in clf.history if r["epoch"] == epoch)
    else:
        row = [r for r in clf.history if r["valid_acc_best"]][-1]
    return int(row["epoch"]), 100.0 * (1.0 - float(row["valid_acc"]))


def _step_factor(epoch, step, gamma):
    return gamma ** (epoch // step) if step else 1.0


def _milestone_factor(epoch, milestones, gamma):
    return gamma ** sum(epoch >= m for m in milestones)


def add_profile_lr_schedule(callbacks, profile, parameterisation):
    """Append to ``callbacks`` the profile's learning-rate schedule (:func:`lr_schedule`), if any;
    the scale rate is scheduled only for a learned ``parameterisation``."""
    schedule = lr_schedule(
        profile.lr_step,
        profile.lr_gamma,
        profile.scale_lr_milestones,
        profile.scale_lr_gamma,
        learned=parameterisation != "fixed",
    )
    if schedule is not None:
        callbacks.append(("lr_schedule", schedule))
    return callbacks


def lr_schedule(lr_step, lr_gamma, scale_milestones, scale_gamma, *, learned):
    """skorch ``LRScheduler`` of the authors' two schedules, or None when both are constant.

    The weights' rate is multiplied by ``lr_gamma`` every ``lr_step`` epochs; with
    ``learned`` (the classifier then has a second parameter group, the scales) the scale
    rate is multiplied by ``scale_gamma`` at each epoch of ``scale_milestones``. The
    classifier's per-step scale warm-up multiplies on top.
    """
    from functools import partial

    from skorch.callbacks import LRScheduler
    from torch.optim.lr_scheduler import LambdaLR

    weights = partial(_step_factor, step=lr_step, gamma=lr_gamma)
    scales = partial(_milestone_factor, milestones=tuple(scale_milestones), gamma=scale_gamma)
    if not lr_step and not (learned and scale_milestones):
        return None
    return LRScheduler(policy=LambdaLR, lr_lambda=[weights, scales] if learned else [weights])


def step_decay(step_size):
    """skorch callback dividing the learning rate by ten every ``step_size`` epochs."""
    from skorch.callbacks import LRScheduler
    from torch.optim.lr_scheduler import StepLR

    return LRScheduler(policy=StepLR, step_size=step_size, gamma=0.1)


def error_rate(clf, X, y):
    """Classification error in percent (the paper's unit)."""
    return 100.0 * (1.0 - float(np.mean(clf.predict(X) == y)))


def isr_history(clf):
    """The ISR after every epoch (from the classifier's scale trajectory)."""
    from skscale.callbacks import scale_history

    return scale_history(clf, "isr").tolist()


def last_dynamic_split(profile, seed, scale_range=None, *, grid=False, **options):
    """:func:`dynamic_split` of ``scale_range`` (default: the last, widest distribution of
    ``profile``), cached; ``options`` (``dataset``, ``distribution``) as there.

    A process keeps the last realisation it rendered, so that worker processes fitting
    several networks on one realisation render it once.
    """
    scale_range = tuple(profile.distributions[-1] if scale_range is None else scale_range)
    key = (repr(profile), seed, scale_range, grid, tuple(sorted(options.items())))
    if key not in _LAST_SPLIT:
        _LAST_SPLIT.clear()
        _LAST_SPLIT[key] = dynamic_split(profile, scale_range, seed, grid=grid, **options)
    return _LAST_SPLIT[key]


_LAST_SPLIT = {}


def run_fits(function, tasks, n_jobs=1, costs=None):
    """``[function(*task) for task in tasks]``, in order, on ``n_jobs`` worker processes.

    With ``n_jobs > 1`` the calls run on joblib's loky backend with one torch thread per
    worker (:func:`skscale.search_backends.search_backend`); every fit is seeded, so the
    results are those of one process. ``function`` must be importable (a module-level
    function of a benchmark module). ``costs`` (one expected cost per task, any unit)
    dispatches the tasks most expensive first (:func:`dispatch_order`); the results still
    come back in task order.
    """
    tasks = list(tasks)
    order = dispatch_order(costs, len(tasks))
    if n_jobs == 1:
        return [function(*task) for task in tasks]
    import joblib

    function = _importable(function)
    from skscale.search_backends import search_backend

    with search_backend("loky", n_jobs=n_jobs, torch_threads=1) as backend:
        log(f"{len(tasks)} fits on {backend.description}")
        done = joblib.Parallel(verbose=10)(joblib.delayed(function)(*tasks[index]) for index in order)
    results = [None] * len(tasks)
    for index, result in zip(order, done):
        results[index] = result
    return results


def _indexed_call(function, index, args):
    return index, function(*args)


def iterate_fits(function, tasks, n_jobs=1, costs=None):
    """``(index, function(*tasks[index]))`` for every task, each as soon as it finishes.

    As :func:`run_fits` (``n_jobs`` loky workers with one torch thread each, the costliest
    tasks dispatched first), but a generator in the order the fits *finish*, so that a
    caller can store every result at once.
    """
    tasks = list(tasks)
    order = dispatch_order(costs, len(tasks))
    if n_jobs == 1:
        for index in order:
            yield index, function(*tasks[index])
        return
    import joblib

    function = _importable(function)
    from skscale.model_selection import search_backend

    with search_backend("loky", n_jobs=n_jobs, torch_threads=1) as backend:
        log(f"{len(tasks)} fits on {backend.description}")
        yield from joblib.Parallel(verbose=10, return_as="generator_unordered")(
            joblib.delayed(_indexed_call)(function, index, tasks[index]) for index in order
        )


def read_journal(journal):
    """``{key: result}`` of the fits an append-only JSONL journal holds (empty if absent).

    Every line is ``{"key": ..., "result": ...}``; a last line cut short by an interrupted
    write is ignored (its fit runs again). A later line for the same key wins.
    """
    journal = Path(journal)
    if not journal.exists():
        return {}
    finished = {}
    lines = journal.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            finished[entry["key"]] = entry["result"]
        except (json.JSONDecodeError, KeyError, TypeError):
            if number < len(lines):
                raise ValueError(f"{journal}, line {number}, is not a fit record: {line[:80]!r}.") from None
            log(f"{journal.name}: ignoring its last line, cut short by an interrupted write")
    return finished


def append_to_journal(journal, key, result):
    """Append one fit's ``result`` under ``key`` to ``journal`` and flush it to disk."""
    journal = Path(journal)
    journal.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"key": key, "result": result}, default=_json_default)
    with journal.open("a") as stream:
        stream.write(line + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def run_fits_resumable(function, tasks, keys, journal, n_jobs=1, costs=None):
    """:func:`run_fits` that stores every result in ``journal`` and skips the stored ones.

    Each fit's result (a JSON-serialisable record) is appended to the JSONL file
    ``journal`` under its ``key`` as soon as the fit finishes; a task whose key the
    journal already holds is not run again but read back. A run of many hours can so be
    stopped at any point (only the fits in progress are lost) and continued by running
    the same command again. ``keys`` (strings, one per task, unique) must name
    everything that determines a fit's result: change a setting and the key changes.

    Returns
    -------
    results : list
        One result per task, in task order (read back from JSON for the stored ones:
        tuples come back as lists).
    """
    tasks, keys = list(tasks), list(keys)
    if len(keys) != len(tasks) or len(set(keys)) != len(keys):
        raise ValueError(f"keys must be {len(tasks)} distinct strings, one per task, got {len(keys)} keys.")
    finished = read_journal(journal)
    pending = [index for index, key in enumerate(keys) if key not in finished]
    if len(pending) < len(tasks):
        log(f"{len(tasks) - len(pending)} of {len(tasks)} fits read from {Path(journal).name}")
    pending_costs = None if costs is None else [costs[index] for index in pending]
    fits = iterate_fits(function, [tasks[index] for index in pending], n_jobs, pending_costs)
    for position, result in fits:
        key = keys[pending[position]]
        append_to_journal(journal, key, result)
        # What a later run reads back: the JSON round trip of the record.
        finished[key] = json.loads(json.dumps(result, default=_json_default))
    return [finished[key] for key in keys]


def fit_key(**fields):
    """A journal key: the fields as canonical JSON (sorted keys, no spaces).

    >>> fit_key(row="cnn/fixed", seed=0, setting="plain")
    '{"row":"cnn/fixed","seed":0,"setting":"plain"}'
    """
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=_json_default)


def protocol_digest(settings):
    """A short digest of a settings mapping (its canonical JSON), for journal keys."""
    return hashlib.sha256(fit_key(**settings).encode()).hexdigest()[:16]


def dispatch_order(costs, n_tasks):
    """Task indices, most expensive first (ties in task order); task order without ``costs``.

    Workers take the next task as they free up, so starting the longest fits first (the
    longest-processing-time rule) keeps one long fit from running alone at the end: its
    wall time is at most 4/3 of the best schedule's (Graham, 1969).
    """
    if costs is None:
        return list(range(n_tasks))
    costs = [float(cost) for cost in costs]
    if len(costs) != n_tasks or not all(math.isfinite(cost) and cost >= 0 for cost in costs):
        raise ValueError(f"costs must hold one finite cost >= 0 per task ({n_tasks}), got {costs}.")
    return sorted(range(n_tasks), key=lambda index: (-costs[index], index))


def _importable(function):
    """``function`` as worker processes can import it.

    For a script run as ``python -m benchmarks.x``, the importable ``benchmarks.x.function``:
    ``__main__``'s copy would be pickled by value and drag along globals that pickle by
    reference to a ``__main__`` the workers lack (an ``lru_cache``-wrapped helper, for one).
    """
    if function.__module__ == "__main__" and getattr(sys.modules["__main__"], "__spec__", None):
        module = importlib.import_module(sys.modules["__main__"].__spec__.name)
        function = getattr(module, function.__name__)
    return function


def _call_with_threads(threads, function, args):
    import torch

    torch.set_num_threads(threads)
    return function(*args)


def run_in_fresh_processes(function, args, n_runs):
    """``[function(*args) for _ in range(n_runs)]``, every call in a new process, one after another.

    A timing repeated in fresh processes shows the spread that one process hides (memory
    layout, allocator state). Every process uses this one's number of torch threads.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    function, results = _importable(function), []
    for _ in range(n_runs):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results.append(pool.submit(_call_with_threads, torch.get_num_threads(), function, args).result())
    return results


# ---------------------------------------------------------------------------- shared experiments
# The fixed-ISR sweep (Fig. 3) and the learning of sigma_basis and the ISR (Table 2) are
# read by several scripts (isr_sweep, learn_isr, kernel_extent, training_length).
INIT_SIGMA_BASIS, INIT_ISR = LEARN_START


def recommended_isr(scales):
    """ISR_hyp of the tolerance model (paper's tau) fitted on observed data scales."""
    from skscale import ToleranceModel

    return float(ToleranceModel(n_scales=3).fit(scales).isr_[0])


def run_sweep(profile, device="cpu", n_jobs=1):
    """Train every (distribution, fixed ISR, seed) of the sweep (paper Figs. 3 and 4), the
    fits spread over ``n_jobs`` processes (:func:`run_fits`).

    Returns
    -------
    results : dict
        Keyed by ``f"{high:g}"`` of each distribution: ``seeds``,
        ``errors[isr_index][seed_index]`` (test, percent), ``val_errors`` (validation error
        of the restored checkpoint, same layout), ``grid_scales``,
        ``grid_errors[isr_index][seed_index][scale_index]`` (percent), ``recommended_isr``
        (per seed), ``n_test`` and the ``isr_grid``.
    """
    tasks = [
        (profile, (low, high), seed, isr, device)
        for low, high in profile.distributions
        for seed in profile.seeds
        for isr in profile.isr_grid
    ]
    records = iter(run_fits(fit_fixed, tasks, n_jobs))
    results = {}
    for low, high in profile.distributions:
        entry = {
            "range": [low, high],
            "isr_grid": list(profile.isr_grid),
            "seeds": list(profile.seeds),
            "n_test": profile.n_test,
            "recommended_isr": [],
            "errors": [[] for _ in profile.isr_grid],
            "val_errors": [[] for _ in profile.isr_grid],
            "grid_errors": [[] for _ in profile.isr_grid],
        }
        for seed in profile.seeds:
            for index, isr in enumerate(profile.isr_grid):
                record = next(records)
                if index == 0:
                    entry["recommended_isr"].append(record["recommended_isr"])
                entry["errors"][index].append(record["error"])
                entry["val_errors"][index].append(record["val_error"])
                entry["grid_errors"][index].append(record["grid_errors"])
                entry["grid_scales"] = record["grid_scales"]
                log(
                    f"[{low:g}, {high:g}] seed {seed} ISR {isr:.3g}: validation error "
                    f"{record['val_error']:.2f} %, test error {record['error']:.2f} %"
                )
        results[f"{high:g}"] = entry
    return results


def fit_fixed(profile, scale_range, seed, isr, device="cpu"):
    """One fit of the sweep: fixed scales (sigma_basis :data:`SWEEP_SIGMA_BASIS`, ``isr``)
    on one realisation, with its test, validation and per-scale (grid) errors."""
    from skscale.metrics import error_per_scale

    data = last_dynamic_split(profile, seed, scale_range, grid=True)
    clf = fit_table1(
        data, profile, seed, device, sigma_basis=SWEEP_SIGMA_BASIS, isr=isr, parameterisation="fixed"
    )
    scales, per_scale, _ = error_per_scale(clf, data["X_grid"], data["y_grid"], data["s_grid"], bins="unique")
    return {
        "error": error_rate(clf, data["X_test"], data["y_test"]),
        "val_error": best_epoch(clf)[1],
        "grid_scales": scales.tolist(),
        "grid_errors": (100 * per_scale).tolist(),
        "recommended_isr": recommended_isr(data["s_train"]),
    }


@dataclasses.dataclass(frozen=True)
class BestFixed:
    """The fixed ISR with the lowest mean validation error, and its test errors."""

    isr: float
    index: int
    val_error: float
    errors: tuple

    @property
    def mean(self):
        return float(np.mean(self.errors))

    @property
    def sd(self):
        return stats.sample_std(self.errors)


def best_fixed(entry):
    """The fixed ISR of a :func:`run_sweep` entry chosen on VALIDATION error, never on test.

    Returns a :class:`BestFixed` whose ``errors`` are its per-seed test errors.
    """
    means = [np.mean(errors) for errors in entry["val_errors"]]
    best = int(np.argmin(means))
    return BestFixed(entry["isr_grid"][best], best, float(means[best]), tuple(entry["errors"][best]))


def run_learning(profile, device, *, start=None):
    """Learn the internal scales with ``profile.form`` from ``start`` (``(sigma_basis, ISR)``,
    paper units; default :data:`~benchmarks.config.LEARN_START`) on every distribution and
    seed of ``profile`` (paper Table 2 and Fig. 6).

    Returns
    -------
    results : dict
        Keyed by ``f"{high:g}"``: ``form``, ``seeds``, ``n_test`` and per-seed lists
        ``sigma_basis`` (paper units), ``isr``, ``errors`` (test, percent), ``val_errors``,
        ``best_epoch`` (the restored checkpoint) and ``isr_history`` (the initial ISR, then
        one per epoch).
    """
    sigma_basis, isr = LEARN_START if start is None else start
    results = {}
    for low, high in profile.distributions:
        entry = {
            "form": profile.form,
            "start": [sigma_basis, isr],
            "seeds": list(profile.seeds),
            "n_test": profile.n_test,
            "sigma_basis": [],
            "isr": [],
            "errors": [],
            "val_errors": [],
            "best_epoch": [],
            "isr_history": [],
        }
        for seed in profile.seeds:
            data = dynamic_split(profile, (low, high), seed)
            clf = fit_table1(
                data, profile, seed, device, sigma_basis=sigma_basis, isr=isr, parameterisation=profile.form
            )
            record_learned(entry, clf, profile, data, initial_isr=isr)
            log(
                f"[{low:g}, {high:g}] {profile.form} seed {seed}: "
                f"sigma_basis {entry['sigma_basis'][-1]:.3f}, ISR {clf.isr_:.3f} "
                f"(epoch {entry['best_epoch'][-1]}), test error {entry['errors'][-1]:.2f} %"
            )
        results[f"{high:g}"] = entry
    return results


def record_learned(entry, clf, profile, data, initial_isr):
    """Append a learned fit's scales (paper units), errors, checkpoint epoch and ISR history."""
    epoch, val_error = best_epoch(clf)
    entry["sigma_basis"].append(float(clf.sigma_basis_) / profile.shrink)
    entry["isr"].append(float(clf.isr_))
    entry["errors"].append(error_rate(clf, data["X_test"], data["y_test"]))
    entry["val_errors"].append(val_error)
    entry["best_epoch"].append(epoch)
    entry["isr_history"].append([initial_isr] + isr_history(clf))


def within_one_std(gap, std):
    """Whether an error gap is at most one standard deviation (percent values, so exact
    decimals such as 8.20 - 8.05 = 0.15 must not fail on floating-point rounding)."""
    return stats.within_k_se(gap, std, 1.0)


# ---------------------------------------------------------------------------- formatting
def mean_std(values, digits=2):
    """``"mean ± sd"`` of ``values`` with the sample std (ddof=1; a single value gets ``± –``)."""
    return stats.mean_sd(values, digits)


def learned_cells(record):
    """The table cells of one learned configuration: sigma_basis, ISR and test error, mean ± sd."""
    return [
        mean_std(record["sigma_basis"], 3),
        mean_std(record["isr"], 3),
        mean_std(record["errors"]),
    ]


def markdown_table(header, rows):
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- report
class Report:
    """Collects a benchmark's results and writes ``<name>-<profile>.{md,png,json}``.

    Parameters
    ----------
    name : str
        Script name, e.g. ``"isr_sweep"``.
    title : str
        Heading of the markdown file.
    args : argparse.Namespace
        Parsed arguments (``profile``, ``output_dir``, ``device``).
    profile : Profile
        The profile in use (its description goes into the file).
    profile_sections : tuple of str, default=("training",)
        The parts of the profile the script reads (see :meth:`Profile.describe`); they go
        into the markdown and the JSON.
    variant : str, optional
        Appended to the file names (``<name>-<profile>-<variant>``), e.g. the learned form.
    """

    def __init__(self, name, title, args, profile, profile_sections=("training",), variant=None):
        self.name, self.title, self.args, self.profile = name, title, args, profile
        self.variant = variant
        self.profile_sections = tuple(profile_sections)
        self.sections = []
        self.raw = {}
        self.start = time.perf_counter()
        self.command = command_line(name, getattr(args, "argv", sys.argv[1:]))

    def add(self, heading, text):
        """Append a markdown section."""
        self.sections.append((heading, text))

    def paths(self):
        suffix = f"-{self.variant}" if self.variant else ""
        stem = Path(self.args.output_dir) / f"{self.name}-{self.profile.name}{suffix}"
        return stem.with_suffix(".md"), stem.with_suffix(".png"), stem.with_suffix(".json")

    def write(self, figure=None):
        """Write the markdown (and the figure and raw JSON); return the markdown path."""
        markdown, png, raw = self.paths()
        markdown.parent.mkdir(parents=True, exist_ok=True)
        wall = time.perf_counter() - self.start
        lines = [f"# {self.title}", ""]
        for heading, text in self.sections:
            lines += [f"## {heading}", "", text.rstrip(), ""]
        if figure is not None:
            figure.savefig(png, dpi=110, bbox_inches="tight")
            lines += ["## Figure", "", f"![{self.name}]({png.name})", ""]
        lines += [
            "## Run",
            "",
            f"- command: `{self.command}`",
            f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            *provenance_lines(),
            f"- device: {self.args.device}",
            f"- wall time: {wall / 60:.1f} min ({wall:.0f} s)",
            "",
            "Profile (differences from the paper's protocol in parentheses):",
            "",
            "```",
            *self.profile.describe(self.profile_sections),
            "```",
            "",
        ]
        if "training" in self.profile_sections:
            lines += [
                (
                    "Differences from the authors' protocol that the `paper` profile keeps "
                    "(`benchmarks.config.PAPER_DIFFERENCES`):"
                ),
                "",
                paper_differences_text(),
                "",
            ]
        markdown.write_text("\n".join(lines))
        raw.write_text(
            json.dumps(
                {
                    "profile": profile_dict(self.profile, self.profile_sections),
                    "wall_time_s": wall,
                    "results": self.raw,
                },
                indent=1,
                default=_json_default,
            )
        )
        print(f"wrote {markdown} ({wall / 60:.1f} min)", flush=True)
        return markdown


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def profile_dict(profile, sections=("training",)):
    """The fields of ``profile`` that :meth:`Profile.describe` lists for ``sections``, as a dict."""
    fields = dataclasses.asdict(profile)
    return {
        key: value
        for key, value in fields.items()
        if (key if key in ("speed", "memory") else "training") in sections
    }


def command_line(name, argv):
    """The command that reruns the script ``benchmarks/<name>.py`` from the repository root.

    No machine path goes into a report: an absolute path inside the repository is written
    relative to its root, any other absolute path as ``PATH``.
    """
    return " ".join(["python", "-m", f"benchmarks.{name}", *(shlex.quote(_portable(str(a))) for a in argv)])


_REPOSITORY = Path(__file__).resolve().parent.parent


def _portable(argument):
    """``argument``, or the ``--option=value`` form of it, without a machine path."""
    option, equals, value = argument.partition("=") if argument.startswith("--") else ("", "", argument)
    if not Path(value).is_absolute():
        return argument
    try:
        value = Path(value).resolve().relative_to(_REPOSITORY).as_posix() or "."
    except ValueError:
        value = "PATH"
    return f"{option}{equals}{value}"


def provenance_lines():
    """``- machine: ...`` and ``- versions: ...`` lines (from :func:`skscale.utils.system_info`)."""
    info = system_info()
    return [f"- machine: {machine_line(info)}", f"- versions: {versions_line(info)}"]


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def log_axis(ax, ticks, axis="x"):
    """Log scale on ``axis`` with plain labels at ``ticks`` only."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(FixedLocator(list(ticks)))
    target.set_major_formatter(FormatStrFormatter("%.3g"))
    target.set_minor_locator(NullLocator())


def log(message):
    """Print a progress line with the time of day."""
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", flush=True)
