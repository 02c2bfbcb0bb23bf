"""``physflow scan SPEC``: YAML scan blocks, CLI axis overrides, .zarr / .nc output and plots."""

from __future__ import annotations

import numpy as np
import pytest

from physflow.cli import main

from .test_scan_stages import executions, q_function

pytestmark = pytest.mark.timeout(120)

MOD = "tests.pipeline.test_scan_stages"


def write_spec(tmp_path, scan_block: str) -> str:
    log = tmp_path / "log"
    log.mkdir(exist_ok=True)
    spec = tmp_path / "link.yaml"
    spec.write_text(f"""\
name: bpsk
seed: 5
stages:
  tx: {{stage: "{MOD}:tx", config: {{log: "{log}", n: 4000}}}}
  channel: {{stage: "{MOD}:channel", config: {{log: "{log}"}}, inputs: {{x: tx}}}}
  detect: {{stage: "{MOD}:detect", config: {{log: "{log}"}}, inputs: {{y: channel}}}}
  metrics:
    stage: "{MOD}:metrics"
    config: {{log: "{log}"}}
    inputs: {{x: tx, decided: detect}}
  theory: {{stage: "{MOD}:theory_ber"}}
{scan_block}""")
    return str(spec)


ZIP_BLOCK = """\
scan:
  zip:
    channel.snr_db: [0.0, 2.0, 4.0, 6.0]
    theory.snr_db: [0.0, 2.0, 4.0, 6.0]
  collect: [metrics.ber]
  reference: theory
  plot: {x: channel.snr_db, logy: true}
"""


def test_cli_scan_writes_zarr_netcdf_and_plot(tmp_path, capsys):
    import xarray as xr

    spec = write_spec(tmp_path, ZIP_BLOCK)
    store = str(tmp_path / "store")
    out_zarr, out_nc, png = tmp_path / "r.zarr", tmp_path / "r.nc", tmp_path / "ber.png"
    code = main(["scan", spec, "-o", str(out_zarr), "--plot", str(png), "--store", store, "-q"])
    assert code == 0, capsys.readouterr().err
    assert "4 points" in capsys.readouterr().out
    ds = xr.open_zarr(out_zarr, consolidated=False).load()
    assert ds["metrics.ber"].dims == ("point",)
    assert ds["channel.snr_db"].values.tolist() == [0.0, 2.0, 4.0, 6.0]
    theory = [q_function(10 ** (s / 20)) for s in (0.0, 2.0, 4.0, 6.0)]
    assert np.allclose(ds["theory"].values, theory)  # the reference is collected as well
    ber = ds["metrics.ber"].values
    assert np.all(np.abs(ber - theory) < 5 * np.sqrt(np.array(theory) / 4000) + 1e-3)
    assert ds.attrs["manifest_path"].endswith(".json")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000

    code = main(["scan", spec, "-o", str(out_nc), "--store", store, "-q"])
    assert code == 0
    nc = xr.open_dataset(out_nc, engine="h5netcdf")
    assert np.array_equal(nc["metrics.ber"].values, ber)
    assert executions(tmp_path / "log", "channel") == 4  # the second scan was all hits


def test_cli_grid_override_makes_a_heatmap(tmp_path, capsys):
    spec = write_spec(
        tmp_path, "scan:\n  grid: {channel.snr_db: [0.0]}\n  collect: [metrics.ber]\n"
    )
    png = tmp_path / "heat.png"
    code = main(
        [
            "scan",
            spec,
            "--grid",
            "channel.snr_db=lin:0:6:3",
            "--grid",
            "detect.threshold=-0.1,0,0.1",
            "--plot",
            str(png),
            "--store",
            str(tmp_path / "store"),
            "-q",
            "--executor",
            "threads",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "9 points (grid: channel.snr_db x detect.threshold)" in out.out
    assert png.stat().st_size > 5000
    assert executions(tmp_path / "log", "channel") == 3


def test_cli_failed_point_exit_code_and_usage_errors(tmp_path, capsys):
    spec = write_spec(tmp_path, ZIP_BLOCK)
    store = str(tmp_path / "store")
    code = main(
        [
            "scan",
            spec,
            "--set",
            "channel.fail_snr_db=2.0",
            "--store",
            store,
            "-q",
            "-o",
            str(tmp_path / "f.nc"),
        ]
    )
    out = capsys.readouterr()
    assert code == 1
    assert "FAILED point 1" in out.err and "channel model undefined" in out.err
    import xarray as xr

    ds = xr.open_dataset(tmp_path / "f.nc", engine="h5netcdf")
    assert np.isnan(ds["metrics.ber"].values[1])

    assert main(["scan", spec, "--grid", "channel.snr=1,2", "--store", store, "-q"]) == 2
    assert "has no field 'snr'" in capsys.readouterr().err
    assert main(["scan", spec, "--grid", "channel.snr_db=lin:0:1", "--store", store]) == 2
    assert "lin:START:STOP:N" in capsys.readouterr().err
    assert main(["scan", spec, "-o", str(tmp_path / "x.csv"), "--store", store]) == 2
    no_scan = write_spec(tmp_path, "")
    assert main(["scan", no_scan, "--store", store]) == 2
    assert "no scan: block" in capsys.readouterr().err


def test_cli_sample_ranges(tmp_path, capsys):
    spec = write_spec(tmp_path, ZIP_BLOCK)
    code = main(
        [
            "scan",
            spec,
            "--sample",
            "6",
            "--range",
            "channel.snr_db=1:10:log",
            "--sample-seed",
            "4",
            "--collect",
            "metrics.ber",
            "--store",
            str(tmp_path / "store"),
            "-q",
            "-o",
            str(tmp_path / "s.zarr"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    import xarray as xr

    ds = xr.open_zarr(tmp_path / "s.zarr", consolidated=False)
    assert ds.sizes["point"] == 6
    snr = ds["channel.snr_db"].values
    assert np.all((snr >= 1) & (snr <= 10)) and len(set(snr.tolist())) == 6


def test_plot_scan_reference_per_line_and_clear_errors(tmp_path):
    import xarray as xr

    from physflow.scans.axes import ScanError
    from physflow.scans.plot import plot_scan

    snr = np.arange(5.0)
    fmt = np.array(["qpsk", "16qam"], dtype=object)
    measured = np.array([[0.1, 0.05, 0.02, 0.01, 0.004], [0.2, 0.1, 0.06, 0.03, 0.01]])
    ds = xr.Dataset(
        {"ber": (("fmt", "snr"), measured), "theory": (("fmt", "snr"), measured * 0.9)},
        coords={"fmt": fmt, "snr": snr},
        attrs={"pipeline": "t"},
    )
    out = plot_scan(ds, tmp_path / "a.png", x="snr", reference="theory", logy=True)
    assert out.stat().st_size > 5000
    heat = plot_scan(ds[["ber"]], tmp_path / "h.png", logy=True)
    assert heat.stat().st_size > 5000
    with pytest.raises(ScanError, match="no variable 'nope'"):
        plot_scan(ds, tmp_path / "b.png", y=["nope"])
    cube = xr.Dataset(
        {"v": (("a", "b", "c"), np.zeros((2, 2, 2)))},
        coords={"a": [0, 1], "b": [0, 1], "c": [0, 1]},
    )
    with pytest.raises(ScanError, match="select a 1-D or 2-D slice"):
        plot_scan(cube, tmp_path / "c.png")


def test_yaml_points_and_sample_blocks(tmp_path, capsys):
    import xarray as xr

    points = """\
scan:
  points:
    - {channel.snr_db: 1.0, detect.threshold: 0.0}
    - {channel.snr_db: 7.0, detect.threshold: 0.1}
  collect: [metrics.ber]
"""
    spec = write_spec(tmp_path, points)
    store = str(tmp_path / "store")
    assert main(["scan", spec, "--store", store, "-q", "-o", str(tmp_path / "p.nc")]) == 0
    ds = xr.open_dataset(tmp_path / "p.nc", engine="h5netcdf")
    assert ds["detect.threshold"].values.tolist() == [0.0, 0.1]
    assert ds["metrics.ber"].values[0] > ds["metrics.ber"].values[1]

    sample = """\
scan:
  sample: {n: 5, method: sobol, seed: 2, ranges: {channel.snr_db: [0.0, 8.0]}}
  collect: [metrics.ber]
"""
    spec = write_spec(tmp_path, sample)
    assert main(["scan", spec, "--store", store, "-q", "-o", str(tmp_path / "s.nc")]) == 0
    first = xr.open_dataset(tmp_path / "s.nc", engine="h5netcdf")["channel.snr_db"].values
    # --sample-seed overrides the block's seed; --sample N its size
    code = main(
        [
            "scan",
            spec,
            "--store",
            store,
            "-q",
            "--sample",
            "3",
            "--sample-seed",
            "9",
            "-o",
            str(tmp_path / "t.nc"),
        ]
    )
    assert code == 0
    other = xr.open_dataset(tmp_path / "t.nc", engine="h5netcdf")["channel.snr_db"].values
    assert first.size == 5 and other.size == 3 and not np.isin(other, first).any()
    assert "5 points (sample: point)" in capsys.readouterr().out


def _grid_dataset(xs, ys, values, names=("a.x", "b.y"), var="v"):
    import xarray as xr

    return xr.Dataset(
        {var: ((names[1], names[0]), np.asarray(values, dtype=float))},
        coords={names[0]: list(xs), names[1]: list(ys)},
        attrs={"pipeline": "t"},
    )


def test_heatmap_axes_follow_log_spacing_and_logx():
    """2-D heatmaps used linear axes for log:... grids and ignored --logx."""
    from physflow.scans.plot import log_spaced, scan_figure

    xs = np.logspace(-3, 0, 4).tolist()  # log:1e-3:1:4
    ys = [1.0, 2.0, 3.0]
    ds = _grid_dataset(xs, ys, np.arange(12.0).reshape(3, 4))
    ax = scan_figure(ds).axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    # cells are centred on the values in log space: edges are geometric midpoints
    mesh = ax.collections[0]
    edges = np.unique(np.round(mesh.get_coordinates()[0, :, 0], 12))
    np.testing.assert_allclose(edges, np.logspace(-3.5, 0.5, 5), rtol=1e-9)
    lin = _grid_dataset([1.0, 2.0, 3.0, 4.0], [10.0, 100.0, 1000.0], np.ones((3, 4)))
    ax = scan_figure(lin).axes[0]
    assert ax.get_xscale() == "linear" and ax.get_yscale() == "log"
    ax = scan_figure(lin, logx=True).axes[0]
    assert ax.get_xscale() == "log"
    assert log_spaced([1, 10, 100]) and not log_spaced([1, 2, 3]) and not log_spaced([0, 1, 10])


def test_zero_rates_are_upper_bounds_on_log_plots():
    """BER plots silently dropped points with zero errors; now a downward triangle at 3/n."""
    import xarray as xr

    from physflow.scans.plot import scan_figure

    snr = [0.0, 4.0, 8.0, 12.0]
    ds = xr.Dataset(
        {
            "ber": ("snr", [1e-1, 1e-2, 0.0, 0.0]),
            "n_bits": ("snr", [1000, 1000, 4000, 8000]),
        },
        coords={"snr": snr},
    )
    ax = scan_figure(ds, y=["ber"], logy=True, trials="n_bits").axes[0]
    bounds = [line for line in ax.get_lines() if line.get_marker() == "v"]
    assert len(bounds) == 1
    np.testing.assert_array_equal(bounds[0].get_xdata(), [8.0, 12.0])
    np.testing.assert_allclose(bounds[0].get_ydata(), [3 / 4000, 3 / 8000])
    assert "upper bound" in bounds[0].get_label()
    # without counts the zeros sit on the bottom of the axis, still visible
    ax = scan_figure(ds, y=["ber"], logy=True).axes[0]
    (floor,) = [line for line in ax.get_lines() if line.get_marker() == "v"]
    assert np.all(np.asarray(floor.get_ydata()) <= 1e-2) and len(floor.get_xdata()) == 2
    # linear axes draw zeros as ordinary points
    ax = scan_figure(ds, y=["ber"]).axes[0]
    assert not [line for line in ax.get_lines() if line.get_marker() == "v"]


def test_cli_trials_option_and_spec_key(tmp_path, capsys):
    spec = write_spec(tmp_path, ZIP_BLOCK)
    png = tmp_path / "ber.png"
    args = ["scan", spec, "--plot", str(png), "--trials", "metrics.errors", "-q"]
    assert main([*args, "--store", str(tmp_path / "store")]) == 0, capsys.readouterr().err
    assert png.read_bytes()[:4] == b"\x89PNG"
    bad = write_spec(
        tmp_path, ZIP_BLOCK.replace("logy: true}", "logy: true, trials: metrics.nope}")
    )
    assert main(["scan", bad, "--store", str(tmp_path / "store")]) == 2
    assert "trials" in capsys.readouterr().err
