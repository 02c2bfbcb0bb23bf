"""``python -m physflow.stages.rf digest PATH...``: the content digests the reader stages'
``blake3:`` config field expects (SigMF: meta + data; IQ01: the file)."""

from __future__ import annotations

import sys

from .readers import recording_digest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "digest":
        print("usage: python -m physflow.stages.rf digest PATH [PATH...]", file=sys.stderr)
        return 2
    for path in args[1:]:
        print(f"{recording_digest(path)}  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
