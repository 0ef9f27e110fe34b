"""Register maps of the supported devices, one data module per device kind (no pymodbus)."""
