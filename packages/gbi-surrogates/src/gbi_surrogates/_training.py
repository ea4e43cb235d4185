"""Training in learning-rate stages (a step decay on plateau) on gbi-npe's loops.

Denoising score matching, ratio classification and maximum likelihood on
10k pairs are noisy objectives: constant-rate Adam stalls at a noise floor
well above what a lower rate reaches. gbi-npe's ``train_loop`` and
``fit_conditional`` use one constant rate, so training runs them once per
factor of ``learning_rate_decay``: each stage trains at ``learning_rate *
factor`` until early stopping (or the epochs left) and hands its best weights
to the next stage. A stage whose best validation loss does
not beat the previous stages' is rolled back. ``max_epochs`` is shared out
evenly, the epochs a stage leaves unused (stopping early) going to the next.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from gbi_surrogates._from_npe import (
    History,
    TrainConfig,
    check_snapshot_args,
    data_digest,
    load_snapshot,
    save_snapshot,
    snapshot_fingerprint,
    train_loop,
)

#: ``run_stage(stage_config, label, stage_snapshot)``; ``stage_snapshot`` is
#: ``{}`` or train_loop's ``snapshot`` / ``snapshot_seconds`` for that stage.
RunStage = Callable[[TrainConfig, str, dict[str, Any]], History]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Where a staged training keeps its state, and how often the current stage saves.

    ``path`` holds what the finished stages left (written at each stage's
    end); the stage under way keeps its own ``train_loop`` snapshot in
    ``path`` + ``.stage<k>``. ``data`` is a hash of the training data: a
    snapshot of other data is refused.
    """

    path: Path
    seconds: float
    data: str

    def stage_file(self, stage: int) -> Path:
        return self.path.with_name(f"{self.path.name}.stage{stage}")

    def files(self, stages: int) -> list[Path]:
        return [self.path, *(self.stage_file(k) for k in range(stages))]


def _history_from_dict(stored: dict[str, Any]) -> History:
    values = {}
    for f in dataclasses.fields(History):
        value = stored[f.name]
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[f.name] = value
    return History(**values)


def make_snapshot(snapshot: Any, seconds: Any, *data: np.ndarray) -> Snapshot | None:
    """A ``Snapshot`` for ``fit_*(..., snapshot=, snapshot_seconds=)``, or ``None``.

    Raises:
        ValueError: ``snapshot`` is not a path, or ``seconds`` not a number >= 0.
    """
    check_snapshot_args(snapshot, seconds)
    if snapshot is None:
        return None
    return Snapshot(Path(snapshot), float(seconds), data_digest(*data))


def run_in_stages(
    module: nn.Module,
    run_stage: RunStage,
    config: TrainConfig,
    *,
    decay: Sequence[float],
    description: str,
    snapshot: Snapshot | None = None,
    rng: np.random.Generator | None = None,
) -> History:
    """``run_stage`` once per learning-rate factor in ``decay``; one merged History.

    Args:
        module: the model ``run_stage`` trains (its weights are rolled back to
            the best stage's).
        run_stage: ``(stage_config, label, stage_snapshot) -> History``: trains
            ``module`` with ``stage_config`` (the learning rate and epoch
            budget of the stage), restoring its best weights, e.g. a call of
            gbi-npe's ``train_loop`` or ``fit_conditional`` with
            ``**stage_snapshot``. Every stage must validate on the same rows.
        config: the user's settings (``learning_rate`` and ``max_epochs`` are
            split into stages; everything else is passed on).
        decay: learning-rate factors, one stage each (``(1.0,)``: one plain run).
        description: progress bar label.
        snapshot: where to keep the training's state: a rerun with the same
            snapshot continues an interrupted training (the stage under way
            from its last ``train_loop`` snapshot) to the same weights. The
            files are removed at the end.
        rng: a random stream the stages share (its state is saved with each
            finished stage).

    Returns:
        The History of all stages, epochs concatenated; ``best_epoch`` indexes
        the concatenation; ``module`` holds the best weights, in eval mode.

    Raises:
        gbi_npe.SnapshotMismatch: ``snapshot`` holds another training's state.
    """
    histories: list[History] = []
    best_loss, best_epoch, best_state = np.inf, None, None
    first_stage = 0
    if snapshot is not None:
        device = next(iter(module.parameters())).device
        fingerprint = snapshot_fingerprint(
            module, config, snapshot.data, decay=[float(d) for d in decay]
        )
        payload = load_snapshot(snapshot.path, fingerprint, device)
        if payload is not None:
            histories = [_history_from_dict(h) for h in payload["histories"]]
            best_loss, best_epoch = payload["best_loss"], payload["best_epoch"]
            best_state = payload["best_state"]
            module.load_state_dict(payload["module"])
            if rng is not None:
                rng.bit_generator.state = payload["rng"]
            first_stage = len(histories)
    epochs_left = config.max_epochs - sum(h.epochs for h in histories)
    for stage in range(first_stage, len(decay)):
        factor = decay[stage]
        epochs = -(-epochs_left // (len(decay) - stage))  # ceil: unused epochs carry over
        if epochs <= 0:
            break
        stage_config = dataclasses.replace(
            config, learning_rate=config.learning_rate * factor, max_epochs=epochs
        )
        label = description if len(decay) == 1 else f"{description} [{stage + 1}/{len(decay)}]"
        stage_snapshot = (
            {}
            if snapshot is None
            else {"snapshot": snapshot.stage_file(stage), "snapshot_seconds": snapshot.seconds}
        )
        history = run_stage(stage_config, label, stage_snapshot)
        offset = sum(h.epochs for h in histories)
        histories.append(history)
        epochs_left -= history.epochs
        if history.best_epoch is not None:
            stage_best = history.validation_loss[history.best_epoch]
            if stage_best < best_loss:
                best_loss, best_epoch = stage_best, offset + history.best_epoch
                best_state = copy.deepcopy(module.state_dict())
            elif best_state is not None:
                module.load_state_dict(best_state)
        if snapshot is not None and stage < len(decay) - 1:
            save_snapshot(
                snapshot.path,
                {
                    "fingerprint": fingerprint,
                    "histories": [h.to_dict() for h in histories],
                    "best_loss": best_loss,
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                    "module": module.state_dict(),
                    "rng": None if rng is None else rng.bit_generator.state,
                },
            )
    module.eval()
    if snapshot is not None:
        for path in snapshot.files(len(decay)):
            path.unlink(missing_ok=True)
    return _merge(histories, best_epoch)


def _merge(histories: list[History], best_epoch: int | None) -> History:
    """One History for consecutive stages: per-epoch tuples concatenated, times summed,
    ``best_epoch`` as given, everything else from the last stage."""
    merged = {}
    per_epoch = History.per_epoch_fields()
    for field in dataclasses.fields(History):
        values = [getattr(h, field.name) for h in histories]
        if field.name == "best_epoch":
            merged[field.name] = best_epoch
        elif field.name in per_epoch:
            merged[field.name] = tuple(v for value in values for v in value)
        elif field.name == "seconds":
            merged[field.name] = float(sum(values))
        else:
            merged[field.name] = values[-1]
    return History(**merged)


def train_in_stages(
    module: nn.Module,
    batch_loss_fn: Callable,
    n_train: int,
    config: TrainConfig,
    validation_loss_fn: Callable[[], float] | None,
    *,
    decay: Sequence[float],
    rng: np.random.Generator,
    n_validation: int,
    description: str,
    snapshot: Snapshot | None = None,
) -> History:
    """gbi-npe's ``train_loop`` in stages (``run_in_stages``); arguments as ``train_loop``'s.

    The random stream ``rng`` runs on across stages.
    """

    def run_stage(stage_config: TrainConfig, label: str, stage_snapshot: dict) -> History:
        return train_loop(
            module,
            batch_loss_fn,
            n_train,
            stage_config,
            validation_loss_fn,
            rng=rng,
            n_validation=n_validation,
            description=label,
            data_digest=None if snapshot is None else snapshot.data,
            **stage_snapshot,
        )

    return run_in_stages(
        module,
        run_stage,
        config,
        decay=decay,
        description=description,
        snapshot=snapshot,
        rng=rng,
    )
