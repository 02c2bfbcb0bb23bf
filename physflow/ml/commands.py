"""``physflow dataset generate | info | ls | verify | schema`` (wired into physflow/cli.py).

Exit codes as for every physflow command: 0 ok, 1 generation failed (a sample raised, a shard
is corrupt), 2 bad spec or usage (the message names file:line). Only argparse is imported here
at module level, so ``physflow --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="store (default: $PHYSFLOW_STORE or ./.physflow)")


def add_parser(sub: Any) -> None:
    """Add the ``dataset`` command to the CLI's subparsers."""
    ds = sub.add_parser("dataset", help="ML datasets from pipelines: generate | info | ls")
    actions = ds.add_subparsers(dest="dataset_action", metavar="ACTION")
    gen = actions.add_parser("generate", help="generate (or complete, or grow) a dataset")
    gen.add_argument("spec", help="YAML spec with a dataset: section")
    gen.add_argument("--samples", type=int, default=None, help="number of samples")
    gen.add_argument("--name", default=None, help="dataset name (default: the pipeline's)")
    gen.add_argument("--seed", type=int, default=None, help="dataset seed")
    gen.add_argument("--shard-size", type=int, default=None, help="samples per shard")
    gen.add_argument("--executor", default="serial", help="serial, threads, processes or dask")
    gen.add_argument("--workers", type=int, default=None, help="worker count")
    gen.add_argument("--set", dest="sets", action="append", default=[], metavar="NODE.FIELD=VALUE")
    gen.add_argument(
        "--verify", action="store_true", help="re-read cached shards; recompute corrupt ones"
    )
    gen.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    _store_option(gen)
    info = actions.add_parser("info", help="a dataset's card: fields, splits, shards")
    info.add_argument("name", help="dataset name, or the path of its card")
    info.add_argument("--json", action="store_true", help="print the card JSON")
    _store_option(info)
    ls = actions.add_parser("ls", help="datasets in the store")
    _store_option(ls)
    verify = actions.add_parser("verify", help="read every shard of a dataset, checking digests")
    verify.add_argument("name")
    _store_option(verify)
    schema = actions.add_parser("schema", help="print the dataset card JSON Schema")
    schema.add_argument("-o", "--output", default=None)


def _err(message: str) -> None:
    print(f"physflow: error: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``physflow dataset ...``; returns the exit code."""
    import physflow as pf

    from .card import CardError
    from .generation import GenerationError
    from .program import SampleError

    action = getattr(args, "dataset_action", None)
    if action is None:
        _err("dataset needs an action: generate, info, ls, verify or schema")
        return EXIT_USAGE
    try:
        return _ACTIONS[action](args)
    except (pf.SpecError, CardError, ValueError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except (GenerationError, SampleError, pf.CorruptObjectError, pf.MissingObjectError) as exc:
        _err(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err("interrupted; finished shards are kept (run again to resume)")
        return 130


def _generate(args: argparse.Namespace) -> int:
    import physflow as pf

    from .generation import EXECUTORS

    if args.executor not in EXECUTORS:
        raise ValueError(f"unknown executor {args.executor!r}; use one of {', '.join(EXECUTORS)}")
    from ._engine import parse_set_option

    overrides = dict(parse_set_option(text) for text in args.sets)
    ds = pf.ml.generate(
        args.spec,
        samples=args.samples,
        name=args.name,
        seed=args.seed,
        shard_size=args.shard_size,
        store=args.store,
        executor=args.executor,
        workers=args.workers,
        progress=False if args.quiet else (True if sys.stderr.isatty() else "plain"),
        overrides=overrides or None,
        verify=args.verify,
    )
    g = ds.card.generation
    print(
        f"{ds.card.name}: {len(ds)} samples in {len(ds.card.shards)} shards: "
        f"{g.computed_samples} computed, {g.reused_samples} reused in {g.duration_s:.2f} s"
    )
    print(f"card: {ds.store.location}/datasets/{ds.card.name}.json")
    return EXIT_OK


def _open(args: argparse.Namespace) -> Any:
    from .dataset import open_dataset

    return open_dataset(args.name, store=args.store)


def _info(args: argparse.Namespace) -> int:
    ds = _open(args)
    if args.json:
        from .card import encode

        sys.stdout.write(encode(ds.card).decode() + "\n")
        return EXIT_OK
    c = ds.card
    print(f"dataset {c.name}  ({c.samples} samples, {len(c.shards)} shards of {c.shard_size})")
    print(f"  pipeline {c.pipeline}  seed {c.seed}  identity {c.identity}")
    if c.spec_path:
        print(f"  spec {c.spec_path}")
    for name, f in c.fields.items():
        shape = "x".join("?" if n is None else str(n) for n in f.shape) or "scalar"
        units = f"  [{f.units}]" if f.units else ""
        print(f"  field {name} = {f.ref}: {f.dtype} {shape}{' ragged' if f.ragged else ''}{units}")
    for path, p in c.params.items():
        print(f"  param {path} ~ {p.distribution}")
    if c.split:
        print(f"  splits {ds.splits}")
    ratio = c.stored_bytes / c.raw_bytes if c.raw_bytes else 0.0
    print(f"  bytes: raw {c.raw_bytes}, stored {c.stored_bytes} ({ratio:.3f}x)")
    return EXIT_OK


def _ls(args: argparse.Namespace) -> int:
    from .dataset import list_datasets

    cards = list_datasets(args.store)
    if not cards:
        print("no datasets")
        return EXIT_OK
    for c in cards:
        fields = ", ".join(c.fields)
        print(f"{c.name}  {c.samples} samples  fields: {fields}  {c.stored_bytes} bytes")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    ds = _open(args)
    problems = ds.verify()
    for line in problems:
        print(f"  {line}")
    print(f"{ds.card.name}: {len(ds.card.shards)} shards checked, {len(problems)} bad")
    return EXIT_FAILED if problems else EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    import json

    from .card import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


_ACTIONS = {
    "generate": _generate,
    "info": _info,
    "ls": _ls,
    "verify": _verify,
    "schema": _schema,
}
