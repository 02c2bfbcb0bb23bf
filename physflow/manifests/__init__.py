"""Run manifests: schema, writer, reader and the harness adapter."""
