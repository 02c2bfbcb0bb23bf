"""``python -m physflow.cli``: the same as the ``physflow`` command."""

import sys

from .main import main

sys.exit(main())
