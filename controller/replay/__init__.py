"""Scenario replay: the rules on a virtual clock with simulated piles (REPLAY.md)."""
