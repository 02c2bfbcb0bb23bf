"""The preprocessing contract: the digest of what turns IQ into model input (the ``rf.stft``
and ``rf.normalize`` configs and the code fingerprints of both stages).

A training set records the contract of the pipeline that made it (its dataset card carries
it); a serving pipeline is checked against it before it feeds a model, so a model trained on
an 80 dB window is never served 60 dB images (train/serve skew). Fields that only choose how
the computation runs (array backend, chunking) are not part of the contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

import physflow as pf

from .spectrogram import normalize, stft

#: Config fields that change how, not what, is computed.
EXECUTION_ONLY = {"stft": {"backend", "chunk_frames"}, "normalize": {"backend"}}
STAGES = {"stft": stft, "normalize": normalize}
VERSION = "physflow.rf.preprocessing.v1"


class ContractError(ValueError):
    """The serving preprocessing differs from the dataset's; ``differences`` lists
    (field, dataset value, serving value)."""

    def __init__(self, message: str, differences: list[tuple[str, Any, Any]]) -> None:
        super().__init__(message)
        self.differences = differences


def _plain_config(config: Any, role: str) -> dict[str, Any]:
    """Config fields as JSON data (tuples become lists, as in a card read back from disk),
    without the execution-only ones."""
    data = msgspec.json.decode(msgspec.json.encode(config or {}))
    return {k: v for k, v in data.items() if k not in EXECUTION_ONLY[role]}


def _pipeline(spec_or_pipeline: Any) -> Any:
    if isinstance(spec_or_pipeline, pf.Pipeline):
        return spec_or_pipeline
    if isinstance(spec_or_pipeline, str | Path):
        return pf.load_spec(spec_or_pipeline)
    raise TypeError(f"expected a pf.Pipeline or a spec path, got {type(spec_or_pipeline).__name__}")


def _node_for(p: Any, role: str) -> Any:
    stage = STAGES[role]
    found = [
        n
        for n in p.nodes.values()
        if n.stage.fingerprint == stage.fingerprint or n.stage.func is stage.func
    ]
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(n.id for n in found)})"
        raise ContractError(
            f"pipeline '{p.name}' has {what} rf.{role} node(s); the preprocessing contract "
            f"needs exactly one rf.stft and one rf.normalize",
            [],
        )
    return found[0]


def preprocessing_contract(spec_or_pipeline: Any) -> dict[str, Any]:
    """{"digest", "stft": {"stage", "fingerprint", "config"}, "normalize": {...}} of a
    pipeline (or spec path), as plain JSON-able data."""
    p = _pipeline(spec_or_pipeline)
    body: dict[str, Any] = {}
    for role in ("stft", "normalize"):
        node = _node_for(p, role)
        body[role] = {
            "stage": f"rf.{role}",
            "fingerprint": node.stage.fingerprint,
            "config": _plain_config(node.config, role),
        }
    return {"version": VERSION, "digest": contract_digest(body), **body}


def contract_digest(body: dict[str, Any]) -> str:
    return pf.digest([VERSION, {r: body[r] for r in ("stft", "normalize")}])


def preprocessing_digest(spec_or_pipeline: Any) -> str:
    """The digest of the stft + normalize configs and code of a pipeline or spec."""
    return preprocessing_contract(spec_or_pipeline)["digest"]


def _find_contract(obj: Any) -> dict[str, Any] | None:
    if isinstance(obj, dict):
        if obj.get("version") == VERSION and "stft" in obj and "normalize" in obj:
            return obj
        for value in obj.values():
            found = _find_contract(value)
            if found is not None:
                return found
    elif isinstance(obj, list | tuple):
        for value in obj:
            found = _find_contract(value)
            if found is not None:
                return found
    return None


def contract_of(obj: Any) -> dict[str, Any]:
    """The contract of a dataset (from its card), a card (dict or Struct), a contract dict, a
    pipeline or a spec path."""
    if isinstance(obj, pf.Pipeline | str | Path):
        return preprocessing_contract(obj)
    card = getattr(obj, "card", obj)
    if isinstance(card, msgspec.Struct):
        card = msgspec.to_builtins(card)
    if isinstance(card, dict) and isinstance(card.get("stages"), list):
        return _contract_from_card(card)
    found = _find_contract(card)
    if found is None:
        raise ContractError(
            "no rf preprocessing contract found in the dataset card; generate the dataset "
            "with physflow.stages.rf.dataset (configs/rf_dataset.yaml), which records it",
            [],
        )
    return found


def _contract_from_card(card: dict[str, Any]) -> dict[str, Any]:
    """A dataset card (physflow.ml) lists every stage with its fingerprint and config; the
    contract is rebuilt from the stft and normalize entries. Parameters the dataset varies per
    sample must not touch them (the samples would have no single preprocessing)."""
    name = card.get("name", "?")
    body: dict[str, Any] = {}
    for role, stage in STAGES.items():
        found = [s for s in card["stages"] if s.get("stage") == stage.name]
        if len(found) != 1:
            raise ContractError(
                f"dataset '{name}': its card lists {len(found)} {stage.name} stage(s); the "
                "preprocessing contract needs exactly one rf.stft and one rf.normalize",
                [],
            )
        info = found[0]
        varied = sorted(
            p
            for p in card.get("params", {})
            if p.split(".", 1)[0] == info["node"] and p.split(".")[1] not in EXECUTION_ONLY[role]
        )
        if varied:
            raise ContractError(
                f"dataset '{name}' varies {', '.join(varied)} per sample: its samples were "
                "preprocessed differently, so no single serving preprocessing matches it",
                [],
            )
        body[role] = {
            "stage": f"rf.{role}",
            "fingerprint": info["fingerprint"],
            "config": _plain_config(info.get("config"), role),
        }
    return {"version": VERSION, "digest": contract_digest(body), **body}


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    out: list[tuple[str, Any, Any]] = []
    for role in ("stft", "normalize"):
        ca, cb = a.get(role, {}), b.get(role, {})
        if ca.get("fingerprint") != cb.get("fingerprint"):
            out.append((f"{role}.code", ca.get("fingerprint"), cb.get("fingerprint")))
        fa, fb = ca.get("config", {}), cb.get("config", {})
        for key in sorted(set(fa) | set(fb)):
            if fa.get(key, "<absent>") != fb.get(key, "<absent>"):
                out.append((f"{role}.{key}", fa.get(key, "<absent>"), fb.get(key, "<absent>")))
    return out


def check_contract(dataset_or_card: Any, serving_spec: Any) -> str:
    """Raise :class:`ContractError` naming every differing field when the serving
    pipeline's preprocessing differs from the dataset's; return the shared digest."""
    trained = contract_of(dataset_or_card)
    serving = contract_of(serving_spec)
    recomputed = contract_digest(trained)
    if trained.get("digest") != recomputed:
        raise ContractError(
            f"the dataset's preprocessing contract is inconsistent: it says digest "
            f"{trained.get('digest')} but its fields give {recomputed} (edited card?)",
            [],
        )
    if serving["digest"] == trained["digest"]:
        return serving["digest"]
    diffs = _differences(trained, serving)
    listed = "; ".join(f"{f}: dataset {a!r}, serving {b!r}" for f, a, b in diffs)
    raise ContractError(
        f"preprocessing contract mismatch (dataset {trained['digest']}, serving "
        f"{serving['digest']}): {listed or 'contract versions differ'}. The model was trained on "
        "data preprocessed differently: change the serving spec to match, or regenerate the "
        "dataset and retrain",
        diffs,
    )
