"""The API's logic: configuration, request validation, the model client, the transaction log and telemetry.

Everything here is zipped into the Lambda package with `app.py`; it imports only the standard library,
boto3/botocore (in the Lambda runtime), PynamoDB, aws-lambda-powertools and chalice.
"""
