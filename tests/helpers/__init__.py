"""Helpers shared by test modules (no tests here): workspaces, runs, a throwaway PostgreSQL server."""
