"""Unit tests of chalice_app/ (its root: app.py)."""
