"""Figures for the non-contractual (BG/NBD + Gamma-Gamma) part of the Customer value page: the
distributions of P(alive), expected purchases and CLV across customers, and the holdout check.
The bins and the predictions come from :mod:`cxmetrics.metrics.btyd_checks`; nothing is computed here."""

from __future__ import annotations

from cxmetrics.charts import PRIMARY, go, style


def distribution(hist, *, title: str, x_title: str, fmt: str = "{:,.1f}") -> go.Figure:
    """Customers per bin (``bin_low``, ``bin_high``, ``customers``, ``share``, ``open_top``)."""
    labels = [f"{fmt.format(lo)}–{fmt.format(hi)}" for lo, hi in zip(hist["bin_low"], hist["bin_high"], strict=True)]
    if len(hist) and bool(hist["open_top"].iloc[-1]):
        labels[-1] = f"≥ {fmt.format(hist['bin_low'].iloc[-1])}"
    fig = go.Figure(go.Bar(x=labels, y=hist["customers"], marker_color=PRIMARY,
                           customdata=hist["share"], hovertemplate="%{x}: %{y:,.0f} customers (%{customdata:.1%})"
                                                                   "<extra></extra>"))
    fig.update_xaxes(title=x_title, type="category")
    fig.update_yaxes(title="customers")
    fig.update_layout(bargap=0.05)
    return style(fig, title, height=320)


def holdout(result, title: str = "Holdout purchases per customer: predicted vs actual") -> go.Figure:
    """Actual and BG/NBD-predicted holdout repeat purchases per customer, by calibration-period
    repeats (the conditional-expectation plot of Fader, Hardie & Lee 2005a, Figure 3)."""
    t = result.table
    fig = go.Figure()
    fig.add_trace(go.Bar(x=t["calibration_repeats"], y=t["actual_per_customer"], name="actual", marker_color="#999",
                         customdata=t["customers"], hovertemplate="%{y:.2f} per customer (%{customdata:,} customers)"
                                                                  "<extra></extra>"))
    fig.add_trace(go.Scatter(x=t["calibration_repeats"], y=t["predicted_per_customer"], name="predicted (BG/NBD)",
                             mode="lines+markers", line=dict(color=PRIMARY, width=3)))
    fig.update_xaxes(title="repeat purchases in the calibration period", type="category")
    fig.update_yaxes(title="repeat purchases per customer in the holdout")
    return style(fig, title)
