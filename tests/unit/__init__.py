"""Unit tests, one folder per box, one file per module: tests/unit/<box>/.../test_<module>.py."""
