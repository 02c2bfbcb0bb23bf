"""The content-addressed store: objects (values by digest) and actions (key -> record)."""
