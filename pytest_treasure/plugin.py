"""pytest11 entry point of the Treasure plugin (filled in by the gates issue)."""
