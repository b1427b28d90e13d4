"""Hypothesis profiles for Treasure (filled in by the hunting issue)."""
