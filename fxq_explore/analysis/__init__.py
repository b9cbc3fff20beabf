"""Analysis: errors against exact rounding, bit-width sweeps, calibration, explain/compare, verify.

The error and sweep functions of :mod:`fxq_explore.analysis.errors` are re-exported here, so
``fxq_explore.analysis.disagreement_rate(...)`` works; calibration lives in
:mod:`fxq_explore.analysis.calibration`, the traces in :mod:`fxq_explore.analysis.explain`.
"""

from .errors import (
    ErrorAnalysis,
    Sweep,
    disagreement_rate,
    error_vs_exact,
    gain_error,
    random_accumulators,
    sweep_multiplier_bits,
    sweep_output_bits,
    threshold_errors,
)

__all__ = [
    "ErrorAnalysis",
    "Sweep",
    "disagreement_rate",
    "error_vs_exact",
    "gain_error",
    "random_accumulators",
    "sweep_multiplier_bits",
    "sweep_output_bits",
    "threshold_errors",
]
