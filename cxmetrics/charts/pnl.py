"""The bridge waterfall and the tornado chart."""

from __future__ import annotations

from cxmetrics.charts import go, style


def _num(v: float) -> str:
    """A readable bar label: thousands separated for money and counts, 3 significant digits else."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"

def waterfall(p, title: str | None = None) -> go.Figure:
    c = p.components
    est, lo, hi = p.net
    fig = go.Figure(go.Waterfall(
        x=list(c["label"]) + ["Net impact"], y=list(c["estimate"]) + [est],
        measure=["relative"] * len(c) + ["total"],
        text=[f"{v:,.0f}" for v in c["estimate"]] + [f"{est:,.0f}"], textposition="outside",
        connector=dict(line=dict(color="#bbb")),
        increasing=dict(marker=dict(color="#1a9850")), decreasing=dict(marker=dict(color="#d73027")),
        totals=dict(marker=dict(color="#2b5d8a")), showlegend=False))
    # interval whiskers at each bar's top, right of its centre (a second, hidden axis over the
    # categories' 0, 1, 2, …): centred, they ran through the value labels
    tops, run = [], 0.0
    for v in c["estimate"]:
        run += v
        tops.append(run)
    n = len(c) + 1
    fig.add_trace(go.Scatter(
        x=[i + 0.3 for i in range(n)], y=tops + [est], xaxis="x2", mode="markers", marker=dict(size=1, color="#333"),
        error_y=dict(type="data", symmetric=False, array=list(c["ci_high"] - c["estimate"]) + [hi - est],
                     arrayminus=list(c["estimate"] - c["ci_low"]) + [est - lo], color="#333"),
        showlegend=False, hoverinfo="skip"))
    fig.update_layout(xaxis=dict(range=[-0.5, n - 0.5], tickangle=-20),
                      xaxis2=dict(overlaying="x", range=[-0.5, n - 0.5], visible=False))
    fig.update_yaxes(title="EUR")
    return style(fig, title or "CX-to-P&L bridge (95% intervals)", height=440)


def tornado(p, title: str = "Sensitivity: net impact across each assumption's range") -> go.Figure:
    t = p.tornado.iloc[::-1]
    base = p.net[0]
    fig = go.Figure([
        go.Bar(y=t["assumption"], x=t["net_at_low"] - base, base=base, orientation="h", name="at low value",
               marker_color="#fdae61", text=[_num(v) for v in t["low"]], textposition="inside"),
        go.Bar(y=t["assumption"], x=t["net_at_high"] - base, base=base, orientation="h", name="at high value",
               marker_color="#2b5d8a", text=[_num(v) for v in t["high"]], textposition="inside"),
    ])
    fig.add_vline(x=base, line_color="#333")
    fig.add_vline(x=0, line_dash="dot", line_color="#d73027")
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="net impact (EUR)")
    return style(fig, title, height=420)
