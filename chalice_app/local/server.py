"""`chalice local` with TCP_NODELAY on every connection: what `make local` runs instead of the chalice command.

    python -m chalice_app.local.server --project-dir chalice_app local --stage local --port 8000

(the chalice command's own arguments).

Chalice's development server (a BaseHTTPRequestHandler) sends a response's headers and its body in two writes.
On a kept-alive connection Nagle's algorithm holds the second write until the client acknowledges the first,
and the client delays that acknowledgement by up to 40 ms: every response after the first on a connection
would take 40 ms more. Setting the handler's `disable_nagle_algorithm` (socketserver.StreamRequestHandler)
sends both writes at once; API Gateway on AWS has no such delay. Not part of the Lambda package.
"""

from __future__ import annotations

import sys

from chalice.cli import main
from chalice.local import ChaliceRequestHandler

ChaliceRequestHandler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.exit(main())
