"""``paramsched check``: what is wrong with a run, before it starts.

The rules are one table (`paramsched.check.rules.RULES`); `examine` applies those
on any schedule, and the readers of other stacks' configurations (`paramsched.formats`)
add their own findings, made from the same table.
"""

from .rules import RULES, Finding, Rule
from .schedule import examine

__all__ = ["RULES", "Finding", "Rule", "examine"]
