"""The registry of built-in tasks: ``get_task(name)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gbi_sims._task import Task

_FACTORIES: dict[str, Callable[..., Task]] = {}


def register_task(name: str) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
    """Register a task factory (a class or function returning a ``Task``) under ``name``."""

    def decorate(factory: Callable[..., Task]) -> Callable[..., Task]:
        if name in _FACTORIES:
            raise ValueError(f"a task named {name!r} is already registered")
        _FACTORIES[name] = factory
        return factory

    return decorate


def list_tasks() -> list[str]:
    """Names accepted by ``get_task``."""
    return sorted(_FACTORIES)


def get_task(name: str, **options: Any) -> Task:
    """Build the task registered under ``name``.

    Args:
        name: one of ``list_tasks()``.
        **options: task-specific options (e.g. ``prior="sbibm"`` for
            gaussian_mixture).

    Example:
        >>> task = get_task("two_moons")
        >>> task.theta_dim, task.x_dim
        (2, 2)
    """
    if not isinstance(name, str) or name not in _FACTORIES:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(list_tasks())}")
    return _FACTORIES[name](**options)
