"""The hardware boundary: pile and meter contracts, Modbus links and device profiles."""
