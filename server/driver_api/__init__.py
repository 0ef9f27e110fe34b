"""The drivers' API: their requests over the WebSocket, their bills, the hub between."""
