"""AWS's naming rules that the tools check before any call, so that a bad name is an error saying what to change.

The Lambda zip (chalice_app/chalicelib/config.py) and model serving (model/serving/server.py) keep copies of the
SageMaker rule, since neither may import this box; tests/unit/devkit/test_aws_names.py pins them to it.
"""

from __future__ import annotations

import re

SAGEMAKER_NAME_LIMIT = 63  # characters of an endpoint's, endpoint config's, model's or job's name
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # letters, digits and single hyphens
