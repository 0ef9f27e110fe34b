"""The station's commands that open its state or run it (server.cli reads their arguments)."""
