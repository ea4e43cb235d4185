from __future__ import annotations

import gbi_surrogates


def test_version() -> None:
    assert gbi_surrogates.__version__ == "0.1.0"
