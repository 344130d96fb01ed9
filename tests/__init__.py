"""The tests: one sub-package per kind (unit/ per box, data/, model/, api/, e2e/), shared helpers in support/."""
