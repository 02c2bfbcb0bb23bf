"""The content-addressed store: objects (values by digest) and actions (key -> record).

Modules: store (Store: the API), backend (local dir / fsspec), arrays (native zarr v3 writer and
verified reader), codecs (type -> digest rule, encoder, decoder), xarray_codec, tensors,
inline (tagged value trees), records, context (StageContext: streaming outputs), lazy (dask
inputs), verify (verify, quarantine), gc (stats, gc), errors. See docs/store.md.
"""
