"""Expectations on the real data."""
