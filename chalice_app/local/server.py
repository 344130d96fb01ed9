"""`chalice local` with TCP_NODELAY on every connection: what `make local` runs instead of the chalice command.

    python -m chalice_app.local.server --project-dir chalice_app local --stage local --port 8000

Chalice's dev server writes headers and body separately, and Nagle's algorithm with delayed ACKs would hold every
later response on a kept-alive connection (docs/local-stack.md). Not part of the Lambda package.
"""

from __future__ import annotations

import sys

from chalice.cli import main
from chalice.local import ChaliceRequestHandler

ChaliceRequestHandler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.exit(main())
