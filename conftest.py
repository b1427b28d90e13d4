"""Repo-level wiring only: the repo root is itself a Treasure workspace."""
