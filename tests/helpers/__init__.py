"""Importable helpers shared by the test wings (``from helpers.bars import make_bars``).

Fixtures live in ``conftest.py`` files, never here; test modules import helpers, never each
other. ``tests/`` is on the import path through ``pythonpath`` in pyproject.toml.
"""
