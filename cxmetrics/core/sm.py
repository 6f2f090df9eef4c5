"""The statsmodels classes the metrics fit, imported from their own modules.

``import statsmodels.api`` loads every model family, the formula parsers and the example datasets:
0.5–1.0 s more on a 2-core machine, paid by the first page that fits a model (a cold start of the
Executive summary). These three cost 0.5–0.7 s after ``scipy.stats``, which they import (0.7–1.0 s;
measured with statsmodels 0.15, which also loads polars when it is installed). Import this module
inside the function that fits (never at a module's top: commands that fit nothing must not load
statsmodels or ``scipy.stats``) and use it as ``sm``::

    from cxmetrics.core import sm
    sm.GLM(y, X, family=sm.families.Poisson()).fit()
"""

from statsmodels.duration.survfunc import SurvfuncRight
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM

__all__ = ["GLM", "SurvfuncRight", "families"]
