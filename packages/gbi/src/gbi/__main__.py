from __future__ import annotations

import sys

from gbi.cli import main

sys.exit(main())
