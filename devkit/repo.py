"""Where the checkout is, and the folders in it that several boxes name."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CHALICE_DIR = REPO_ROOT / "chalice_app"  # the Chalice project: `chalice local` and `chalice deploy` run here
