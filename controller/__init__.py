"""The station's brain: rules, state and the control loop; no Tornado, no pymodbus."""
