"""End to end: the local stack started as `make local` starts it, driven by HTTP, Locust and a browser."""
