"""Unit tests of the offline stack (chalice_app/local/)."""
