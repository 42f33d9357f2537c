"""Command line: ``python cli.py [--framework torch|mlx] fit|validate|test|predict ...``.

Also ``convert``, ``plot`` and ``bench`` (see ``python cli.py --help``). Wiring only: every
command lives in the ``cnn`` package.
"""

import sys

from cnn.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
