"""The executive update's content: slides built from the same results and figures as the pages.

Every sentence is generated from a result (direction, size, interval, "not significant" said
plainly); nothing is typed by hand. ``story(con, filters)`` is the company update;
``department_story(con, filters, department)`` a department's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from cxmetrics import store
from cxmetrics.charts import alignment as align_charts
from cxmetrics.charts import churn as churn_charts
from cxmetrics.charts import complaints as complaint_charts
from cxmetrics.charts import initiatives as ini_charts
from cxmetrics.charts import nps as nps_charts
from cxmetrics.charts import pnl as pnl_charts
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import alignment, complaints, impact, moved
from cxmetrics.views import department
from cxmetrics.views import executive as summary

pd = lazy.module("pandas")


@dataclass
class Slide:
    """One slide / document section: a title, plain sentences, charts, an optional table."""

    title: str
    sentences: list[str] = field(default_factory=list)
    figures: list = field(default_factory=list)  # plotly figures
    table: pd.DataFrame | None = None
    notes: str = ""  # method and provenance, shown small


def _methodology(con, filters: Filters, results: list, cited: dict[str, str]) -> Slide:
    rows = []
    for r in results:
        head = getattr(r, "headline", ()) or ()
        rows.append({"figure": r.label, "n": head[0].n if head else "", "method": r.method[:140]})
    lineage = store.lineage(con, ("customers", "transactions", "survey_responses", "churn_events", "complaints"))
    sources = lineage.groupby("source").agg(rows=("rows", "sum"), imported=("finished_at", "max")).reset_index()
    sentences = [f"Filters: {filters.describe()}.",
                 "Assumption versions: " + "; ".join(f"{k} = {v}" for k, v in cited.items()) + "." if cited else
                 "No money assumptions were used.",
                 "Data lineage: " + "; ".join(f"{s['source']} ({int(s['rows']):,} rows, {str(s['imported'])[:10]})"
                                             for _, s in sources.head(6).iterrows()) + "." if len(sources) else
                 "Data lineage: nothing imported yet (import files on the Data page)."]
    return Slide("Methodology, sample sizes and lineage", sentences, table=pd.DataFrame(rows),
                 notes="Every figure in this update comes from the cxmetrics library, the same code as the dashboard.")


@store.memoized
def story(con: duckdb.DuckDBPyConnection, filters: Filters, *, drop_points: float = 5.0) -> list[Slide]:
    s = summary.page_data(con, filters, drop_points=drop_points)
    slides = [Slide("The headlines", [f"{t}: {x}" for t, x in s.findings()],
                    notes="Each sentence is generated from the results shown on the following slides.")]
    m = summary.moved_data(con, filters)
    slides.append(Slide("What moved this period", moved.describe(m, limit=moved.HEADLINES), notes=m.method))
    if s.bridge is not None:
        b = s.bridge
        slides.append(Slide("What CX is worth: the CX-to-P&L bridge",
                            [summary.pnl.describe(b)] + [f"Break-even: {x}." for x in b.break_even["reading"].head(2)],
                            [pnl_charts.waterfall(b)], notes=b.method[:600]))
    if s.nps.n == 0:
        slides.append(Slide("NPS: level and trend", [summary.NO_SURVEY]))
    else:
        slides.append(Slide("NPS: level and trend",
                            [f"NPS is {s.nps.estimate:.1f} ({s.nps.ci_text()}, n = {s.nps.n:,}).", s.nps_change_text,
                             summary.weighted_text(s.nps_weighted)],
                            [nps_charts.trend(s.nps_trend, "NPS by quarter (95% CI)")], notes=s.nps_trend.method))
    figures = ([churn_charts.rate_bars(s.churn_by_nps, "nps_group", title=s.churn_by_nps.label)]
               if len(s.churn_by_nps.table) else []) + ([churn_charts.clv_bars(s.clv)] if len(s.clv.table) else [])
    slides.append(Slide("Detractors leave sooner and are worth less",
                        [summary.churn.describe_hazard(s.hazard), summary.clv.describe(s.clv, s.promoter_value)],
                        figures, notes=s.hazard.method))
    a = s.alignment.table
    slides.append(Slide("Department targets vs customer expectations",
                        [alignment.describe(r) for _, r in a.head(5).iterrows()]
                        or ["No KPIs registered: import departments, kpis and kpi_observations on the Data page."],
                        [align_charts.scorecard(a)] if len(a) and a["money_at_risk"].notna().any() else [],
                        table=a[["department", "kpi", "target", "threshold", "status", "money_at_risk",
                                 "money_at_risk_ci_low", "money_at_risk_ci_high", "money_at_risk_crude"]] if len(a) else None,
                        notes=s.alignment.method + " " + s.alignment.extra.get("mix_note", "")))
    slides.append(Slide("Complaints: the result-driven track",
                        [complaints.describe_pareto(s.pareto)],
                        [complaint_charts.pareto(s.pareto)] if len(s.pareto.table) else [], notes=s.pareto.method))
    ini = s.initiatives
    slides.append(Slide("CX initiatives: what they delivered",
                        [impact.describe_portfolio(ini.portfolio)] + [i.explanation for i in ini.impacts if i.effect][:4],
                        [ini_charts.portfolio(ini.portfolio)] if len(ini.portfolio) else [],
                        notes=(f"Difference-in-differences where a comparison group exists ({impact.DID_METHOD}; with one "
                               "treated region of four, cluster-robust inference is not available), otherwise interrupted "
                               f"time series ({impact.ITS_METHOD}).")))
    cited = s.bridge.assumptions if s.bridge is not None else s.clv.assumptions
    slides.append(_methodology(con, filters, [s.nps_trend, s.hazard, s.clv, s.alignment, s.pareto], cited))
    return slides


@store.memoized
def department_story(con: duckdb.DuckDBPyConnection, filters: Filters, department_name: str) -> list[Slide]:
    d = department.page_data(con, filters, department=department_name)
    if d is None:
        raise ValueError(f"no access to department {department_name!r}")
    a = d.alignment.table
    slides = [Slide(f"{department_name.replace('_', ' ').title()}: CX update",
                    [f"Leader: {d.leader or '—'}; CX ambassador: {d.ambassador or '—'}."]
                    + [alignment.describe(r) for _, r in a.iterrows()] + [r["suggestion"] for _, r in a.iterrows() if r["suggestion"]])]
    for _, row in a.iterrows():
        slides.append(Slide(f"{row['kpi']}: target vs customer expectation", [alignment.describe(row)],
                            [align_charts.kpi_chart(d.kpi_trend, row)], notes=d.alignment.method))
    if len(d.nps_by_touchpoint.table):
        slides.append(Slide("NPS at our touchpoints", [f"{r['touchpoint']}: NPS {r['nps']:.1f} (95% CI {r['ci_low']:.1f} to "
                                                      f"{r['ci_high']:.1f}, n = {r['n']:,})"
                                                      for _, r in d.nps_by_touchpoint.table.dropna(subset=['nps']).iterrows()]))
    slides.append(Slide("Our complaints", [f"{int(d.complaints.table['complaints'].sum()):,} complaints in the period."],
                        table=d.complaints.table.head(10)))
    if len(d.initiatives):
        slides.append(Slide("Our initiatives", [f"{r['initiative']} {r['name']}: {r['status']}" for _, r in d.initiatives.iterrows()],
                            table=d.initiatives[["initiative", "name", "status", "effect", "ci_low", "ci_high"]]))
    slides.append(_methodology(con, filters, [d.alignment, d.nps_by_touchpoint, d.complaints], d.alignment.assumptions))
    return slides


def build(con, filters: Filters, *, department_name: str | None = None) -> tuple[list[Slide], str, str]:
    """Slides, title and subtitle for the company (or a department's) update."""
    slides = department_story(con, filters, department_name) if department_name else story(con, filters)
    title = f"CX update — {department_name.replace('_', ' ').title()}" if department_name else "CX executive update"
    subtitle = f"{filters.describe()} · generated {dt.date.today():%d %B %Y} by cxmetrics"
    return slides, title, subtitle
