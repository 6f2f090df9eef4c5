"""Figures for the churn and customer-value pages."""

from __future__ import annotations

from cxmetrics.charts import GROUP_COLORS, PRIMARY, go, style


def _rgba(hex_color: str, a: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {a})"


def survival(result, title: str = "Customers still with us, by NPS group") -> go.Figure:
    fig = go.Figure()
    for g, d in result.table.groupby("nps_group"):
        c = GROUP_COLORS.get(g, PRIMARY)
        fig.add_trace(go.Scatter(x=list(d["month"]) + list(d["month"][::-1]),
                                 y=list(d["ci_high"]) + list(d["ci_low"][::-1]), fill="toself",
                                 fillcolor=_rgba(c, 0.15), line=dict(width=0), showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=d["month"], y=d["survival"], name=g, line=dict(color=c, width=3, shape="hv")))
    fig.update_xaxes(title="months since the landmark date")
    fig.update_yaxes(title="share still a customer", tickformat=".0%", range=[0, 1.02])
    return style(fig, title)


def ratios(result, title: str = "Churn risk vs promoters (95% CI)") -> go.Figure:
    t = result.table
    label = t["group"] + " · " + t["model"].str.split(" ").str[0] + " " + t["measure"].str.split(" ").str[0]
    fig = go.Figure(go.Scatter(x=t["ratio"], y=label, mode="markers",
                               marker=dict(size=12, color=[GROUP_COLORS.get(g, PRIMARY) for g in t["group"]]),
                               error_x=dict(type="data", symmetric=False, array=t["ci_high"] - t["ratio"],
                                            arrayminus=t["ratio"] - t["ci_low"])))
    fig.add_vline(x=1, line_dash="dot", line_color="#999")
    fig.update_xaxes(title="ratio (1 = same as promoters)", type="log")
    return style(fig, title, height=320)


def rate_bars(result, dim: str, value: str = "churn_rate_pct", title: str | None = None) -> go.Figure:
    t = result.table
    fig = go.Figure(go.Bar(x=t[dim].astype(str), y=t[value],
                           marker_color=[GROUP_COLORS.get(str(g), PRIMARY) for g in t[dim]],
                           error_y=dict(type="data", symmetric=False, array=t["ci_high"] - t[value],
                                        arrayminus=t[value] - t["ci_low"])))
    months = result.extra.get("window_months")
    window = f"% churned within {max(round(months), 1)} months" if months else "% churned"
    fig.update_yaxes(title=window if value == "churn_rate_pct" else value)
    return style(fig, title)


def cohort_heatmap(result, title: str = "Retention by acquisition cohort") -> go.Figure:
    t = result.table.pivot(index="cohort", columns="months", values="retained")
    fig = go.Figure(go.Heatmap(z=t.values, x=[f"{m}m" for m in t.columns], y=[str(c)[:7] for c in t.index],
                               colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="retained", tickformat=".0%")))
    fig.update_xaxes(title="months after acquisition")
    return style(fig, title, height=460)


def monthly(result, title: str = "Monthly churn rate (95% CI)") -> go.Figure:
    t = result.table
    fig = go.Figure([go.Scatter(x=t["month"], y=t["churn_rate_pct"], mode="lines+markers", line=dict(color=PRIMARY),
                                error_y=dict(type="data", symmetric=False, array=t["ci_high"] - t["churn_rate_pct"],
                                             arrayminus=t["churn_rate_pct"] - t["ci_low"]), name="churn rate")])
    fig.update_yaxes(title="% of active customers")
    return style(fig, title)


def clv_bars(result, title: str = "Customer lifetime value by NPS group (95% interval)") -> go.Figure:
    t = result.table
    fig = go.Figure(go.Bar(x=t["nps_group"], y=t["clv"], marker_color=[GROUP_COLORS.get(g, PRIMARY) for g in t["nps_group"]],
                           error_y=dict(type="data", symmetric=False, array=t["ci_high"] - t["clv"],
                                        arrayminus=t["clv"] - t["ci_low"]),
                           # the value at the bar's foot: above the bar it sat on the interval's whisker
                           text=[f"{v:,.0f}" for v in t["clv"]], textposition="inside", insidetextanchor="start"))
    fig.update_yaxes(title="CLV (EUR, discounted margin)")
    return style(fig, title)


def wallet_bars(result, title: str = "Share of wallet by NPS group") -> go.Figure:
    t = result.table
    fig = go.Figure()
    for col, name, color in (("stated", "stated", PRIMARY), ("observed", "observed", "#7fa7c9"), ("war", "WAR", "#999")):
        fig.add_trace(go.Bar(x=t["nps_group"], y=t[f"{col}_pct"], name=name, marker_color=color,
                             error_y=dict(type="data", symmetric=False, array=t[f"{col}_ci_high"] - t[f"{col}_pct"],
                                          arrayminus=t[f"{col}_pct"] - t[f"{col}_ci_low"])))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="% of category spend")
    return style(fig, title)
