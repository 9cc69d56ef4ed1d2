"""paramsched: exact, fast learning-rate and weight-decay schedules for large-scale training.

The core is Megatron-Core's ``OptimizerParamScheduler``, float for float, with
validation, exact resume and a schedule you can evaluate before a run.
"""

from . import _oldnames  # noqa: F401  (installs the modules' old names first)
from .core._curve import ScheduledValue
from .core.overrides import (
    ParamGroupOverride,
    combine_param_group_overrides,
    get_canonical_lr_for_logging,
    param_group_override_to_tuple,
)
from .core.phases import Phase, PhaseSchedule
from .core.schedule import LR_DECAY_STYLES, WD_INCR_STYLES, WSD_DECAY_STYLES, Schedule
from .core.units import Length, Quantity, Run
from .errors import ScheduleError, ScheduleTypeError
from .formats.hf import from_hf
from .formats.megatron import from_megatron_args
from .formats.olmo_core import from_olmo_core
from .formats.timm import from_timm
from .formats.torchtitan import from_torchtitan
from .recipe import load_schedule, recipes
from .runtime._checkpoint import Policy
from .runtime.rules import param_groups
from .runtime.scheduler import OptimizerParamScheduler, logger

__version__ = "0.2.0"

__all__ = [
    "LR_DECAY_STYLES",
    "Length",
    "OptimizerParamScheduler",
    "ParamGroupOverride",
    "Phase",
    "PhaseSchedule",
    "Policy",
    "Quantity",
    "Run",
    "Schedule",
    "ScheduleError",
    "ScheduleTypeError",
    "ScheduledValue",
    "WD_INCR_STYLES",
    "WSD_DECAY_STYLES",
    "combine_param_group_overrides",
    "from_hf",
    "from_megatron_args",
    "from_olmo_core",
    "from_timm",
    "from_torchtitan",
    "get_canonical_lr_for_logging",
    "load_schedule",
    "logger",
    "param_group_override_to_tuple",
    "param_groups",
    "recipes",
]
