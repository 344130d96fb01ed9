"""Unit tests of the Lambda's library (chalice_app/chalicelib/)."""
