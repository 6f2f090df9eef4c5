"""Plotly figures, one module per area. Charts draw results; they never compute statistics.

Shared look: :func:`style` applies the house layout; ``GROUP_COLORS`` colours NPS groups the
same everywhere.

Labels are plain text. Plotly reads a subset of HTML in every text it draws (``<a href>`` becomes
a link, ``<br>``, ``<b>``, ``<span style>`` are obeyed) in category labels, hover text, legend
names, titles and annotations, and imported labels (department, KPI, category, initiative names)
reach all of those. :func:`style`, which every figure passes through, therefore escapes ``&``,
``<`` and ``>`` in every text of the figure (:func:`escape_labels`); plotly turns the entities back
into the characters on screen, so a label shows exactly as it was imported and is never markup.
Hover templates are ours and keep their tags; the values they insert are escaped.
"""

from __future__ import annotations

from cxmetrics.core import lazy

np = lazy.module("numpy")
go = lazy.module("plotly.graph_objects")  # every chart module's (imported on first use)

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
        # below the plot and its axis title: a legend of several rows on top would write over the title
        legend=dict(orientation="h", yanchor="bottom", y=0, yref="container", xanchor="left", x=0),
    )
    _house_template(fig)
    return escape_labels(fig)


def _house_template(fig: go.Figure) -> None:
    """The ``plotly_white`` template on ``fig``, set as plotly sets its default template on a new
    figure: the registered template (validated once, when plotly loads it) with validation off.
    Named in ``update_layout`` (``template=``), a copy of the whole template was validated for each
    figure: 14 → 7 ms a figure on every page run, and 64 → 29 ms for the first one in the app's
    process (Streamlit imported), by hand. Not plotly's default template: Streamlit makes its own
    the default when it is imported, so a default would depend on the order of imports."""
    import plotly.io as pio

    layout = fig.layout
    validate = layout._validate  # noqa: SLF001  (what plotly's own default-template path does)
    layout._validate = False  # noqa: SLF001
    try:
        layout.template = pio.templates["plotly_white"]
    finally:
        layout._validate = validate  # noqa: SLF001


def plain(text: str) -> str:
    """``text`` with plotly's markup characters escaped (``&``, ``<``, ``>``).

    >>> plain('<a href="http://evil">x</a> & co')
    '&lt;a href="http://evil"&gt;x&lt;/a&gt; &amp; co'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escaped(value):
    """A trace or layout value with every string in it escaped (numbers and dates untouched)."""
    if isinstance(value, str):
        return plain(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "OUS":
            return value
        flat = [_escaped(v) for v in value.ravel().tolist()]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(value.shape)
    if isinstance(value, (list, tuple)):
        return type(value)(_escaped(v) for v in value)
    return value


#: Trace properties that carry data labels drawn as text (category axes, bar and point text,
#: hover text, legend names, hierarchy labels, custom data quoted by hover templates).
TRACE_TEXT = ("x", "y", "text", "hovertext", "name", "labels", "parents", "ids", "customdata",
              "legendgroup")


def escape_labels(fig: go.Figure) -> go.Figure:
    """Escape plotly's markup in every text of ``fig`` (in place; returns it): trace labels,
    titles, axis titles and tick texts, annotations and the legend title."""
    for trace in fig.data:
        for key in TRACE_TEXT:
            if key in trace and trace[key] is not None:
                trace[key] = _escaped(trace[key])
        if "header" in trace and trace["header"] is not None:  # tables
            trace.header.values = _escaped(trace.header.values)
            trace.cells.values = _escaped(trace.cells.values)
    layout = fig.layout
    if layout.title.text:
        layout.title.text = plain(layout.title.text)
    if layout.legend.title.text:
        layout.legend.title.text = plain(layout.legend.title.text)

    def axis(ax) -> None:
        if ax.title.text:
            ax.title.text = plain(ax.title.text)
        if ax.ticktext is not None:
            ax.ticktext = _escaped(ax.ticktext)

    fig.for_each_xaxis(axis)
    fig.for_each_yaxis(axis)
    for ann in layout.annotations or ():
        if ann.text:
            ann.text = plain(ann.text)
    return fig
