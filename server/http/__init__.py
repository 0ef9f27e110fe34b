"""HTTP plumbing: the handlers' base, the application and server, limits, errors, pages."""
