"""Repository maintenance commands (run by the Makefile)."""
