"""Audit: false cache hits and values altered by the cache ("when in doubt, miss").

Each test shows one way two different values (or two different pieces of work) could share a
digest or key, or a stored value could come back as something else than the stage returned.
Executions are counted in-process; stores are real directories.
"""

from __future__ import annotations

import collections
import enum
import typing
from collections import Counter

import msgspec
import numpy as np
import pytest

import physflow as pf
from physflow.artifacts.inline import UnsupportedValueError
from physflow.core.hashing import UnhashableValueError, digest

CALLS: Counter[str] = Counter()


@pytest.fixture
def store(tmp_path):
    CALLS.clear()
    return pf.Store(tmp_path / "store")


# -- stages --------------------------------------------------------------------------------------


class Mode(enum.IntEnum):
    A = 1
    B = 2


class Letter(enum.StrEnum):
    A = "a"


class Anything(pf.Config):
    value: typing.Any = 1


@pf.stage(version="1")
def describe(cfg: Anything) -> str:
    CALLS["describe"] += 1
    return f"{type(cfg.value).__name__}:{cfg.value!r}"


class Pick(pf.Config):
    same: bool = False


@pf.stage(version="1")
def two_tensors(cfg: Pick) -> list:
    """[a, b] or [b, b]: large torch tensors in one output (stored via host numpy arrays)."""
    import torch

    CALLS["two_tensors"] += 1
    a = torch.arange(20_000, dtype=torch.float64)
    b = a + 1.0
    return [b, b] if cfg.same else [a, b]


@pf.stage(version="1")
def tensor_sum(x: list) -> float:
    CALLS["tensor_sum"] += 1
    return float(sum(float(t.sum()) for t in x))


class Kind(pf.Config):
    kind: str = "bytes"


@pf.stage(version="1")
def structured_scalar(cfg: Kind) -> typing.Any:
    CALLS["structured_scalar"] += 1
    return np.zeros(1, dtype=[("a", "<i4"), ("b", "<f4")])[0]


@pf.stage(version="1")
def byte_value(cfg: Kind) -> typing.Any:
    CALLS["byte_value"] += 1
    return bytearray(b"xyz") if cfg.kind == "bytearray" else b"xyz"


# -- 1. digests ----------------------------------------------------------------------------------


def test_enum_with_int_or_str_mixin_does_not_digest_like_the_plain_value():
    assert digest(Mode.A) != digest(1)
    assert digest(Letter.A) != digest("a")
    assert digest(enum.IntFlag("Flag", "X Y").X) != digest(1)
    assert digest(Mode.A) == digest(Mode(1))  # still deterministic


def test_enum_config_value_is_a_miss_after_the_plain_int(store):
    p1 = pf.Pipeline("enum").add("d", describe, Anything(value=1))
    p2 = pf.Pipeline("enum").add("d", describe, Anything(value=Mode.A))
    assert p1.run(store=store)["d"] == "int:1"
    res = p2.run(store=store)
    assert res.misses == ["d"], "an IntEnum config value hit the record of the plain int"
    assert res["d"] == "Mode:<Mode.A: 1>"


Point = collections.namedtuple("Point", "x y")


class Tagged(str):
    pass


class WithUnit(list):
    pass


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_subclasses_of_builtin_types_do_not_digest_like_their_base():
    assert digest(Point(1, 2)) != digest((1, 2))
    assert digest(Tagged("a")) != digest("a")
    assert digest(np.str_("a")) != digest("a")
    assert digest(np.bytes_(b"a")) != digest(b"a")
    assert digest(bytearray(b"a")) != digest(b"a")
    assert digest(np.matrix([[1, 2]])) != digest(np.array([[1, 2]]))
    assert digest(collections.defaultdict(list, a=1)) != digest({"a": 1})
    assert digest(collections.defaultdict(list, a=1)) != digest(collections.defaultdict(set, a=1))
    # attributes of a subclass instance count
    m1, m2 = WithUnit([1]), WithUnit([1])
    m1.unit, m2.unit = "m", "s"
    assert digest(m1) != digest(m2)
    # determinism for the same value
    assert digest(Point(1, 2)) == digest(Point(1, 2))


def test_ordered_dict_order_counts_but_plain_dict_order_does_not():
    a = collections.OrderedDict([("a", 1), ("b", 2)])
    b = collections.OrderedDict([("b", 2), ("a", 1)])
    assert a != b and digest(a) != digest(b)
    assert digest(a) != digest(dict(a))
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})


def test_masked_array_mask_enters_the_digest():
    data = [1.0, 2.0, 3.0]
    m1 = np.ma.MaskedArray(data, mask=[False, True, False])
    m2 = np.ma.MaskedArray(data, mask=[False, False, True])
    assert digest(m1) != digest(m2)
    assert digest(np.ma.MaskedArray(data)) != digest(np.array(data))
    assert digest(m1) == digest(np.ma.MaskedArray(data, mask=[False, True, False]))


def test_checked_digest_rules_that_are_correct():
    """Things checked and found right (kept as regression guards)."""
    import torch
    import xarray as xr

    assert digest(np.float64(1.0)) != digest(np.array(1.0))  # scalar vs 0-d array
    assert digest(np.array([1], "M8[s]")) != digest(np.array([1], "M8[ms]"))
    x = np.arange(6.0)
    assert digest(x[::-1]) == digest(x[::-1].copy())  # negative strides by value
    assert digest(np.zeros(2, [("a", "<i4")])) != digest(np.zeros(2, [("c", "<i4")]))
    assert digest(np.array(["a"], "U1")) != digest(np.array(["a"], "S1"))
    assert digest(torch.zeros(2)) != digest(torch.zeros(2, dtype=torch.float64))
    assert digest(torch.zeros(2, 2)) != digest(torch.zeros(4))
    assert digest(torch.zeros(2)) != digest(np.zeros(2, np.float32))
    da = xr.DataArray([1, 2], dims="x", coords={"x": [0, 1]}, name="a", attrs={"u": "m"})
    assert digest(da) != digest(da.rename("b"))
    assert digest(da) != digest(da.assign_attrs(u="s"))
    assert digest(da) != digest(da.assign_coords(x=[0, 2]))
    assert digest(da) != digest(da.assign_coords(x=("x", [0, 1], {"u": "s"})))
    ds3 = xr.Dataset({"a": ("x", [1, 2]), "b": ("x", [0, 1])})
    ds4 = xr.Dataset({"a": ("x", [1, 2])}, coords={"b": ("x", [0, 1])})
    assert digest(ds3) != digest(ds4)
    assert digest({1}) != digest(frozenset({1}))
    assert digest(-(1 << 64)) != digest(1 << 64)


def test_torch_tensor_with_conjugate_or_negative_bit_digests_by_value():
    import torch

    z = torch.tensor([1 + 1j, 2 - 3j])
    assert digest(z.conj()) == digest(torch.tensor([1 - 1j, 2 + 3j]))
    assert digest(z.conj().imag) == digest(torch.tensor([-1.0, 3.0]))


# -- 2. stored values come back as returned ------------------------------------------------------


def test_output_digest_of_a_container_of_tensors_is_the_digest_of_its_value(store):
    import torch

    a = torch.arange(20_000, dtype=torch.float64)
    b = a + 1.0
    for _ in range(3):
        assert store.put_value([a, b]).digest == digest([a, b])
        assert store.put_value({"a": a, "b": b}).digest == digest({"a": a, "b": b})


def test_tensor_container_change_is_not_an_early_cutoff_false_hit(store):
    def pipe(same: bool) -> pf.Pipeline:
        p = pf.Pipeline("tensors")
        p.add("make", two_tensors, Pick(same=same))
        p.add("sum", tensor_sum, x="make")
        return p

    n = 20_000
    both_b = pipe(True).run(store=store)
    assert both_b["sum"] == 2 * (n * (n - 1) / 2 + n)
    res = pipe(False).run(store=store)
    assert res.misses == ["make", "sum"], "changed tensors hit the downstream record"
    assert res["sum"] == n * (n - 1) / 2 + (n * (n - 1) / 2 + n)


def _roundtrip(store, value):
    return store.get_value(store.put_value(value))


class Inner(msgspec.Struct):
    x: int
    y: tuple


class Outer(msgspec.Struct):
    inner: Inner
    items: list


@pytest.mark.parametrize(
    "value",
    [
        np.float32(1.5),
        np.int16(-3),
        np.datetime64(3, "ms"),
        1 << 70,
        -(1 << 70),
        (1 << 64) - 1,
        (1, [2, (3,)]),
        {1: "a", (2, 3): "b", None: 1.5},
        Mode.B,
        Outer(Inner(1, (2, 3)), [Inner(4, ())]),
        np.arange(5, dtype=">i4"),
        b"abc",
    ],
    ids=repr,
)
def test_values_round_trip_with_their_type(store, value):
    back = _roundtrip(store, value)
    assert type(back) is type(value)
    assert digest(back) == digest(value)


def _matrix():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix([[1, 2]])


@pytest.mark.parametrize(
    "value",
    [
        Point(1, 2),
        collections.OrderedDict(a=1),
        collections.defaultdict(list),
        Tagged("a"),
        {1, 2},
        frozenset({1}),
        bytearray(b"abc"),
        bytearray(100_000),
        np.ma.MaskedArray([1.0, 2.0], mask=[False, True]),
        _matrix(),
        np.zeros(1, dtype=[("a", "<i4"), ("b", "<f4")])[0],
    ],
    ids=lambda v: type(v).__name__,
)
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_values_that_would_change_type_are_refused_or_faithful(store, value):
    try:
        back = _roundtrip(store, value)
    except (UnsupportedValueError, UnhashableValueError):
        return
    assert type(back) is type(value)
    assert back.dtype == value.dtype if hasattr(value, "dtype") else back == value


def test_stage_returning_structured_scalar_or_bytearray_never_alters_it(store):
    """Refused (the node fails with a clear error) or delivered as returned, miss and hit."""
    cases = (
        (structured_scalar, Kind(), lambda v: v.dtype.names == ("a", "b")),
        (byte_value, Kind(kind="bytearray"), lambda v: type(v) is bytearray),
    )
    for stage, cfg, faithful in cases:
        p = pf.Pipeline("odd").add("v", stage, cfg)
        for _ in range(2):  # miss, then hit
            res = p.run(store=store)
            if res.failed:
                assert "no codec" in res.errors["v"]
                break
            assert faithful(res["v"]), res["v"]
    res = pf.Pipeline("odd").add("v", byte_value, Kind()).run(store=store)
    assert type(res["v"]) is bytes


# -- 3. scans ------------------------------------------------------------------------------------


def test_scan_points_match_independent_runs(tmp_path):
    from tests.pipeline.counting_stages import Scale, noise, scale, total

    def pipe(seed: int, f1: float, f2: float) -> pf.Pipeline:
        p = pf.Pipeline("scan-audit", seed=seed)
        p.add("noise", noise, Scale(factor=f1))
        p.add("scaled", scale, Scale(factor=f2), x="noise")
        p.add("sum", total, x="scaled")
        return p

    ds = pipe(0, 1.0, 1.0).scan(
        {"seed": [1, 2], "noise.factor": [1.0, 2.0], "scaled.factor": [3.0, 5.0]},
        collect=["sum"],
        store=pf.Store(tmp_path / "scan"),
        write_manifest=False,
    )
    values = set()
    for seed in (1, 2):
        for f1 in (1.0, 2.0):
            for f2 in (3.0, 5.0):
                ref = pipe(seed, f1, f2).run(store=pf.Store(tmp_path / f"ref{seed}{f1}{f2}"))
                got = ds["sum"].sel({"seed": seed, "noise.factor": f1, "scaled.factor": f2})
                assert float(got) == ref["sum"]
                values.add(ref["sum"])
    assert len(values) == 8


# -- 5. fingerprints -----------------------------------------------------------------------------


def _no_source_function(src: str, name: str = "f"):
    namespace: dict = {"__name__": "audit_no_source"}
    exec(compile(src, "<audit-no-source>", "exec"), namespace)
    return namespace[name]


def test_fingerprint_without_source_sees_tuple_constants_and_defaults():
    from physflow.core.fingerprint import normalised_source

    pairs = [
        ("def f(x):\n    return x + (1, 2)\n", "def f(x):\n    return x + (1, 3)\n"),
        ("def f(x):\n    return x in {1, 2}\n", "def f(x):\n    return x in {1, 3}\n"),
        ("def f(x=1):\n    return x\n", "def f(x=2):\n    return x\n"),
        ("def f(*, x=1):\n    return x\n", "def f(*, x=2):\n    return x\n"),
    ]
    for one, two in pairs:
        f1, f2 = _no_source_function(one), _no_source_function(two)
        assert normalised_source(f1) != normalised_source(f2), (one, two)
        assert normalised_source(f1) == normalised_source(_no_source_function(one))


# -- 4. records ----------------------------------------------------------------------------------


def test_record_filed_under_another_key_is_a_miss(tmp_path, actions_layout):
    """A record is only served for the key it was written for (a misplaced one is a miss)."""
    store = pf.Store(tmp_path / "store", actions=actions_layout)
    p1 = pf.Pipeline("rec").add("d", describe, Anything(value=1))
    p2 = pf.Pipeline("rec").add("d", describe, Anything(value=2))
    key1 = p1.run(store=store).outcome.states["d"].key
    key2 = p2.run(store=store).outcome.states["d"].key
    assert key1 != key2
    # copy record 1 over record 2's entry in the real storage: same bytes, wrong place
    from tests.conftest import RawRecords

    raw = RawRecords(store)
    raw.write(key2, raw.read(key1))
    assert store.get_action(key2) is None
    replayed = p2.run(store=store)  # the plan record keeps the right record for key2
    assert replayed.outcome.replayed and replayed["d"] == "int:2"
    store.drop_plans()  # the per-node path must not serve the misplaced record
    r3 = p2.run(store=store)
    assert r3["d"] == "int:2" and r3.misses == ["d"]


# -- 6. phys-pipeline interop --------------------------------------------------------------------

_PP_MODULE = """
from phys_pipeline import PipelineStage, StageConfig, StageResult
from pydantic import field_validator


class AuditConfig(StageConfig):
    gain: float = 2.0

    @field_validator("gain")
    @classmethod
    def _scale(cls, v):
        return v * {factor}


class AuditStage(PipelineStage):
    version = "1"

    def process(self, state, *, policy=None):
        return StageResult(state=state, metrics={{"gain": self.cfg.gain}})
"""


def _pp_stage(folder, factor):
    """from_phys_pipeline on a stage whose module is pp_audit_mod loaded from ``folder``."""
    import importlib.util
    import sys

    folder.mkdir()
    path = folder / "pp_audit_mod.py"
    path.write_text(_PP_MODULE.format(factor=factor))
    spec = importlib.util.spec_from_file_location("pp_audit_mod", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["pp_audit_mod"] = module
    try:
        spec.loader.exec_module(module)
        return pf.from_phys_pipeline(module.AuditStage(module.AuditConfig(gain=2.0)))
    finally:
        del sys.modules["pp_audit_mod"]


def test_phys_pipeline_config_class_code_enters_the_fingerprint(tmp_path):
    """A pydantic validator transforms config values: changing it must change the key."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the sources must be found
        s1 = _pp_stage(tmp_path / "a", 1)
        s10 = _pp_stage(tmp_path / "b", 10)
    assert s1.fingerprint != s10.fingerprint


# -- 4b. values shared in memory between consumers -------------------------------------------


@pf.stage(version="1")
def ones(cfg: Kind) -> typing.Any:
    vec = np.ones(10)
    return {"vec": vec, "list": [vec.copy()]} if cfg.kind == "nested" else vec


@pf.stage(version="1")
def doubles_in_place(x: typing.Any) -> float:
    arr = x["list"][0] if isinstance(x, dict) else x
    arr *= 2  # a stage mutating its input: must never change what other consumers get
    return float(arr.sum())


@pf.stage(version="1")
def plain_sum(x: typing.Any) -> float:
    arr = x["list"][0] if isinstance(x, dict) else x
    return float(np.sum(arr))


@pytest.mark.parametrize("executor", ["serial", "threads"])
@pytest.mark.parametrize("kind", ["flat", "nested"])
def test_in_place_mutation_by_one_consumer_never_reaches_another(tmp_path, executor, kind):
    p = pf.Pipeline("mutation")
    p.add("a", ones, Kind(kind=kind))
    p.add("mutate", doubles_in_place, x="a")
    p.add("total", plain_sum, x="a")
    store = pf.Store(tmp_path / "store")
    res = p.run(store=store, executor=executor)
    assert res["total"] == 10.0, "a consumer saw another consumer's in-place change"
    assert p.run(store=store)["total"] == 10.0  # and nothing wrong was cached
    if res.failed:  # refused loudly is fine; silently wrong is not
        assert "read-only" in res.errors["mutate"]


def test_torch_parameter_is_refused_not_returned_as_plain_tensor(store):
    import torch

    with pytest.raises(UnsupportedValueError):
        store.put_value(torch.nn.Parameter(torch.ones(2)))
    assert type(_roundtrip(store, torch.ones(2))) is torch.Tensor


def test_structured_dtype_with_out_of_order_fields_digests_by_layout():
    def dt(offsets):
        return np.dtype({"names": ["a", "b"], "formats": ["<i4", "<i4"], "offsets": offsets})

    one, two = np.zeros(1, dt([4, 0])), np.zeros(1, dt([0, 4]))
    one["a"], two["a"] = 1, 1
    assert digest(one) != digest(two)
    assert digest(one) == digest(one.copy())


@pf.stage(version="1", outputs=["a"])
def one_output(cfg: Kind) -> dict:
    return {"a": 5}


@pf.stage(version="1")
def type_of(x: typing.Any) -> str:
    return type(x).__name__


def test_whole_node_ref_and_single_output_ref_are_different_inputs(store):
    """``"n"`` (dict of all outputs) and ``"n.a"`` (the output) must never share a key."""
    p = pf.Pipeline("refs")
    p.add("n", one_output, Kind())
    p.add("whole", type_of, x="n")
    p.add("part", type_of, x="n.a")
    for _ in range(2):  # miss, then hit
        res = p.run(store=store)
        assert (res["whole"], res["part"]) == ("dict", "int")
    assert res.outcome.states["whole"].key != res.outcome.states["part"].key


class Doubling(msgspec.Struct):
    x: int
    arr: typing.Any = None

    def __post_init__(self):
        self.x = self.x * 2


@pf.stage(version="1")
def make_doubling(cfg: Kind) -> typing.Any:
    return Doubling(1, np.ones(3))


@pf.stage(version="1")
def read_x(s: typing.Any) -> int:
    return s.x


def test_struct_shared_in_memory_is_not_rebuilt_through_post_init(store):
    p = pf.Pipeline("post-init")
    p.add("s", make_doubling, Kind())
    p.add("x", read_x, s="s")
    assert p.run(store=store)["x"] == 2  # miss: the consumer shares the value in memory
    again = p.run(store=store)  # hit: the value is decoded from the store
    assert again["s"].x == 2 and np.array_equal(again["s"].arr, np.ones(3))
    assert _roundtrip(store, Doubling(1)).x == 2
