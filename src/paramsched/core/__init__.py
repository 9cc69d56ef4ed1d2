"""The core: shapes, curves, schedules and units; NumPy only."""
