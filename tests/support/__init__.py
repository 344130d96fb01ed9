"""Helpers shared by the tests (not test modules): moto extras, API and local-stack drivers, text strategies."""
