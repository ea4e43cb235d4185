from __future__ import annotations

import gbi_npe


def test_version() -> None:
    assert gbi_npe.__version__ == "0.1.0"
