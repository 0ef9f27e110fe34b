"""Simulated pile firmware: pile and meter physics, served over Modbus."""
