"""The training loop shared by every model: Adam, clipping, validation, early stopping.

``train_loop`` knows nothing about densities or weights: it takes a
``batch_loss_fn(index, rng)`` (an unbiased estimate of the objective on a
batch of training positions) and a ``validation_loss_fn()``, and returns a
``History``. ``gbi_npe.fit`` builds those for the weighted NPE objective; the
surrogates (NLE, NRE, score models) can build their own.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import TrainConfig

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
        for avg, p in zip(self.average, self.parameters, strict=True):
            avg.lerp_(p, weight)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the live parameters and the average (call twice to undo)."""
        for avg, p in zip(self.average, self.parameters, strict=True):
            live = p.detach().clone()
            p.copy_(avg)
            avg.copy_(live)


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
) -> History:
    """Minibatch Adam with clipping, validation, early stopping and best-weight restore.

    Reusable by any model (the surrogates use it too). Each epoch visits the
    ``n_train`` training positions once in a random order, in batches of
    ``config.batch_size``.

    Args:
        module: the model, already on its device; its parameters are optimized.
        batch_loss_fn: ``(index (b,), rng) -> loss`` for training positions
            ``index``; an unbiased estimate of the full objective.
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

    Returns:
        The History; ``module`` holds the best weights (or the last, without
        validation) and is left in eval mode.

    Raises:
        FloatingPointError: a training or validation loss is not finite.
    """
    rng = np.random.default_rng(config.seed) if rng is None else rng
    parameters = [p for p in module.parameters() if p.requires_grad]
    optimizer = _adam(parameters, config.learning_rate)
    average = None if config.ema_decay is None else _WeightAverage(parameters, config.ema_decay)
    first = next(iter(module.parameters()), None)
    if first is None:
        first = next(iter(module.buffers()), None)
    device = first.device if first is not None else torch.device("cpu")
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    train_losses: list[float] = []
    validation_losses: list[float] = []
    epoch_seconds: list[float] = []
    learning_rates: list[float] = []
    parts: list[tuple[float, ...]] = []
    best, best_epoch, best_state, bad_epochs = np.inf, None, None, 0
    # the plateau test runs on an exponential moving average of the curve
    alpha = 2.0 / (config.smoothing + 1.0)
    smoothed, best_smoothed = None, np.inf
    per_part = config.per_temperature and validation_parts is not None
    part_smoothed = part_best_smoothed = part_epoch = None
    states_by_epoch: dict[int, dict[str, torch.Tensor]] = {}
    stopped_early = False
    cosine = config.lr_schedule == "cosine"
    steps_per_epoch = -(-n_train // config.batch_size)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(config.seed)
        bar = tqdm(range(config.max_epochs), desc=description, disable=not config.progress)
        for epoch in bar:
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
            train_losses.append(float(total))
            if not np.isfinite(train_losses[-1]):
                raise FloatingPointError(
                    f"the training loss became {train_losses[-1]} in epoch {epoch}; lower the "
                    "learning rate or check the data and weights"
                )
            postfix = {"train": f"{train_losses[-1]:.4g}"}
            learning_rates.append(optimizer.param_groups[0]["lr"])
            if validation_loss_fn is not None:
                module.eval()
                if average is not None:
                    average.swap()  # judge (and keep) the averaged weights
                value = float(validation_loss_fn())
                if not np.isfinite(value):
                    raise FloatingPointError(f"the validation loss is {value} in epoch {epoch}")
                validation_losses.append(value)
                if validation_parts is not None:
                    parts.append(tuple(float(v) for v in validation_parts[0]()))
                postfix["val"] = f"{value:.4g}"
                if value < best:
                    best, best_epoch = value, epoch
                    best_state = copy.deepcopy(module.state_dict())
                part_progress = False
                if per_part:
                    # each temperature keeps the epoch where its smoothed curve is
                    # lowest: a part whose validation rests on few effective pairs
                    # (small beta) has raw dips that are luck, not fit
                    now = np.asarray(parts[-1], dtype=np.float64)
                    if part_best_smoothed is None:
                        part_best_smoothed = np.full(now.shape, np.inf)
                        part_epoch = np.zeros(now.shape, dtype=int)
                    part_smoothed = (
                        now if part_smoothed is None else alpha * now + (1 - alpha) * part_smoothed
                    )
                    improved = part_smoothed < part_best_smoothed
                    part_progress = bool(improved.any())
                    if part_progress:
                        states_by_epoch[epoch] = (
                            best_state
                            if best_epoch == epoch
                            else copy.deepcopy(module.state_dict())
                        )
                        part_epoch[improved] = epoch
                        for old in set(states_by_epoch) - set(part_epoch.tolist()):
                            del states_by_epoch[old]
                    part_best_smoothed = np.minimum(part_best_smoothed, part_smoothed)
                if average is not None:
                    average.swap()
                smoothed = value if smoothed is None else alpha * value + (1 - alpha) * smoothed
                if smoothed < best_smoothed or part_progress:
                    best_smoothed, bad_epochs = min(smoothed, best_smoothed), 0
                else:
                    bad_epochs += 1
                    if config.lr_patience is not None and bad_epochs % config.lr_patience == 0:
                        _decay_learning_rate(optimizer, config)
            epoch_seconds.append(time.perf_counter() - epoch_start)
            bar.set_postfix(postfix)
            if validation_loss_fn is not None and bad_epochs >= config.patience:
                stopped_early = epoch < config.max_epochs - 1
                break
        bar.close()
    if part_states is not None and part_epoch is not None:
        part_states.update({k: states_by_epoch[int(e)] for k, e in enumerate(part_epoch)})
    if best_state is not None:
        module.load_state_dict(best_state)
    elif average is not None:
        average.swap()  # without validation, the last average
    module.eval()
    return History(
        train_loss=tuple(train_losses),
        validation_loss=tuple(validation_losses),
        best_epoch=best_epoch,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - start,
        epoch_seconds=tuple(epoch_seconds),
        device=str(device),
        n_train=n_train,
        n_validation=n_validation,
        learning_rates=tuple(learning_rates),
        validation_parts=tuple(parts),
        validation_part_labels=() if validation_parts is None else tuple(validation_parts[1]),
        validation_part_best_epochs=() if part_epoch is None else tuple(int(e) for e in part_epoch),
    )
