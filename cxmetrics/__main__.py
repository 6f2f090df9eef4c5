"""Entry point for ``python -m cxmetrics``: the CLI with the tool commands (bench, docs)."""

import sys

from cxmetrics.tools import main

if __name__ == "__main__":
    sys.exit(main())
