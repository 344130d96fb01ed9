"""The API's logic: configuration, request validation, the model client, the transaction log and telemetry.

Everything here is zipped into the Lambda package with `app.py`; it imports only the standard library,
boto3/botocore (in the Lambda runtime), PynamoDB, aws-lambda-powertools and chalice. Its modules import each other
relatively, so the same files are top-level `chalicelib` where app.py runs (Lambda, `chalice local`) and
`chalice_app.chalicelib` to the tools beside the project.

Under the Chalice CLI (`chalice local`, `chalice deploy`; Chalice sets AWS_CHALICE_CLI_MODE, Lambda never does) these
modules write no bytecode: `chalice local`'s reloader watches every file of the project, and a worker that, after an
edit, wrote the new `__pycache__/*.pyc` after the reloader had looked would restart the server a second time.
"""

import os
import sys

if os.environ.get("AWS_CHALICE_CLI_MODE"):
    sys.dont_write_bytecode = True
