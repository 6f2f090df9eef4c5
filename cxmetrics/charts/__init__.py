"""Plotly figures, one module per area. Charts draw results; they never compute statistics.

Shared look: :func:`style` applies the house layout; ``GROUP_COLORS`` colours NPS groups the
same everywhere.
"""

from __future__ import annotations

import plotly.graph_objects as go

GROUP_COLORS = {"promoter": "#1a9850", "passive": "#fdae61", "detractor": "#d73027"}
PRIMARY = "#2b5d8a"
BAND = "rgba(43, 93, 138, 0.18)"
STATUS_COLORS = {"aligned": "#1a9850", "misaligned": "#d73027", "no evidence": "#999999"}


def style(fig: go.Figure, title: str | None = None, *, height: int = 380) -> go.Figure:
    """House layout: readable fonts, no clutter, room for axis titles, legend on top."""
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=60, r=20, t=60 if title else 30, b=50),
        font=dict(size=13),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        template="plotly_white",
    )
    return fig
