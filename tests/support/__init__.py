"""Helpers shared by the tests (not test modules): moto extras, API and local-stack drivers, text strategies."""

from devkit.repo import REPO_ROOT  # noqa: F401  (the one place a test finds the checkout, whatever its depth)
