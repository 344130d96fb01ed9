"""Unit tests of the reports (chalice_app/reports/)."""
