"""Transfer: the Globus Transfer v0.10 API (so far, the endpoint and collection registry)."""
