"""The station's network face: HTTP and WebSocket API, operator API, accounts, commands."""
