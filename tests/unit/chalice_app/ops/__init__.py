"""Unit tests of the deployment and operations commands (chalice_app/ops/)."""
