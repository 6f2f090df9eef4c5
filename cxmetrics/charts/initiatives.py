"""Figures for the initiatives page."""

from __future__ import annotations

from cxmetrics.charts import PRIMARY, go, style
from cxmetrics.core import lazy

pd = lazy.module("pandas")


def event_study(imp, title: str | None = None) -> go.Figure:
    es = imp.event_study
    fig = go.Figure(go.Scatter(x=es["quarter"], y=es["effect"], mode="markers+lines", line=dict(color=PRIMARY),
                               error_y=dict(type="data", symmetric=False, array=es["ci_high"] - es["effect"],
                                            arrayminus=es["effect"] - es["ci_low"])))
    fig.add_hline(y=0, line_dash="dot", line_color="#999")
    fig.add_vline(x=-0.5, line_dash="dash", line_color="#d73027")
    fig.update_xaxes(title="quarters relative to the start (−1 = reference)")
    fig.update_yaxes(title=f"treated − comparison ({imp.effect.unit})")
    return style(fig, title or f"{imp.name}: event study (95% CI)")


def its(imp, title: str | None = None) -> go.Figure:
    s = imp.series
    x = pd.to_datetime(s["month"])
    fig = go.Figure([
        go.Scatter(x=x, y=s["y"], mode="markers", name="monthly value", marker=dict(color="#7f7f7f")),
        go.Scatter(x=x, y=s["fitted"], mode="lines", name="segmented fit", line=dict(color=PRIMARY, width=3)),
        go.Scatter(x=x, y=s["counterfactual"], mode="lines", name="pre-trend continued",
                   line=dict(color="#d73027", dash="dash")),
    ])
    return style(fig, title or f"{imp.name}: interrupted time series")


def portfolio(p, title: str = "Two-speed portfolio: share of initiatives and spend by track") -> go.Figure:
    fig = go.Figure([
        go.Bar(x=p["track"], y=p["share_of_initiatives_pct"], name="% of initiatives", marker_color="#999"),
        go.Bar(x=p["track"], y=p["share_of_spend_pct"], name="% of spend", marker_color=PRIMARY),
    ])
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="%")
    return style(fig, title)



