"""`charge-client`: the station's command-line client on the LAN, for drivers, scripts and
operators (docs/client.md)."""
