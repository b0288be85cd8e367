"""The job file: its model, validation and prices."""
