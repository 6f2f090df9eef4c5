"""Figures for the alignment scorecard and the department page."""

from __future__ import annotations

from cxmetrics.charts import PRIMARY, STATUS_COLORS, go, style
from cxmetrics.core import lazy

pd = lazy.module("pandas")


def kpi_chart(trend: pd.DataFrame, row: pd.Series, title: str | None = None) -> go.Figure:
    """Monthly actual, the internal target and the customer threshold (with its CI) on one chart."""
    d = trend[trend["kpi_id"] == row["kpi_id"]]
    fig = go.Figure(go.Scatter(x=d["month"], y=d["value"], mode="lines+markers", name="actual (monthly mean)",
                               line=dict(color=PRIMARY, width=3)))
    fig.add_hline(y=row["target"], line_dash="dash", line_color="#555", annotation_text=f"internal target {row['target']:g}",
                  annotation_position="top left")
    if row["threshold"] == row["threshold"]:
        fig.add_hrect(y0=row["threshold_ci_low"], y1=row["threshold_ci_high"], fillcolor=STATUS_COLORS["misaligned"],
                      opacity=0.12, line_width=0)
        fig.add_hline(y=row["threshold"], line_color=STATUS_COLORS["misaligned"],
                      annotation_text=f"customers turn detractors beyond {row['threshold']:.1f}",
                      annotation_position="bottom left")
    fig.update_yaxes(title=row["unit"])
    return style(fig, title or f"{row['kpi']}: target vs customer expectation")


def scorecard(table: pd.DataFrame, title: str = "Money at risk by KPI") -> go.Figure:
    """Segment-adjusted money at risk per KPI with its interval, the crude (pooled) figure beside it."""
    t = table.dropna(subset=["money_at_risk"])
    # the status in the axis label, not inside the bar: a short bar turned its word on its side and a
    # long one drew it under the interval's whisker
    label = t["kpi"] + " · " + t["department"] + " — " + t["status"]
    fig = go.Figure(go.Bar(x=t["money_at_risk"], y=label, orientation="h", name="within segment (headline)",
                           marker_color=[STATUS_COLORS.get(s, "#999") for s in t["status"]],
                           error_x=dict(type="data", symmetric=False, array=t["money_at_risk_ci_high"] - t["money_at_risk"],
                                        arrayminus=t["money_at_risk"] - t["money_at_risk_ci_low"])))
    if "money_at_risk_crude" in t:
        fig.add_trace(go.Scatter(x=t["money_at_risk_crude"], y=label, mode="markers", name="crude (pooled over segments)",
                                 marker=dict(symbol="line-ns-open", size=18, color="#555", line=dict(width=2))))
    h = t["money_horizon_years"].iloc[0] if "money_horizon_years" in t and len(t) else 5
    fig.update_xaxes(title=f"CLV at risk from a year's extra detractors (EUR, {h:g}-year horizon, 95% CI)")
    fig.update_yaxes(autorange="reversed")
    return style(fig, title, height=320)


def curve(curve_df: pd.DataFrame, row: pd.Series, title: str | None = None) -> go.Figure:
    """Detractor share by KPI value, with the estimated threshold."""
    c = curve_df[curve_df["n"] >= 5]
    fig = go.Figure(go.Scatter(x=c["x"], y=100 * c["detractors"] / c["n"], mode="markers", name="detractor share",
                               marker=dict(size=(c["n"] ** 0.5).clip(3, 18), color=PRIMARY, opacity=0.6)))
    if row["threshold"] == row["threshold"]:
        fig.add_vrect(x0=row["threshold_ci_low"], x1=row["threshold_ci_high"], fillcolor="#d73027", opacity=0.12,
                      line_width=0)
        fig.add_vline(x=row["threshold"], line_color="#d73027")
    fig.add_vline(x=row["target"], line_dash="dash", line_color="#555")
    fig.update_xaxes(title=f"{row['kpi']} ({row['unit']})")
    fig.update_yaxes(title="% detractors")
    return style(fig, title or f"{row['kpi']}: when do customers turn detractors?")
