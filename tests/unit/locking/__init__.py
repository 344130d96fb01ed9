"""Unit tests of locking/."""
