"""Sessions for the gbi monorepo.

    nox                      every package's tests (each alone) and lint
    nox -s tests-gbi-sims    one package, installed alone, non-editable
    nox -s integration       all packages together, root tests/
    nox -s bench -- ARGS     the benchmarks (results go to docs/)
    nox -s demo              the main job on the built-in default

Each package session installs only that package (plus the sibling packages it
declares) from its folder, non-editable, with its ``test`` extra, into a fresh
virtual environment, and runs its tests from inside the package directory, so
a dependency missing from its pyproject.toml fails the session. Torch is
pinned to the CPU build through ``constraints.txt``.

Every environment is rebuilt on each run, so the test sessions delete theirs
when they end (pass or fail): a full ``nox`` then needs the disk of one
environment with torch (about 1.7 GB), not of all seven (about 7 GB). Set
``GBI_NOX_KEEP_ENVS=1`` to keep them, for instance to rerun with ``nox -r``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import nox
import tomllib

ROOT = Path(__file__).parent
PACKAGES_DIR = ROOT / "packages"
CONSTRAINTS = str(ROOT / "constraints.txt")
PYTEST_CONFIG = str(ROOT / "pyproject.toml")

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False


def _read_pyproject(folder: Path) -> dict:
    with open(folder / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


PACKAGES: dict[str, Path] = {
    _read_pyproject(p)["project"]["name"]: p
    for p in sorted(PACKAGES_DIR.iterdir())
    if (p / "pyproject.toml").is_file()
}


def _requirement_name(requirement: str) -> str:
    name = requirement
    for sep in "[<>=!~; ":
        name = name.split(sep, 1)[0]
    return name.strip()


def _local_closure(name: str) -> list[str]:
    """The sibling packages ``name`` needs, dependencies first, itself last."""
    order: list[str] = []

    def visit(pkg: str) -> None:
        if pkg in order:
            return
        for requirement in _read_pyproject(PACKAGES[pkg])["project"].get("dependencies", []):
            dep = _requirement_name(requirement)
            if dep in PACKAGES:
                visit(dep)
        order.append(pkg)

    visit(name)
    return order


@contextlib.contextmanager
def _discarded_afterwards(session: nox.Session) -> Iterator[None]:
    """Delete the session's environment when the block ends, unless asked to keep it."""
    try:
        yield
    finally:
        location = getattr(session.virtualenv, "location", None)
        keep = os.environ.get("GBI_NOX_KEEP_ENVS", "") not in ("", "0")
        if location and not keep and Path(location).is_dir():
            session.log(f"removing {location} (set GBI_NOX_KEEP_ENVS=1 to keep it)")
            shutil.rmtree(location, ignore_errors=True)


def _install(session: nox.Session, names: list[str], extra: str | None) -> None:
    """Install local packages (non-editable) with the pinned constraints."""
    if not names:
        return
    targets = []
    for pkg in names:
        spec = str(PACKAGES[pkg])
        targets.append(f"{spec}[{extra}]" if extra else spec)
    session.install("-c", CONSTRAINTS, *targets)


def _make_test_session(package: str) -> None:
    @nox.session(name=f"tests-{package}", python=None)
    def _tests(session: nox.Session) -> None:
        with _discarded_afterwards(session):
            names = _local_closure(package)
            _install(session, names[:-1], extra=None)
            _install(session, [package], extra="test")
            module = package.replace("-", "_")
            session.chdir(PACKAGES[package])
            session.run(
                "pytest",
                "-c",
                PYTEST_CONFIG,
                "--rootdir",
                ".",
                "--doctest-modules",
                "--pyargs",
                module,
                "tests",
                *session.posargs,
            )

    _tests.__doc__ = f"Test {package} alone: installed non-editable from its folder."


for _package in PACKAGES:
    _make_test_session(_package)


@nox.session
def integration(session: nox.Session) -> None:
    """All packages installed together; the cross-package tests in tests/."""
    with _discarded_afterwards(session):
        order: list[str] = []
        for package in PACKAGES:
            order += [p for p in _local_closure(package) if p not in order]
        # Plain first (pip resolves sibling requirements to these folders), then the extras.
        _install(session, order, extra=None)
        _install(session, order, extra="test")
        session.install("-c", CONSTRAINTS, "dask[distributed]")
        session.run("pytest", "-c", PYTEST_CONFIG, "tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    with _discarded_afterwards(session):
        session.install("ruff>=0.6")
        session.run("ruff", "check", ".")
        session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ``nox -s bench -- [name ...] [options]``; results in docs/."""
    _install(session, list(PACKAGES), extra="bench")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job on the built-in default (``gbi demo``)."""
    _install(session, list(PACKAGES), extra=None)
    session.run("python", "-m", "gbi", "demo", *session.posargs)


nox.options.sessions = [f"tests-{p}" for p in PACKAGES] + ["integration", "lint"]
