"""Pinned digests of a fixed corpus: any change to the digest encoding fails here.

Every user's cache keys are built from these encodings; a change that alters one silently
invalidates (or worse, mixes) their caches. A deliberate change bumps
``physflow.core.framing.HASH_FORMAT`` (stores record it) and re-pins these values. The values
were computed by the encoding as released before the kernel move to ``physflow.core``, so this
file also proves the move changed no digest.
"""

from __future__ import annotations

import pytest

import physflow as pf
from physflow.core import framing
from physflow.core.keys import cache_key, combined_outputs_digest

from .golden_corpus import corpus

GOLDEN = {
    "none": "b3:34ab8b65c2622b75106dba567a23b032357b6f78bb9893221cf5c4a61cfc4689",
    "true": "b3:3d5ce082d3e6c13e406b078e5157bb6ac5a91d7eb1c56359bd02c59d8a4b7f65",
    "false": "b3:542a1d6b133a93a2b22779029c14f78023ce6f98dd9780ba3c1f23535434d0a6",
    "int_0": "b3:59dddf92ea0372c4b3fcc13fb1c09140393e2c4e8342ffe92e39dfca68ff3fe9",
    "int_1": "b3:15d87968f75d930069d81437dfaa28f24aa5ebdc49c03eea7a4605d7119bed92",
    "int_neg": "b3:755549231ac6e48b2cf0be02f19a0d156078ed052d7c8fbddd11a3a109a6f859",
    "int_big": "b3:64bb5dc9fdba68af507b5ea402c7d5d95c5d91b5786ea0780a3149bca06bdccc",
    "float_0": "b3:9925494339f5d628d824d6611de31d0c5e264fdf1956ded9f0c4ee930182e555",
    "float_neg_0": "b3:05af4945872009a34e79d38236ee40a73b41e318ba56d919ce32171b76868629",
    "float_1": "b3:a94f21935469ff1af6aa6072c8266aede92b50aafee3dbd708c4ff116f3cca74",
    "float_nan": "b3:408a4d8aa4e2d1a459772cdf572d92c1c88770f88f727a95c52d5368513b43d5",
    "float_inf": "b3:dab4518964e87d6aeccef8bc0b33e00c087d5340fef249d1fee7d0b9fdb46dc1",
    "complex": "b3:d9da05bd538e7797709dd3dbabc7d5759bd0af92fb4bfcbf470cea4c12a84bdf",
    "str_empty": "b3:7f31207b6b43aba78e8c5d446676f6514acc311ca968b8389fc93897c67a921e",
    "str_1": "b3:80fb23ee5f67788c87187edd3ad436fb89f3d173cd4d641f38004b7e74e448d4",
    "str_unicode": "b3:abd77524e291c8a97d10d5fb9188afa2e0465119ddd870b469fd8e27e07435c7",
    "bytes": "b3:8b0665792a7c64b1e976fec063d00f8cbb8151ecf6a533e7ddce32d975777d79",
    "bytearray": "b3:080a3251f11a8b9917f1c39465d5001565aaab39e1cdc7667dbb1cba5b6435ed",
    "tuple": "b3:3370b22d607d9ca8fa2d54ee6fb5998b240d5a77b7982580d6e7812f1c823f76",
    "list": "b3:80f47490cf44b564d26f27f9c7f2d372f35d2d2e9b9cbf1c073ed39882d36ae9",
    "nested": "b3:743379dfd082a828220f6a47d37c52389888981d2fc52a945c68693a2cb55473",
    "dict_order": "b3:c348eafa699ad9e36bef54fe39d5a21619dd8a35dee110980d8d67b0eb2133ec",
    "set": "b3:431e688c594249ee5413f9d6e8cb09dded549ff488750490617a79f3f9f2fb39",
    "frozenset": "b3:0a42c699df4e6db7d5e57c1ff85a9710de071a91f173e796768bfd99d36fffe3",
    "ordered_dict": "b3:70bb8135c9e866b8c23d223d7166f5d4a54dbabff4ad935679a352a1c5e09b4c",
    "enum": "b3:bf6dbd93073dbedf94575e81700ddafa9be6aa69d65705aba15d9a29d6a9e0c9",
    "int_enum": "b3:8c530d1dbd69083dcfc5107881dae26bdf589580bd9443c77c311195dd7acdfc",
    "config": "b3:0073ea300dfcd8132262f3493b859cd6b631def11edb6915266c9306bcd6e984",
    "struct": "b3:62bfdd526727550a73f0e27de93d1ba0382664bfdc66293a79efd00c004ab21d",
    "np_float64": "b3:50cc876f2eff329e002448754c9e5d2b44ef1bb37b83b5c05863f5628ad890af",
    "np_int8": "b3:6b95401d3c95ffaca5b68c00ca8f532fb4c4b1a3ecb5f7c5edd8fac38f6b561e",
    "np_nan32": "b3:46e9d75b528e1d2a6653f0b0fd2fbb3d1c10d257836ce8f61a9c3477a11255d2",
    "arr_f64": "b3:31baa6c32773c420bbe08cef68aa696cf5f3331e8d4a12103e723fb25ff15c21",
    "arr_f32_big_endian": "b3:bf9d426270a11a1985cc6ae46bf5785974728fdc6bc438343b76d995d72a8537",
    "arr_fortran": "b3:a6e9721b4c29aaaab61cd943418cd82dea2734072d277a22178e6299ad7808a7",
    "arr_complex": "b3:9f4e5eca908988222a5e5aa0cccab5d406b1fb4f2b93cd83dec5053e2f887100",
    "arr_bool": "b3:b2014dd0e5985973d4a647752e4462a284ff6b2897141ff81f33f4a3ba7bdce7",
    "arr_empty": "b3:da572e21880a45f65a99108e932cd8c1722e5aad66c900e4738de56b6e19c5b7",
    "arr_0d": "b3:d008ca99b1d6229ce56105209faed88201ffc0152aedd491ef3bfac807b50471",
    "arr_str": "b3:3108f53e89371d93517cfa72025ec655b2cf3cc690632be0e894d5fb5939899c",
    "arr_structured": "b3:781980462cfcf277b020975a6d7f2c3d7cf63768cee22893864bd0f319c78ee9",
    "arr_large": "b3:dec85e0372e05401a39c5d77a05fdf775294b8704ca910ba75ac2bae3e6007eb",
    "masked": "b3:3d8fd5b699dd829ea137151a9d0bc535c148339ffc898926288a60d464f4ba76",
}
GOLDEN_KEY = "b3:f61c766cc86424066dff771abdfb75a33464dd86e76de35f17d64cbd0687b659"
GOLDEN_KEY_NO_RNG = "b3:b97b86c6621411a64938c089ec7d378587e2809ba7dd7aa44267d04dc23f0a6b"
#: plan records are a cache of the action cache: this digest moved to the one framing (v3)
GOLDEN_PLAN = "b3:ad0bbfac9e68751ea1ac8cedbdbcaadfc2ac3e07297dcc32ffd9a68610fad3b5"
GOLDEN_OUTPUTS = "b3:61ae4511d05554c622f207868e5b0154ee563b83d48534aa83970de369d1445a"


def test_hash_format_version_is_the_pinned_one():
    # bump together with the values below, never alone
    assert framing.HASH_FORMAT == 1


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_value_digest_is_pinned(name):
    assert pf.digest(corpus()[name]) == GOLDEN[name]


def test_corpus_digests_are_all_distinct():
    assert len(set(GOLDEN.values())) == len(GOLDEN)


def test_cache_key_is_pinned():
    inputs = {"b": "b3:" + "3" * 64, "a": "b3:" + "4" * 64}
    assert cache_key("b3:" + "1" * 64, "b3:" + "2" * 64, inputs, "7:1:2") == GOLDEN_KEY
    assert cache_key("b3:" + "1" * 64, "b3:" + "2" * 64, {}, None) == GOLDEN_KEY_NO_RNG


def test_combined_outputs_digest_is_pinned():
    digests = {"y": "b3:" + "5" * 64, "x": "b3:" + "6" * 64}
    assert combined_outputs_digest(digests) == GOLDEN_OUTPUTS


def _golden_plan():
    """Two plan nodes of a fixed stage (fingerprint pinned, so no source text is involved)."""
    from physflow.pipeline.plan import InputRef, PlanNode
    from physflow.pipeline.stage import InputSpec, Stage

    def func(x=None, *, rng=None):  # never called
        return x

    stage = Stage(
        func=func,
        name="golden:stage",
        version="1",
        config_type=None,
        inputs=(InputSpec("x", False),),
        outputs=None,
        uses_rng=True,
        uses_ctx=False,
        fingerprint="b3:" + "7" * 64,
    )
    a = PlanNode("a", "a", stage, None, pf.digest(None), {}, seed=5)
    b = PlanNode("b", "b", stage, None, pf.digest(None), {"x": InputRef("a", None)}, seed=5)
    return [a, b]


def test_plan_digest_is_pinned():
    from physflow.pipeline.plan import plan_digest

    assert plan_digest(_golden_plan()) == GOLDEN_PLAN
