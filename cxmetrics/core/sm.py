"""The statsmodels class the metrics use (Kaplan–Meier), imported from its own module.

``import statsmodels.api`` loads every model family, the formula parsers and the example datasets:
0.5–1.0 s more on a 2-core machine. ``SurvfuncRight`` alone costs about 0.6 s (it imports
``scipy.stats`` and statsmodels' base), paid by the first page that draws survival curves (the
Churn page, the Complaints page's time to close). Import this module inside the function that
needs it (never at a module's top: commands that draw no curve must not load statsmodels or
``scipy.stats``) and use it as ``sm``::

    from cxmetrics.core import sm
    sm.SurvfuncRight(durations, events, freq_weights=counts)

The GLMs the hazard and odds ratios fit are :mod:`cxmetrics.core.glm` (checked against
statsmodels' ``GLM`` in the tests), so the pages that show those ratios and no curve (the
Executive summary, the Finance review) load no statsmodels.
"""

from statsmodels.duration.survfunc import SurvfuncRight

__all__ = ["SurvfuncRight"]
