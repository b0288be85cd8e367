"""Analysis: status and the HTML report."""
