"""The API through Chalice's test client: routes, errors, faults, telemetry, the OpenAPI document."""
