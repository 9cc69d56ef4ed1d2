"""Predicting the loss of a schedule before running it: fit a law, predict, optimize.

`fit` fits the multi-power law (or the LR-annealing law) to runs you have;
the law's ``.loss(lrs, steps)`` predicts the loss of any per-step rates, and
`optimize` derives the schedule that minimizes the predicted final loss. Fitting
and optimizing need SciPy (``pip install "paramsched[predict]"``); predicting does not.

Examples:
    >>> import numpy as np
    >>> from paramsched.predict import MultiPowerLaw, law_from_dict
    >>> law = MultiPowerLaw(L0=3.0, A=0.5, alpha=0.5, B=300.0, C=2.0, beta=0.6, gamma=0.6)
    >>> law_from_dict(law.to_dict()) == law
    True
"""

from .fitting import fit
from .laws import LAWS, AnnealingLaw, MultiPowerLaw, PredictError, law_from_dict
from .optimize import optimize
from .runs import LossRun, rates_of, read_csv

__all__ = [
    "LAWS",
    "AnnealingLaw",
    "LossRun",
    "MultiPowerLaw",
    "PredictError",
    "fit",
    "law_from_dict",
    "optimize",
    "rates_of",
    "read_csv",
]
