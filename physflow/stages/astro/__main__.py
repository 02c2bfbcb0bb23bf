"""``python -m physflow.stages.astro survey ROOT [--images N] [--seed S]``: publish a simulated
survey (FITS images + index.json) to a directory or fsspec URL; prints the index's URL."""

from __future__ import annotations

import argparse

from .archive import publish_survey


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m physflow.stages.astro")
    commands = parser.add_subparsers(dest="command", required=True)
    survey = commands.add_parser("survey", help="publish a simulated survey of FITS images")
    survey.add_argument("root", help="directory or fsspec URL to write to")
    survey.add_argument("--images", type=int, default=16)
    survey.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(publish_survey(args.root, args.images, seed=args.seed))


if __name__ == "__main__":
    main()
