"""Operating the AWS stages: deployment, canary routing, client keys, table administration.

These tools import the API's code by its package path, `chalice_app.chalicelib`; Chalice zips app.py and chalicelib/
only.
"""
