"""The device kinds, one module each: its driver and its registry entry (drivers.registry)."""
