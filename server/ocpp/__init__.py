"""The station's OCPP 1.6J uplink to an operator's central system (docs/operations.md).

The station is a charge point (each pile one connector, numbered by its stationId) and a
subscriber and caller of the station's door, like every other part outside the controller:
connection (the WebSocket client), outbox (what must reach the central system, kept in the
database), transactions (the door's events as OCPP messages), charge_point (what the central
system may ask) and uplink (connecting, booting and sending).
"""
