"""User accounts: passwords, tokens, registration codes, the login throttle."""
