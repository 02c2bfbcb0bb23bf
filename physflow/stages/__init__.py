"""Stage packs by domain. Each pack registers its stages in the ``physflow.stages`` entry points."""
