"""The training loop shared by every model: Adam, clipping, validation, early stopping.

``train_loop`` knows nothing about densities or weights: it takes a
``batch_loss_fn(index, rng)`` (an unbiased estimate of the objective on a
batch of training positions) and a ``validation_loss_fn()``, and returns a
``History``. ``gbi_npe.fit`` builds those for the weighted NPE objective; the
surrogates (NLE, NRE, score models) can build their own.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import TrainConfig
from .io import atomic_write_bytes

#: ``batch_loss_fn(index (b,) int, rng) -> scalar tensor`` for ``train_loop``.
BatchLossFn = Callable[[np.ndarray, np.random.Generator], torch.Tensor]

# metadata of the History fields that hold one entry per epoch
_PER_EPOCH = {"per_epoch": True}


@dataclass(frozen=True)
class History:
    """What happened during training.

    Attributes:
        train_loss: per epoch, the minibatch losses averaged with weights
            ``|B| / N`` (the training objective, while the network changed).
        validation_loss: per epoch, the weighted validation loss (empty
            without validation).
        best_epoch: index of the epoch whose weights were kept (``None``
            without validation: the last weights are kept).
        stopped_early: stopped by patience before ``max_epochs``.
        seconds: wall time of the loop.
        epoch_seconds: wall time of each epoch (training and validation).
        device: where it ran.
        n_train: training rows (or base pairs).
        n_validation: validation rows (or base pairs).
        learning_rates: the step size used in each epoch.
        validation_parts: per epoch, the parts of the validation loss (for a
            continuous beta: the loss at each temperature of the validation
            grid), so one can see which part stops improving first.
        validation_part_labels: what each part is (e.g. ``"beta=0.1"``).
        validation_part_best_epochs: with ``TrainConfig.per_temperature``,
            the epoch whose weights each part keeps (after the fallback of
            parts with too few effective validation pairs, see
            ``TrainConfig.per_temperature_min_ess``).
        validation_part_ess: the effective number of validation pairs behind
            each part (Kish's ESS of its weights; the pair count when unweighted).
    """

    train_loss: tuple[float, ...] = field(metadata=_PER_EPOCH)
    validation_loss: tuple[float, ...] = field(metadata=_PER_EPOCH)
    best_epoch: int | None
    stopped_early: bool
    seconds: float
    epoch_seconds: tuple[float, ...] = field(metadata=_PER_EPOCH)
    device: str
    n_train: int
    n_validation: int
    learning_rates: tuple[float, ...] = field(default=(), metadata=_PER_EPOCH)
    validation_parts: tuple[tuple[float, ...], ...] = field(default=(), metadata=_PER_EPOCH)
    validation_part_labels: tuple[str, ...] = ()
    validation_part_best_epochs: tuple[int, ...] = ()
    validation_part_ess: tuple[float, ...] = ()

    @staticmethod
    def per_epoch_fields() -> tuple[str, ...]:
        """Names of the fields with one entry per epoch (in epoch order)."""
        return tuple(f.name for f in fields(History) if f.metadata.get("per_epoch"))

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def best_validation_loss(self) -> float | None:
        return None if self.best_epoch is None else self.validation_loss[self.best_epoch]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["train_loss"] = list(self.train_loss)
        out["validation_loss"] = list(self.validation_loss)
        out["epoch_seconds"] = list(self.epoch_seconds)
        out["learning_rates"] = list(self.learning_rates)
        out["validation_parts"] = [list(p) for p in self.validation_parts]
        out["validation_part_labels"] = list(self.validation_part_labels)
        out["validation_part_best_epochs"] = list(self.validation_part_best_epochs)
        out["validation_part_ess"] = list(self.validation_part_ess)
        return out


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available")
    return torch.device(device)


def _adam(parameters: list[nn.Parameter], learning_rate: float) -> torch.optim.Adam:
    """Adam, fused where this torch supports it for these parameters (same maths, fewer ops)."""
    try:
        return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(parameters, lr=learning_rate)


def _cosine_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The step size of step ``step`` (from 0) of ``total_steps`` on the cosine schedule."""
    floor = config.min_lr_factor
    progress = step / max(1, total_steps - 1)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.learning_rate * (floor + (1.0 - floor) * cosine)


def _decay_learning_rate(optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
    """Multiply the step size by ``config.lr_decay``, never below its floor."""
    floor = config.learning_rate * config.min_lr_factor
    for group in optimizer.param_groups:
        group["lr"] = max(floor, group["lr"] * config.lr_decay)


class _WeightAverage:
    """Exponential moving average of a module's trainable parameters (Polyak averaging).

    The decay warms up: the ``t``-th update (from 1) uses
    ``min(decay, (1 + t) / (10 + t))``, so the average spans about the last
    tenth of the steps taken until that reaches ``1 / (1 - decay)`` steps.
    Without it the average would keep a weight ``decay ** t`` on the initial
    (untrained) weights: 0.25 after 700 steps at 0.998, which on a small data
    set (a few steps per epoch) is hundreds of epochs.
    """

    def __init__(self, parameters: list[nn.Parameter], decay: float) -> None:
        self.parameters = parameters
        self.decay = decay
        self.steps = 0
        self.average = [p.detach().clone() for p in parameters]

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        weight = 1.0 - min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        # one fused call for every tensor (the same values as a lerp_ each)
        torch._foreach_lerp_(self.average, [p.detach() for p in self.parameters], weight)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the live parameters and the average (call twice to undo)."""
        for avg, p in zip(self.average, self.parameters, strict=True):
            live = p.detach().clone()
            p.copy_(avg)
            avg.copy_(live)


class SnapshotMismatch(ValueError):
    """A training snapshot was written by another training (settings, data or network)."""


@dataclass
class _LoopState:
    """Everything ``train_loop`` carries from one epoch to the next (what a snapshot holds)."""

    epoch: int = 0  # the next epoch to run
    train_losses: list[float] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    parts: list[tuple[float, ...]] = field(default_factory=list)
    best: float = math.inf
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    smoothed: float | None = None
    best_smoothed: float = math.inf
    part_smoothed: np.ndarray | None = None
    part_best_smoothed: np.ndarray | None = None
    part_epoch: np.ndarray | None = None
    states_by_epoch: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    stopped: bool = False
    stopped_early: bool = False
    seconds: float = 0.0  # wall time of the epochs run so far

    _ARRAYS = ("part_smoothed", "part_best_smoothed", "part_epoch")

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in self._ARRAYS:  # numpy arrays travel as lists (a weights-only load)
            out[name] = None if out[name] is None else out[name].tolist()
        out["parts"] = [list(p) for p in self.parts]
        return out

    def judge(self, value: float, alpha: float, progress: bool) -> bool:
        """Add a validation loss to the smoothed curve; True if the epoch made no progress.

        Progress is a new best of the smoothed curve, or ``progress`` (some
        validation part improved).
        """
        s = self.smoothed
        self.smoothed = value if s is None else alpha * value + (1 - alpha) * s
        if self.smoothed < self.best_smoothed or progress:
            self.best_smoothed, self.bad_epochs = min(self.smoothed, self.best_smoothed), 0
            return False
        self.bad_epochs += 1
        return True

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> _LoopState:
        state = cls(**{f.name: stored[f.name] for f in fields(cls)})
        for name in cls._ARRAYS:
            value = getattr(state, name)
            if value is not None:
                kind = int if name == "part_epoch" else np.float64
                setattr(state, name, np.asarray(value, dtype=kind))
        state.parts = [tuple(p) for p in state.parts]
        return state


#: settings added to ``TrainConfig`` after snapshots were written, with the value
#: those trainings used: left out of the fingerprint at that value, so they resume.
_ADDED_SETTINGS = {"beta_sampling": "distribution"}


def _fingerprint(
    module: nn.Module, config: TrainConfig, data: str | None, **extra: Any
) -> dict[str, Any]:
    """What a snapshot must share with the training that resumes it (``extra`` too)."""
    volatile = ("progress", "device", "compile")  # same results (up to round-off) either way
    settings = {k: v for k, v in asdict(config).items() if k not in volatile}
    for name, default in _ADDED_SETTINGS.items():
        if settings[name] == default:  # a snapshot written before the setting existed
            del settings[name]
    shapes = [[name, list(t.shape)] for name, t in module.state_dict().items()]
    return {
        "version": 1,
        "settings": json.dumps(settings, sort_keys=True),
        "state_shapes": json.dumps(shapes),
        "data": data,
        **extra,
    }


def _check_snapshot_args(snapshot: Any, seconds: Any) -> None:
    """``snapshot`` a path or ``None``, ``seconds`` a number >= 0; ``ValueError`` otherwise."""
    if snapshot is not None and not isinstance(snapshot, (str, os.PathLike)):
        raise ValueError(f"snapshot must be a file path or None, got {type(snapshot).__name__}")
    number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    if not (number and seconds >= 0):
        raise ValueError(f"snapshot_seconds must be a number >= 0, got {seconds!r}")


def _fingerprint_differences(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    names = {
        "settings": "the training settings",
        "state_shapes": "the network",
        "n_train": "the number of training rows",
        "n_validation": "the number of validation rows",
        "data": "the training data",
        "version": "the snapshot format",
    }
    return [names.get(k, k) for k in now if stored.get(k) != now[k]]


def _save_snapshot(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` written atomically: a kill leaves the old file."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_snapshot(
    path: Path, fingerprint: dict[str, Any], device: torch.device
) -> dict[str, Any] | None:
    """The snapshot at ``path`` (``None`` without one); ``SnapshotMismatch`` if it is another's."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
        stored = payload["fingerprint"]
    except Exception as err:  # a truncated or foreign file
        raise SnapshotMismatch(
            f"{path} is not a training snapshot gbi-npe can read ({type(err).__name__}: {err}); "
            "delete it to train from the start"
        ) from err
    differences = _fingerprint_differences(stored, fingerprint)
    if differences:
        raise SnapshotMismatch(
            f"the training snapshot {path} was written by another training (it differs in "
            f"{', '.join(differences)}); delete it to train from the start"
        )
    return payload


def train_loop(
    module: nn.Module,
    batch_loss_fn: BatchLossFn,
    n_train: int,
    config: TrainConfig,
    validation_loss_fn: Callable[[], float] | None = None,
    *,
    rng: np.random.Generator | None = None,
    n_validation: int = 0,
    description: str = "training",
    validation_parts: tuple[Callable[[], Any], tuple[str, ...]] | None = None,
    part_states: dict[int, dict[str, torch.Tensor]] | None = None,
    snapshot: str | os.PathLike[str] | None = None,
    snapshot_seconds: float = 60.0,
    data_digest: str | None = None,
) -> History:
    """Minibatch Adam with clipping, validation, early stopping and best-weight restore.

    Reusable by any model (the surrogates use it too). Each epoch visits the
    ``n_train`` training positions once in a random order, in batches of
    ``config.batch_size``.

    With ``snapshot``, the loop's whole state (weights, optimizer, weight
    average, random streams, curves, best weights so far) is written to that
    file at the end of an epoch whenever ``snapshot_seconds`` have passed
    since the last write, and a later call with the same file continues from
    it: an interrupted training loses at most the epochs of the last
    ``snapshot_seconds`` (plus the epoch under way), and the resumed run ends
    with exactly the weights and History an uninterrupted one would have
    (``seconds`` apart). The file is removed when training ends.

    Args:
        module: the model, already on its device; its parameters are optimized.
        batch_loss_fn: ``(index (b,), rng) -> loss`` for training positions
            ``index``; an unbiased estimate of the full objective. It must
            keep no state of its own between calls beyond ``rng`` (resuming
            restores ``rng``, torch's generator and the module only).
        n_train: number of training positions.
        config: optimizer and stopping settings.
        validation_loss_fn: ``() -> float`` (called in eval mode, no grad);
            ``None`` disables early stopping.
        rng: randomness of the batch order (and of ``batch_loss_fn``);
            default ``np.random.default_rng(config.seed)``.
        n_validation: recorded in the History.
        description: progress bar label.
        validation_parts: ``(parts_fn, labels)``: after each validation,
            ``parts_fn()`` gives the parts of the loss just computed (one per
            label), recorded in the History.
        part_states: with ``config.per_temperature`` and ``validation_parts``,
            filled with ``{part index: state_dict of its best epoch}`` (parts
            best at the same epoch share one dict object); training then runs
            until no part improves.
        snapshot: a file for the loop's state (see above); ``None``: none.
        snapshot_seconds: least wall time between two snapshot writes (0:
            after every epoch).
        data_digest: a summary of the training data (e.g. a hash) stored in
            the snapshot; a snapshot with another digest is refused.

    Returns:
        The History; ``module`` holds the best weights (or the last, without
        validation) and is left in eval mode.

    Raises:
        FloatingPointError: a training or validation loss is not finite.
        SnapshotMismatch: ``snapshot`` holds the state of another training
            (other settings, network, row counts or ``data_digest``), or is
            not a snapshot.
    """
    rng = np.random.default_rng(config.seed) if rng is None else rng
    _check_snapshot_args(snapshot, snapshot_seconds)
    parameters = [p for p in module.parameters() if p.requires_grad]
    optimizer = _adam(parameters, config.learning_rate)
    average = None if config.ema_decay is None else _WeightAverage(parameters, config.ema_decay)
    first = next(iter(module.parameters()), None)
    if first is None:
        first = next(iter(module.buffers()), None)
    device = first.device if first is not None else torch.device("cpu")
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    snapshot_path = None if snapshot is None else Path(snapshot)
    fingerprint = _fingerprint(
        module, config, data_digest, n_train=n_train, n_validation=n_validation
    )
    payload = None
    if snapshot_path is not None:
        payload = _load_snapshot(snapshot_path, fingerprint, device)
    state = _LoopState() if payload is None else _LoopState.from_dict(payload["loop"])
    if payload is not None:
        module.load_state_dict(payload["module"])
        optimizer.load_state_dict(payload["optimizer"])
        if average is not None:
            average.steps = payload["average_steps"]
            for avg, stored in zip(average.average, payload["average"], strict=True):
                avg.copy_(stored)
        rng.bit_generator.state = payload["numpy_rng"]
    # the plateau test runs on an exponential moving average of the curve
    alpha = 2.0 / (config.smoothing + 1.0)
    per_part = config.per_temperature and validation_parts is not None
    cosine = config.lr_schedule == "cosine"
    steps_per_epoch = -(-n_train // config.batch_size)
    start = time.perf_counter()
    last_save = start

    def write_snapshot() -> None:
        _save_snapshot(
            snapshot_path,
            {
                "fingerprint": fingerprint,
                "loop": state.to_dict(),
                "module": module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "average": None if average is None else average.average,
                "average_steps": None if average is None else average.steps,
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": [torch.cuda.get_rng_state(d) for d in cuda_devices],
            },
        )

    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(config.seed)
        if payload is not None:
            torch.set_rng_state(payload["torch_rng"].cpu())
            # a snapshot from another device kind continues with this one's streams
            if len(payload["cuda_rng"]) == len(cuda_devices):
                for d, stored in zip(cuda_devices, payload["cuda_rng"], strict=True):
                    torch.cuda.set_rng_state(stored.cpu(), d)
        bar = tqdm(
            range(state.epoch, config.max_epochs),
            desc=description,
            disable=not config.progress,
            initial=state.epoch,
            total=config.max_epochs,
        )
        for epoch in bar:
            if state.stopped:
                break
            epoch_start = time.perf_counter()
            module.train()
            order = rng.permutation(n_train)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for lo in range(0, n_train, config.batch_size):
                if cosine:
                    step = epoch * steps_per_epoch + lo // config.batch_size
                    rate = _cosine_rate(config, step, config.max_epochs * steps_per_epoch)
                    for group in optimizer.param_groups:
                        group["lr"] = rate
                index = order[lo : lo + config.batch_size]
                loss = batch_loss_fn(index, rng)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(parameters, config.clip_grad_norm)
                optimizer.step()
                if average is not None:
                    average.update()
                total += loss.detach().to(torch.float64) * (index.size / n_train)
            state.train_losses.append(float(total))
            if not np.isfinite(state.train_losses[-1]):
                raise FloatingPointError(
                    f"the training loss became {state.train_losses[-1]} in epoch {epoch}; lower "
                    "the learning rate or check the data and weights"
                )
            postfix = {"train": f"{state.train_losses[-1]:.4g}"}
            state.learning_rates.append(optimizer.param_groups[0]["lr"])
            if validation_loss_fn is not None:
                module.eval()
                if average is not None:
                    average.swap()  # judge (and keep) the averaged weights
                value = float(validation_loss_fn())
                if not np.isfinite(value):
                    raise FloatingPointError(f"the validation loss is {value} in epoch {epoch}")
                state.validation_losses.append(value)
                if validation_parts is not None:
                    state.parts.append(tuple(float(v) for v in validation_parts[0]()))
                postfix["val"] = f"{value:.4g}"
                if value < state.best:
                    state.best, state.best_epoch = value, epoch
                    state.best_state = copy.deepcopy(module.state_dict())
                part_progress = per_part and _track_parts(state, epoch, alpha, module)
                if average is not None:
                    average.swap()
                plateau = state.judge(value, alpha, part_progress)
                lr_patience = config.lr_patience
                if plateau and lr_patience is not None and state.bad_epochs % lr_patience == 0:
                    _decay_learning_rate(optimizer, config)
            state.epoch_seconds.append(time.perf_counter() - epoch_start)
            bar.set_postfix(postfix)
            state.epoch = epoch + 1
            if validation_loss_fn is not None and state.bad_epochs >= config.patience:
                state.stopped = True
                state.stopped_early = epoch < config.max_epochs - 1
            now = time.perf_counter()
            if snapshot_path is not None and now - last_save >= snapshot_seconds:
                state.seconds += now - last_save
                last_save = now
                write_snapshot()
        bar.close()
    if part_states is not None and state.part_epoch is not None:
        part_states.update(
            {k: state.states_by_epoch[int(e)] for k, e in enumerate(state.part_epoch)}
        )
    if state.best_state is not None:
        module.load_state_dict(state.best_state)
    elif average is not None:
        average.swap()  # without validation, the last average
    module.eval()
    if snapshot_path is not None:
        snapshot_path.unlink(missing_ok=True)
    return History(
        train_loss=tuple(state.train_losses),
        validation_loss=tuple(state.validation_losses),
        best_epoch=state.best_epoch,
        stopped_early=state.stopped_early,
        seconds=state.seconds + time.perf_counter() - last_save,
        epoch_seconds=tuple(state.epoch_seconds),
        device=str(device),
        n_train=n_train,
        n_validation=n_validation,
        learning_rates=tuple(state.learning_rates),
        validation_parts=tuple(state.parts),
        validation_part_labels=() if validation_parts is None else tuple(validation_parts[1]),
        validation_part_best_epochs=()
        if state.part_epoch is None
        else tuple(int(e) for e in state.part_epoch),
    )


def _track_parts(state: _LoopState, epoch: int, alpha: float, module: nn.Module) -> bool:
    """Update each validation part's smoothed best; True if any part improved.

    Each temperature keeps the epoch where its smoothed curve is lowest: a part
    whose validation rests on few effective pairs (small beta) has raw dips
    that are luck, not fit.
    """
    now = np.asarray(state.parts[-1], dtype=np.float64)
    if state.part_best_smoothed is None:
        state.part_best_smoothed = np.full(now.shape, np.inf)
        state.part_epoch = np.zeros(now.shape, dtype=int)
    state.part_smoothed = (
        now if state.part_smoothed is None else alpha * now + (1 - alpha) * state.part_smoothed
    )
    improved = state.part_smoothed < state.part_best_smoothed
    progress = bool(improved.any())
    if progress:
        state.states_by_epoch[epoch] = (
            state.best_state if state.best_epoch == epoch else copy.deepcopy(module.state_dict())
        )
        state.part_epoch[improved] = epoch
        for old in set(state.states_by_epoch) - set(state.part_epoch.tolist()):
            del state.states_by_epoch[old]
    state.part_best_smoothed = np.minimum(state.part_best_smoothed, state.part_smoothed)
    return progress
