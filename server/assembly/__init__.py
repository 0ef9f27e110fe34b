"""The station put together: its components built from the configuration and run."""
