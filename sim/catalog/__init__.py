"""Packaged catalogs (hardware generations, model shapes): data with a source for every number."""
