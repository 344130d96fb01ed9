"""Operating the AWS stages: the stages' variables (`stages`), the deployment chain (`deploy`), canary routing
(`canary`) and the transaction table's administration (`transaction_table`). Run from the repository root:

    python -m chalice_app.ops.deploy --stage dev --dry-run

The tools beside the Chalice project (ops/, local/, reports/) import the API's code as the Lambda does, as
top-level `chalicelib`: importing this package puts the project folder (chalice_app/) on the path. Chalice
zips app.py and chalicelib/ only, so none of these packages reaches the Lambda.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
if str(PROJECT_DIR) not in sys.path:
    sys.path.append(str(PROJECT_DIR))
