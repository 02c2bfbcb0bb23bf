"""The dataset card: a JSON manifest of one dataset (msgspec schema, JSON Schema exported).

Written to ``<store>/datasets/<name>.json`` when a generation finishes. It says what defines
the dataset (pipeline stages with fingerprints and configs, vary distributions, seed rule,
outputs), what it holds (fields with dtype, per-sample shape and units; samples; splits) and
where (one entry per shard: sample range, action-cache key, the digest of every array).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from . import _engine

CARD_VERSION = 1
CARDS_DIR = "datasets"

SEED_RULE = (
    "sample i: Generator(PCG64(SeedSequence(dataset_seed, spawn_key=(i,)))); first draw "
    "integers(0, 2**63) is the sample's run seed, then each varied parameter in sorted path "
    "order; node rng = SeedSequence(run_seed, spawn_key=spawn_key(node_id)) as in "
    "pipeline.with_values(params, seed=run_seed).run()"
)
SPLIT_RULE = (
    "u = splitmix64(uint64(i) + key(dataset_seed)) >> 11 / 2**53, key = first 8 bytes of "
    "blake3('physflow.ml.split.v1:<seed>'); split = first name (sorted) whose cumulative "
    "fraction exceeds u"
)


class FieldInfo(msgspec.Struct, omit_defaults=True):
    """One output field: ``shape`` is per sample; ``None`` marks an axis whose length varies
    (a ragged field: flat values + offsets, see docs/ml.md)."""

    ref: str
    dtype: str
    shape: list[int | None]
    ragged: bool = False
    units: str | None = None


class ParamInfo(msgspec.Struct, omit_defaults=True):
    """A varied parameter: its distribution (``{kind: argument}``) and stored dtype."""

    distribution: dict[str, Any]
    dtype: str | None = None


class StageInfo(msgspec.Struct, omit_defaults=True):
    node: str
    stage: str
    version: str
    fingerprint: str
    config_digest: str | None = None
    config: dict[str, Any] | None = None
    inputs: dict[str, str] = {}
    uses_rng: bool = False


class ShardInfo(msgspec.Struct, omit_defaults=True):
    """Samples ``[start, stop)``: ``arrays`` maps array name -> object digest."""

    start: int
    stop: int
    key: str
    arrays: dict[str, str]
    layout: dict[str, str] = {}
    raw_bytes: int = 0
    stored_bytes: int = 0


class GenerationInfo(msgspec.Struct, omit_defaults=True):
    computed_samples: int = 0
    reused_samples: int = 0
    computed_shards: int = 0
    reused_shards: int = 0
    extended_shards: int = 0
    duration_s: float = 0.0
    executor: str = "serial"
    workers: int = 1


class DatasetCard(msgspec.Struct):
    schema_version: int
    name: str
    identity: str
    pipeline: str
    seed: int
    samples: int
    shard_size: int
    created: float
    store: str
    environment: _engine.Environment
    fields: dict[str, FieldInfo]
    params: dict[str, ParamInfo]
    stages: list[StageInfo]
    shards: list[ShardInfo]
    kind: Literal["dataset"] = "dataset"
    spec_path: str | None = None
    spec_digest: str | None = None
    split: dict[str, float] | None = None
    split_rule: str = SPLIT_RULE
    seed_rule: str = SEED_RULE
    compress: bool = False
    raw_bytes: int = 0
    stored_bytes: int = 0
    generation: GenerationInfo = msgspec.field(default_factory=GenerationInfo)


class CardError(ValueError):
    """A file is not a readable dataset card."""


def card_rel(name: str) -> str:
    return f"{CARDS_DIR}/{name}.json"


def encode(card: DatasetCard) -> bytes:
    return msgspec.json.format(msgspec.json.encode(card), indent=1)


def decode(data: bytes, where: str) -> DatasetCard:
    try:
        return msgspec.json.decode(data, type=DatasetCard)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise CardError(f"{where}: not a physflow dataset card: {exc}") from None


def write(store: Any, card: DatasetCard) -> str:
    rel = card_rel(card.name)
    _engine.write_file(store, rel, encode(card))
    return f"{_engine.store_location(store)}/{rel}"


def read(store: Any, name: str) -> DatasetCard:
    rel = card_rel(name)
    try:
        data = _engine.read_file(store, rel)
    except FileNotFoundError:
        known = names(store)
        from ._engine import closest

        hint = closest(name, known)
        raise CardError(
            f"no dataset '{name}' in the store at {_engine.store_location(store)} "
            f"(datasets: {', '.join(known) or 'none'})"
            + (f". Did you mean {' or '.join(repr(h) for h in hint)}?" if hint else "")
        ) from None
    return decode(data, f"{_engine.store_location(store)}/{rel}")


def names(store: Any) -> list[str]:
    return [n[: -len(".json")] for n in _engine.list_files(store, CARDS_DIR) if n.endswith(".json")]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a dataset card (exported like the run manifest's)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://physflow.dev/schemas/dataset-card-v{CARD_VERSION}.json",
        "title": f"physflow dataset card (schema_version {CARD_VERSION})",
        **msgspec.json.schema(DatasetCard),
    }
