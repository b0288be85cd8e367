"""The prepare phase: inputs, items, rendering, batch files and estimates."""
