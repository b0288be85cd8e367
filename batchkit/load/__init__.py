"""The load phase: reconcile, validate, targets and the load ledger."""
