"""The execute phase: selection, limits, retries, runners and the response log."""
