"""The device kinds, one module each: its registry entry and its register map, as data (no
driver code, no pymodbus), shared by the drivers, the configuration and the simulator."""
