from __future__ import annotations

import gbi_eval


def test_version() -> None:
    assert gbi_eval.__version__ == "0.1.0"
