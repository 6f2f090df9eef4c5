"""Figures for the complaints page."""

from __future__ import annotations

from cxmetrics.charts import PRIMARY, go, style


def pareto(result, title: str = "Complaint Pareto: categories by volume") -> go.Figure:
    t = result.table
    fig = go.Figure([
        go.Bar(x=t["category"], y=t["complaints"], name="complaints",
               marker_color=[PRIMARY if top else "#b0c4d8" for top in t["in_top_80pct"]]),
        go.Scatter(x=t["category"], y=t["cumulative_share_pct"], name="cumulative %", yaxis="y2",
                   mode="lines+markers", line=dict(color="#d73027")),
    ])
    fig.add_hline(y=80, line_dash="dot", line_color="#d73027", yref="y2")
    fig = style(fig, title, height=440)
    fig.update_layout(yaxis=dict(title="complaints"),
                      yaxis2=dict(overlaying="y", side="right", range=[0, 105], title="cumulative %",
                                  tickmode="array", tickvals=[0, 20, 40, 60, 80, 100], showgrid=False, automargin=True),
                      xaxis=dict(tickangle=-45, automargin=True))
    return fig


def escalation_trend(result, title: str = "Escalation rate by month (95% CI)") -> go.Figure:
    t = result.table
    fig = go.Figure(go.Scatter(x=t["month"], y=t["escalation_rate_pct"], mode="lines+markers",
                               line=dict(color=PRIMARY),
                               error_y=dict(type="data", symmetric=False, array=t["esc_ci_high"] - t["escalation_rate_pct"],
                                            arrayminus=t["escalation_rate_pct"] - t["esc_ci_low"])))
    fig.update_yaxes(title="% of complaints escalated")
    return style(fig, title)


def callbacks(result, title: str = "Callbacks kept (95% CI)") -> go.Figure:
    t = result.table
    x = t.columns[0]
    fig = go.Figure(go.Bar(x=t[x].astype(str), y=t["kept_pct"], marker_color=PRIMARY,
                           error_y=dict(type="data", symmetric=False, array=t["ci_high"] - t["kept_pct"],
                                        arrayminus=t["kept_pct"] - t["ci_low"])))
    fig.update_yaxes(title="% of promised callbacks made", range=[0, 105])
    return style(fig, title)


def hazard(result, title: str = "Churn hazard after complaints vs no complaint (95% CI)") -> go.Figure:
    t = result.table
    fig = go.Figure(go.Scatter(x=t["hazard_ratio"], y=t["complaint_history"], mode="markers",
                               marker=dict(size=12, color="#d73027"),
                               error_x=dict(type="data", symmetric=False, array=t["ci_high"] - t["hazard_ratio"],
                                            arrayminus=t["hazard_ratio"] - t["ci_low"])))
    fig.add_vline(x=1, line_dash="dot", line_color="#999")
    fig.update_xaxes(title="hazard ratio", type="log")
    return style(fig, title, height=300)
