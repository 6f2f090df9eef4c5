"""Entry point for ``python -m cxmetrics``."""

import sys

from cxmetrics.cli import main

if __name__ == "__main__":
    sys.exit(main())
