"""Figures for the survey pages (they draw results; they compute nothing)."""

from __future__ import annotations

from cxmetrics.charts import BAND, GROUP_COLORS, PRIMARY, go, style


def trend(result, title: str = "NPS over time") -> go.Figure:
    t = result.table.dropna(subset=["nps"])
    x = t["period"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(x) + list(x[::-1]), y=list(t["ci_high"]) + list(t["ci_low"][::-1]),
                             fill="toself", fillcolor=BAND, line=dict(width=0), name="95% CI", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=t["nps"], mode="lines+markers", line=dict(color=PRIMARY, width=3), name="NPS",
                             customdata=t[["n", "ci_low", "ci_high"]],
                             hovertemplate="%{x|%b %Y}: %{y:.1f} (CI %{customdata[1]:.1f} to %{customdata[2]:.1f}, "
                                           "n=%{customdata[0]})<extra></extra>"))
    sig = t[t.get("significant", False) == True]  # noqa: E712
    if len(sig):
        fig.add_trace(go.Scatter(x=sig["period"], y=sig["nps"], mode="markers", name="significant change",
                                 marker=dict(symbol="star", size=16, color="#d73027")))
    fig.update_yaxes(title="NPS (points)")
    return style(fig, title)


def breakdown(result, dim: str, title: str | None = None) -> go.Figure:
    t = result.table.dropna(subset=["nps"])
    # each bar's n is in its axis label: a label above the bar sat on the interval's whisker
    fig = go.Figure(go.Bar(
        x=[f"{v} · n={n:,}" for v, n in zip(t[dim].astype(str), t["n"], strict=True)], y=t["nps"],
        marker_color=PRIMARY,
        error_y=dict(type="data", symmetric=False, array=t["ci_high"] - t["nps"], arrayminus=t["nps"] - t["ci_low"])))
    fig.update_yaxes(title="NPS (points)")
    return style(fig, title or f"NPS by {dim} (95% CI)")


def driver_matrix(result, title: str = "Priority matrix: importance vs performance") -> go.Figure:
    t = result.table
    # each name below its point and to the side of the plot's middle: above it, the interval's
    # whisker ran through it; level with it, the median line (the middle point lies on it)
    mid = t["performance_csat"].median() if len(t) else 0.0
    fig = go.Figure(go.Scatter(
        x=t["performance_csat"], y=t["importance_r"], mode="markers+text",
        text=t["touchpoint"].str.replace("_", " "),
        textposition=["bottom left" if x > mid else "bottom right" for x in t["performance_csat"]],
        marker=dict(size=(t["nps_impact_points"].clip(lower=1) * 3 + 10).tolist(), color=GROUP_COLORS["detractor"],
                    opacity=0.7),
        error_y=dict(type="data", symmetric=False, array=t["importance_ci_high"] - t["importance_r"],
                     arrayminus=t["importance_r"] - t["importance_ci_low"]),
        hovertemplate="%{text}: CSAT %{x:.2f}, r = %{y:.2f}<extra></extra>"))
    if len(t):
        fig.add_vline(x=t["performance_csat"].median(), line_dash="dot", line_color="#999")
        fig.add_hline(y=t["importance_r"].median(), line_dash="dot", line_color="#999")
    fig.update_xaxes(title="Performance: mean CSAT (1–5)")
    fig.update_yaxes(title="Importance: correlation with NPS")
    return style(fig, title)


def response_rates(result, title: str = "Who answered: share of base vs share of responses") -> go.Figure:
    t = result.table
    fig = go.Figure([
        go.Bar(x=t["segment"], y=t["share_of_base_pct"], name="share of customer base", marker_color="#999"),
        go.Bar(x=t["segment"], y=t["share_of_responses_pct"], name="share of responses", marker_color=PRIMARY),
    ])
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="%")
    return style(fig, title)
