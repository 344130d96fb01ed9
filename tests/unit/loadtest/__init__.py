"""Unit tests of loadtest/."""
