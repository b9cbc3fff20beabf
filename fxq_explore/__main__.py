"""``python -m fxq_explore``: the command line (see :mod:`fxq_explore.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
