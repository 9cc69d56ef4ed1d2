"""Other stacks' schedule configurations, read as paramsched schedules: one module per stack.

Each module is a table from that stack's own names (flags, arguments, classes) to
paramsched's schedule; nothing outside this package knows which stack a schedule
came from.
"""
