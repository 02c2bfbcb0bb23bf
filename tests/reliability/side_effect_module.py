"""Importing this module has a visible side effect: the security tests check it never happens."""

from pathlib import Path

Path("/tmp/physflow-side-effect-module-imported").touch()


class Anything:
    pass
