"""Tools that never ship in a model or the serving image: benchmark, deployment, Batch Transform, local servers."""
