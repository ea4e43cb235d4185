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

import numpy as np
from torch import nn

from gbi_surrogates._from_npe import History, TrainConfig, train_loop


def run_in_stages(
    module: nn.Module,
    run_stage: Callable[[TrainConfig, str], History],
    config: TrainConfig,
    *,
    decay: Sequence[float],
    description: str,
) -> History:
    """``run_stage`` once per learning-rate factor in ``decay``; one merged History.

    Args:
        module: the model ``run_stage`` trains (its weights are rolled back to
            the best stage's).
        run_stage: ``(stage_config, label) -> History``: trains ``module`` with
            ``stage_config`` (the learning rate and epoch budget of the stage),
            restoring its best weights, e.g. a call of gbi-npe's ``train_loop``
            or ``fit_conditional``. Every stage must validate on the same rows.
        config: the user's settings (``learning_rate`` and ``max_epochs`` are
            split into stages; everything else is passed on).
        decay: learning-rate factors, one stage each (``(1.0,)``: one plain run).
        description: progress bar label.

    Returns:
        The History of all stages, epochs concatenated; ``best_epoch`` indexes
        the concatenation; ``module`` holds the best weights, in eval mode.
    """
    histories: list[History] = []
    best_loss, best_epoch, best_state = np.inf, None, None
    epochs_left = config.max_epochs
    for stage, factor in enumerate(decay):
        epochs = -(-epochs_left // (len(decay) - stage))  # ceil: unused epochs carry over
        if epochs <= 0:
            break
        stage_config = dataclasses.replace(
            config, learning_rate=config.learning_rate * factor, max_epochs=epochs
        )
        label = description if len(decay) == 1 else f"{description} [{stage + 1}/{len(decay)}]"
        history = run_stage(stage_config, label)
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
    module.eval()
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
) -> History:
    """gbi-npe's ``train_loop`` in stages (``run_in_stages``); arguments as ``train_loop``'s.

    The random stream ``rng`` runs on across stages.
    """

    def run_stage(stage_config: TrainConfig, label: str) -> History:
        return train_loop(
            module,
            batch_loss_fn,
            n_train,
            stage_config,
            validation_loss_fn,
            rng=rng,
            n_validation=n_validation,
            description=label,
        )

    return run_in_stages(
        module,
        run_stage,
        config,
        decay=decay,
        description=description,
    )
