"""Result objects shared by every metric: estimate, CI, n, method, filters, assumptions, warnings.

A metric returns an :class:`Estimate` (one number) or a :class:`Result` (a table of estimates by
group plus headline estimates). Both are frozen; ``to_dict()`` gives the JSON the CLI prints and
``to_frame()`` a copy of the table for pages and exports.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from cxmetrics.core import lazy
from cxmetrics.core.dist import norm

np = lazy.module("numpy")
pd = lazy.module("pandas")

#: Default minimum number of responses below which a group is flagged as a small sample.
DEFAULT_MIN_N = 30


@dataclass(frozen=True)
class Estimate:
    """One estimate with its uncertainty and provenance.

    Parameters
    ----------
    name, label : machine and human names ("nps", "Net Promoter Score").
    estimate : the point estimate, in ``unit``.
    ci_low, ci_high : bounds of the ``1 - alpha`` confidence interval, or None when none exists.
    n : number of observations used; ``n_eff`` the effective n when weighted (Kish).
    method : the method in words; ``reference`` the source of the formula.
    filters : human-readable description of the filters used.
    assumptions : the assumption values (and versions) the estimate depends on.
    warnings : anything a reader must know (small sample, weak design, missing data).
    se : the standard error of ``estimate`` where one exists (None otherwise). The CI need not be
        ``estimate ± z·se`` (score-type, adjusted, simulated or clipped intervals are not), so
        never back an SE out of the CI: use ``se``.
    queries : the queries whose rows the estimate is computed from (``store.Query`` objects, or
        their text for an estimate kept with the summaries), for "How was this computed?"; not
        part of the estimate's equality, nor of its repr (a notebook cell showing an estimate
        would print every SQL text).
    """

    name: str
    label: str
    estimate: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    unit: str = ""
    alpha: float = 0.05
    n_eff: float | None = None
    p_value: float | None = None
    method: str = ""
    reference: str = ""
    filters: str = ""
    assumptions: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    min_n: int = DEFAULT_MIN_N
    se: float | None = None
    queries: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    def conf_int(self, alpha: float | None = None) -> tuple[float, float]:
        """The ``1 - alpha`` interval: the stored one at the estimate's own level, otherwise the
        normal interval ``estimate ± z·se`` (ValueError when there is no SE to build it from)."""
        if alpha is None or math.isclose(alpha, self.alpha):
            return (self.ci_low if self.ci_low is not None else float("nan"),
                    self.ci_high if self.ci_high is not None else float("nan"))
        if self.se is None or math.isnan(self.se):
            raise ValueError(f"{self.name}: no standard error, only the stored {1 - self.alpha:.0%} interval")
        z = float(norm.ppf(1 - alpha / 2))
        return self.estimate - z * self.se, self.estimate + z * self.se

    @property
    def small_sample(self) -> bool:
        n = self.n_eff if self.n_eff is not None else self.n
        return bool(n < self.min_n)

    @property
    def has_ci(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None and not (
            math.isnan(self.ci_low) or math.isnan(self.ci_high)
        )

    def ci_text(self, fmt: str = "{:.1f}") -> str:
        """E.g. ``"95% CI 1.1 to 7.3"``, or ``"no CI"``."""
        if not self.has_ci:
            return "no CI"
        level = round((1 - self.alpha) * 100)
        return f"{level}% CI {fmt.format(self.ci_low)} to {fmt.format(self.ci_high)}"

    def to_dict(self) -> dict[str, Any]:
        d = estimate_parts(self)
        d["small_sample"] = self.small_sample
        return d


@dataclass(frozen=True)
class Result:
    """A metric computed by group: a table of estimates plus provenance.

    ``table`` has the group columns followed by at least ``estimate, ci_low, ci_high, n`` and a
    boolean ``small_sample`` column. ``headline`` holds the overall estimate(s).
    """

    name: str
    label: str
    table: pd.DataFrame
    method: str = ""
    reference: str = ""
    filters: str = ""
    alpha: float = 0.05
    headline: tuple[Estimate, ...] = ()
    assumptions: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    queries: tuple[Any, ...] = ()  # store.Query objects, for the "how was this computed" view
    extra: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "method": self.method,
            "reference": self.reference,
            "filters": self.filters,
            "alpha": self.alpha,
            "headline": [e.to_dict() for e in self.headline],
            "rows": jsonable(self.table.to_dict(orient="records")),
            "assumptions": jsonable(self.assumptions),
            "warnings": list(self.warnings),
            "queries": described(self.queries),
            "extra": jsonable(self.extra),
        }


def described(queries) -> list[str]:
    """Queries as the text "How was this computed?" shows (a kept estimate's are text already)."""
    return [q.describe() if hasattr(q, "describe") else str(q) for q in queries]


def estimate_parts(e: Estimate) -> dict[str, Any]:
    """An estimate's fields as JSON values, its queries as text: :func:`estimate_from_parts` gives
    back an equal estimate (a kept fit's, say)."""
    d = jsonable({f.name: getattr(e, f.name) for f in dataclasses.fields(e) if f.name != "queries"})
    d["queries"] = described(e.queries)
    return d


def estimate_from_parts(d: dict[str, Any], **changes: Any) -> Estimate:
    """The :class:`Estimate` of :func:`estimate_parts` (its ``small_sample``, derived, ignored)."""
    fields = {f.name for f in dataclasses.fields(Estimate)}
    d = {k: v for k, v in d.items() if k in fields}
    return Estimate(**{**d, "warnings": tuple(d.get("warnings", ())), "queries": tuple(d.get("queries", ())),
                       **changes})


def frame_parts(df: pd.DataFrame) -> dict:
    """A frame as plain values (its columns and their dtypes), for JSON: :func:`frame_from_parts`
    gives it back with the same dtypes (a missing float as NaN)."""
    return {"columns": {c: _plain(df[c]) for c in df.columns}, "dtypes": {c: str(df[c].dtype) for c in df.columns}}


def _plain(col: pd.Series) -> list:
    """A column's values as :func:`jsonable` gives them, numeric and text columns without its
    per-value checks (a kept fit holds tens of thousands of values)."""
    kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else "O"
    if kind == "f":
        return [x if math.isfinite(x) else None for x in col.tolist()]
    if kind in "iub":
        return col.tolist()
    values = col.tolist()
    if all(v is None or type(v) is str for v in values):  # text (the dimensions' levels, say)
        return values
    return jsonable(values)


def frame_from_parts(parts: dict) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(v, dtype=parts["dtypes"][c]) for c, v in parts["columns"].items()})


def jsonable(obj: Any) -> Any:
    """Convert numpy/pandas/dates/dataclasses into plain JSON types (NaN becomes None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return obj.to_dict()
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float):  # NumPy's float64 too
        return None if math.isnan(obj) or math.isinf(obj) else float(obj)
    if not (lazy.loaded("numpy") or lazy.loaded("pandas")):  # no NumPy or pandas value exists yet
        return obj.isoformat() if isinstance(obj, (dt.datetime, dt.date)) else obj
    if isinstance(obj, pd.DataFrame):
        return jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, pd.Series):
        return jsonable(obj.to_list())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, (pd.Timestamp, dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, np.datetime64):
        return str(obj)
    if obj is pd.NaT or obj is pd.NA:
        return None
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    return obj
