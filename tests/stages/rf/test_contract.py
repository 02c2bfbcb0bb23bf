"""The preprocessing contract: digest of the stft + normalize configs and code; a serving
spec that differs from a dataset's is refused with the differing fields named."""

from __future__ import annotations

import copy

import pytest

import physflow as pf
from physflow.stages.rf import (
    ContractError,
    check_contract,
    detect_pipeline,
    preprocessing_contract,
    preprocessing_digest,
)

from .conftest import DETECT


def _serving(**values):
    return pf.load_spec(DETECT, overrides=values)


def test_digest_is_stable_and_matches_the_python_pipeline():
    d = preprocessing_digest(DETECT)
    assert (
        d == preprocessing_digest(pf.load_spec(DETECT)) == preprocessing_digest(detect_pipeline())
    )
    assert d.startswith("b3:")
    # what does not change preprocessing does not change the digest
    assert (
        preprocessing_digest(
            _serving(
                **{
                    "stft.backend": "torch",
                    "stft.chunk_frames": 2,
                    "normalize.backend": "cupy",
                    "cfar.pfa": 1e-3,
                    "synth.n_frames": 9,
                }
            )
        )
        == d
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("normalize.range_db", 60.0),
        ("normalize.ref_db", -30.0),
        ("stft.n_fft", 2048),
        ("stft.hop", 1024),
        ("stft.frame_samples", 330_000),
        ("normalize.image_dtype", "uint8"),
        ("normalize.image_shape", [256, 256]),
    ],
)
def test_each_preprocessing_field_changes_the_digest(field, value):
    assert preprocessing_digest(_serving(**{field: value})) != preprocessing_digest(DETECT)


def test_train_serve_skew_names_the_differing_field():
    card = {"name": "rf", "samples": 10, "extra": {"preprocessing": preprocessing_contract(DETECT)}}
    assert check_contract(card, DETECT) == preprocessing_digest(DETECT)
    with pytest.raises(ContractError) as err:
        check_contract(card, _serving(**{"normalize.range_db": 60.0}))
    message = str(err.value)
    assert "normalize.range_db: dataset 80.0, serving 60.0" in message
    assert err.value.differences == [("normalize.range_db", 80.0, 60.0)]
    assert "stft" not in message.split("):", 1)[1]  # only what differs is listed
    with pytest.raises(ContractError) as err:
        check_contract(card, _serving(**{"normalize.range_db": 60.0, "stft.hop": 1024}))
    assert {d[0] for d in err.value.differences} == {"normalize.range_db", "stft.hop"}


def test_code_changes_are_named_and_edited_cards_refused():
    contract = preprocessing_contract(DETECT)
    other = copy.deepcopy(contract)
    other["normalize"]["fingerprint"] = "b3:" + "0" * 64
    from physflow.stages.rf.contract import contract_digest

    other["digest"] = contract_digest(other)  # a dataset made by other normalize code
    with pytest.raises(ContractError, match=r"normalize.code: dataset 'b3:0000") as err:
        check_contract(other, DETECT)
    assert [d[0] for d in err.value.differences] == ["normalize.code"]
    edited = copy.deepcopy(contract)
    edited["normalize"]["config"]["range_db"] = 60.0  # digest left as it was
    with pytest.raises(ContractError, match="inconsistent"):
        check_contract(edited, _serving(**{"normalize.range_db": 60.0}))


def test_pipelines_without_the_chain_and_cards_without_a_contract():
    p = pf.Pipeline("empty")
    with pytest.raises(ContractError, match=r"has no rf\.stft node"):
        preprocessing_digest(p)
    with pytest.raises(ContractError, match="no rf preprocessing contract found"):
        check_contract({"name": "x", "spec_digest": "b3:1"}, DETECT)
    with pytest.raises(TypeError, match=r"pf\.Pipeline or a spec path"):
        preprocessing_digest(42)
