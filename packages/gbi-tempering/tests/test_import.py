from __future__ import annotations

import gbi_tempering


def test_version() -> None:
    assert gbi_tempering.__version__ == "0.1.0"
