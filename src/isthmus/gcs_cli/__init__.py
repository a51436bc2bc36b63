"""`globus-connect-server`: the GCS v5.4 administration command, a client of Auth, Transfer and
the GCS Manager API (also reachable as `isthmus connect`)."""
