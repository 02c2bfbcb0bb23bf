"""``python -m physflow.cli``: the same as the ``physflow`` command."""

import sys

from .main import main

if __name__ == "__main__":  # worker processes re-import __main__: never run the CLI twice
    sys.exit(main())
