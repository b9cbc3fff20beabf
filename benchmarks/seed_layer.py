"""Seed layer, depthwise and fully connected benchmark: a thin wrapper around
:func:`fxq_explore.bench.main` (the logic lives in the installed package).

Usage::

    python benchmarks/seed_layer.py            # full run
    python benchmarks/seed_layer.py --quick    # smoke run
"""

from fxq_explore.bench import main

if __name__ == "__main__":
    main()
