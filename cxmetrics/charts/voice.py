"""Figures for the Customer voice page: theme share trend and emotion mixes (no statistics here)."""

from __future__ import annotations

from cxmetrics.charts import go, style


def theme_trend(trend, themes: list[str], title: str = "Share of verbatims by month (95% CI)") -> go.Figure:
    """Monthly share of the given themes with Wilson intervals as error bars."""
    fig = go.Figure()
    for name in themes:
        t = trend[trend["theme"] == name]
        fig.add_trace(go.Scatter(x=t["month"], y=100 * t["share"], mode="lines+markers", name=str(name),
                                 error_y=dict(type="data", symmetric=False, array=100 * (t["share_ci_high"] - t["share"]),
                                              arrayminus=100 * (t["share"] - t["share_ci_low"]))))
    fig.update_yaxes(title="% of verbatims")
    return style(fig, title, height=420)


def emotion_mix(emotions, by: str, title: str) -> go.Figure:
    """Share of verbatims with a word of each Plutchik emotion, one bar group per ``by`` level."""
    e = emotions[emotions["by"] == by]
    fig = go.Figure()
    for emotion in e["emotion"].unique():
        t = e[e["emotion"] == emotion]
        fig.add_trace(go.Bar(x=t["group"].astype(str), y=100 * t["share"], name=str(emotion),
                             error_y=dict(type="data", symmetric=False, array=100 * (t["share_ci_high"] - t["share"]),
                                          arrayminus=100 * (t["share"] - t["share_ci_low"]))))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="% of verbatims")
    return style(fig, title, height=420)
