"""Bridges to other simulation frameworks (phys-pipeline); imported only when used."""
