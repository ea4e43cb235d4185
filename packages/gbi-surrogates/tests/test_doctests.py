"""The examples in the docstrings run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import gbi_surrogates

MODULES = sorted(
    ["gbi_surrogates"]
    + [f"gbi_surrogates.{m.name}" for m in pkgutil.iter_modules(gbi_surrogates.__path__)]
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
