"""``python -m chachaml``: the same command line as the ``chachaml`` console script."""

from __future__ import annotations

import sys

from chachaml.cli import main

if __name__ == "__main__":
    sys.exit(main())
