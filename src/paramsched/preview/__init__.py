"""A schedule before the run: its phases, totals, values at chosen points, and a plot.

"At step N" means what the scheduler holds after N optimizer steps, the value
Megatron logs at iteration N: with a batch-size ramp-up, each step advances the
clock by that step's global batch size. A point given in samples or tokens is
the value when the clock reads that many samples; its step is the first step
after which at least that many samples are consumed.

On a run whose clock counts tokens (``clock = "tokens"``), a position is a number
of tokens consumed, and steps and samples are unknown (a step consumes the tokens
it really had): every preview counts in tokens there, and leaves steps and samples
out. Besides the learning rate and weight decay, a preview shows each scheduled
value (``schedule.values``: ``[group.KEY]`` and ``[loop.NAME]`` tables) as it
shows the learning rate, and with a batch-size rule both the rate the rule gives
and the base rate it scales.
"""

from .axes import (
    DPI,
    LABEL_ROWS,
    LABEL_SIZE,
    NO_BREAK,
    PLOT_FORMATS,
    PLOT_STEPS,
    X_LABELS,
    check_plot,
    count_labels,
    default_x,
    rate_labels,
)
from .compare import (
    check_compare_plot,
    compare_figure,
    comparison,
    comparison_table,
    departure,
    plot_compare,
)
from .files import write_csv
from .plot import VALUE_COLORS, plot, plot_figure
from .points import (
    FIXED_COLUMNS,
    LISTED_STEPS,
    at,
    grid,
    phase_ends,
    pieces,
    point,
    point_lines,
    rule_text,
    run_of,
    step_at,
    step_curve,
    steps_known,
    timeline,
    timeline_columns,
    timeline_table,
    tokens_at,
    total_samples,
    totals,
    value_columns,
)
from .text import batch_size_stages, panel_label, table, value_phases

__all__ = [
    "DPI",
    "FIXED_COLUMNS",
    "LABEL_ROWS",
    "LABEL_SIZE",
    "LISTED_STEPS",
    "NO_BREAK",
    "PLOT_FORMATS",
    "PLOT_STEPS",
    "VALUE_COLORS",
    "X_LABELS",
    "at",
    "batch_size_stages",
    "check_compare_plot",
    "check_plot",
    "compare_figure",
    "comparison",
    "comparison_table",
    "count_labels",
    "default_x",
    "departure",
    "grid",
    "panel_label",
    "phase_ends",
    "pieces",
    "plot",
    "plot_compare",
    "plot_figure",
    "point",
    "point_lines",
    "rate_labels",
    "rule_text",
    "run_of",
    "step_at",
    "step_curve",
    "steps_known",
    "table",
    "timeline",
    "timeline_columns",
    "timeline_table",
    "tokens_at",
    "total_samples",
    "totals",
    "value_columns",
    "value_phases",
    "write_csv",
]
