"""Operating the AWS stages: stages' variables, deployment, canary routing, table administration.

The tools beside the Chalice project import the API's code as the Lambda does, as top-level `chalicelib`:
importing this package puts chalice_app/ on the path. Chalice zips app.py and chalicelib/ only.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
if str(PROJECT_DIR) not in sys.path:
    sys.path.append(str(PROJECT_DIR))
