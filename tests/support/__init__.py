"""Helpers shared by the tests (not test modules): moto extras, API and local-stack drivers, text strategies."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # the one place a test finds the checkout, whatever its depth
