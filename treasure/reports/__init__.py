"""Reports: the court verdict and execution quality (recon lives with reconciliation)."""
