"""Unit tests of the model core (model/*.py)."""
