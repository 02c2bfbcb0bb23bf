"""Parameter scans: axes (grid, zip, points, samples), one shared plan for all points, the run,
its xarray result and plots. See docs/scans.md."""
