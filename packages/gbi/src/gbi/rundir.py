"""Run directories: everything a training run makes, written so nothing is lost.

A run directory holds

    config.json        what was asked for (the run's identity)
    simulations/       the base set, one ``chunk_NNNNN.npz`` per finished chunk
    surrogate.*        the NLE / NRE / score checkpoint
    *_snapshot.pt*     a network's training state, while it trains
    posterior.*        the amortized posterior
    report.json        the training report (ESS per beta, losses, timings, ...)
    metrics.json       evaluation results (``gbi evaluate``)
    figures/           plots (``gbi report``)

Every file is written to a temporary name and moved into place with
``os.replace``, so a run killed at any moment leaves only finished files.
Rerunning the same command reuses what is finished; a directory made with a
different configuration is refused (``RunConfigMismatch``), never mixed. A new
directory can adopt the finished early stages of another one whose
configuration differs only in settings those stages do not read
(``RunDirectory.adopt``), so a change to what follows the surrogates (the
posterior network, a contrastive pool, ...) does not redo the simulations and
the surrogates.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gbi_npe.io import atomic_write_bytes

#: config keys that may differ between reruns of one run (they do not change results).
VOLATILE_KEYS = frozenset({"device", "compile", "progress", "executor"})


class RunConfigMismatch(ValueError):
    """The run directory was created with a different configuration.

    ``differences``: the settings that differ (``config_differences``), where
    the refusal was for differing settings; else empty.
    """

    def __init__(self, message: str, differences: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.differences = dict(differences or {})


def _canonical(value: Any) -> Any:
    """JSON round trip, so tuples and lists, numpy scalars and floats compare alike."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a run directory's JSON")


def _link_or_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Hard-link ``src`` to ``dst``, or copy it where links are not possible.

    Run files are never modified in place (they are replaced whole, see
    ``atomic_write_bytes``), so a link shared by two run directories is safe.
    """
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether ``name`` is one of ``patterns`` (a pattern ending in ``*``: a prefix)."""
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns)


def read_config(path: str | os.PathLike[str], hint: str = "") -> dict[str, Any]:
    """A run directory's stored ``config.json``, decoded.

    Raises:
        RunConfigMismatch: the file is not valid JSON (``hint`` ends the message).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunConfigMismatch(f"{path} is not valid JSON ({err}){hint}") from err


def config_differences(
    stored: dict[str, Any],
    config: dict[str, Any],
    legacy: dict[str, Any] | None = None,
    ignore: frozenset[str] = frozenset(),
) -> dict[str, tuple[Any, Any]]:
    """The keys in which a stored configuration and a current one differ.

    Both are compared after a JSON round trip (tuples as lists); ``VOLATILE_KEYS``
    and ``ignore`` are skipped; a key missing from ``stored`` takes its value
    from ``legacy`` (see ``RunDirectory``).

    Returns:
        ``{key: (stored value, current value)}``, sorted by key; a missing
        value is ``"<missing>"``.
    """
    stored = {**_canonical(dict(legacy or {})), **_canonical(stored)}
    config = _canonical(config)
    keys = (set(stored) | set(config)) - VOLATILE_KEYS - ignore
    return {
        k: (stored.get(k, "<missing>"), config.get(k, "<missing>"))
        for k in sorted(keys)
        if stored.get(k) != config.get(k)
    }


def describe_differences(diffs: dict[str, tuple[Any, Any]]) -> str:
    """``config_differences``' result as ``"key: stored X, now Y; ..."``."""
    return "; ".join(f"{k}: stored {old!r}, now {new!r}" for k, (old, new) in diffs.items())


class RunDirectory:
    """A run directory bound to one configuration.

    Args:
        path: the folder (created if missing).
        config: the run's configuration, JSON-able. On reuse it must equal the
            stored ``config.json`` except for ``VOLATILE_KEYS``.
        legacy: for settings added after a run may have been written, the
            value such a run used without naming it (a stored config that
            lacks the key matches a current value equal to this).
        ignore: keys that may differ (settings this run never reads); the
            stored ``config.json`` keeps its values.

    Raises:
        RunConfigMismatch: the folder holds a run with another configuration.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: dict[str, Any],
        legacy: dict[str, Any] | None = None,
        ignore: frozenset[str] = frozenset(),
    ) -> None:
        self.path = Path(path)
        self.legacy = _canonical(dict(legacy or {}))
        self.ignore = frozenset(ignore)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"run directory {self.path} exists and is not a folder")
        self.path.mkdir(parents=True, exist_ok=True)
        self.config = _canonical(config)
        stored_path = self.path / "config.json"
        if stored_path.exists():
            self._check_same(read_config(stored_path, "; use a new output folder"))
        else:
            self.save_json("config.json", self.config)

    def _check_same(self, stored: dict[str, Any]) -> None:
        diffs = config_differences(stored, self.config, self.legacy, self.ignore)
        if diffs:
            raise RunConfigMismatch(
                f"run directory {self.path} was made with a different configuration ("
                + describe_differences(diffs)
                + "). Use a new output folder, or rerun with the stored settings to resume.",
                diffs,
            )

    def adopt(
        self,
        source: str | os.PathLike[str],
        names: list[str],
        may_differ: Mapping[str, Sequence[str]] | frozenset[str],
    ) -> list[str]:
        """Take over the finished files ``names`` of another run directory.

        ``source``'s configuration must equal this one's except for the keys
        of ``may_differ`` and this directory's ``ignore``. ``may_differ`` maps
        each such key to the names (same form as ``names``) computed from it:
        where the key's values differ those are not taken over, so this run
        computes them anew (a set of keys stands for keys that shape none).
        Each file (or folder, such as ``simulations``) that ``source`` holds
        and this directory does not yet hold is hard-linked where the file
        system allows, else copied; ``source`` is left as it was.

        Args:
            source: the other run directory.
            names: file or folder names, relative to the directory; a name
                ending in ``*`` stands for every name with that prefix.
            may_differ: configuration keys in which the two runs may differ,
                each with the names it shapes.

        Returns:
            the names adopted (sorted).

        Raises:
            RunConfigMismatch: ``source`` is not a run directory, or its
                configuration differs in another key.
        """
        source = Path(source)
        stored_path = source / "config.json"
        if not stored_path.is_file():
            raise RunConfigMismatch(f"{source} is not a run directory (no config.json)")
        if source.resolve() == self.path.resolve():
            raise RunConfigMismatch(f"{source} is this run directory; nothing to adopt")
        stored = read_config(stored_path)
        shapes = may_differ if isinstance(may_differ, Mapping) else dict.fromkeys(may_differ, ())
        diffs = config_differences(stored, self.config, self.legacy, self.ignore)
        refused = {k: v for k, v in diffs.items() if k not in shapes}
        if refused:
            raise RunConfigMismatch(
                f"cannot reuse the stages of {source}: its configuration differs in settings "
                "they depend on (" + describe_differences(refused) + ")",
                refused,
            )
        redo = [name for key in diffs for name in shapes[key]]
        adopted = []
        for entry in sorted(source.iterdir()):
            target = self.path / entry.name
            if (
                not _matches(entry.name, names)
                or _matches(entry.name, redo)
                or entry.name.startswith(".")
                or target.exists()
            ):
                continue
            if entry.is_dir():
                shutil.copytree(entry, target, copy_function=_link_or_copy)
            else:
                _link_or_copy(entry, target)
            adopted.append(entry.name)
        return adopted

    # -- files ------------------------------------------------------------------

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def remove(self, name: str) -> None:
        """Delete the file ``name`` if it is there."""
        (self.path / name).unlink(missing_ok=True)

    def save_json(self, name: str, obj: Any) -> Path:
        path = self.path / name
        text = json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n"
        atomic_write_bytes(path, text.encode())
        return path

    def load_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def save_npz(self, name: str, **arrays: np.ndarray) -> Path:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path = self.path / name
        atomic_write_bytes(path, buffer.getvalue())
        return path

    def load_npz(self, name: str) -> dict[str, np.ndarray]:
        with np.load(self.path / name, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
