"""AppTest: NPS & drivers and Customer voice."""

import re

import pytest

from cxmetrics import store
from cxmetrics.metrics import moved
from cxmetrics.registers import demo, importer


def test_nps_page(demo_db, make_app):
    at = make_app(demo_db, page="pages/02_nps_drivers.py")
    assert not at.exception, at.exception
    assert at.title[0].value == "NPS & drivers"
    assert any("NPS" in m.label for m in at.metric)
    assert any("from" in m.value and "to" in m.value for m in at.markdown)  # the change sentence


def test_nps_page_empty_state(demo_db, make_app):
    at = make_app(demo_db, page="pages/02_nps_drivers.py", query={"from": "2026-09-30", "to": "2026-09-30",
                                                                  "segment": "enterprise", "region": "west"})
    assert not at.exception, at.exception


def test_voice_page_shows_text_not_html(demo_db, make_app):
    at = make_app(demo_db, page="pages/03_customer_voice.py")
    assert not at.exception, at.exception
    at.text_input(key="voice_search").input("script").run()
    assert not at.exception
    df = next(d.value for d in at.dataframe if "verbatim" in d.value.columns)  # the search results, first
    assert df["verbatim"].str.contains("<script>").any()  # kept as literal text in a dataframe


def _texts(at) -> str:
    return "\n".join(str(x.value) for x in [*at.markdown, *at.caption, *at.info, *at.subheader, *at.header])


def test_voice_page_themes_cost_feelings_and_codebook(writable_db, make_app):
    at = make_app(writable_db, role="analyst", page="pages/03_customer_voice.py", timeout=240)
    assert not at.exception, at.exception
    text = _texts(at)
    assert "discovered themes (not saved as a codebook yet)" in text and "NPS points at stake" in text
    cost = next(d.value for d in at.dataframe if "nps_points_at_stake" in d.value.columns)
    assert len(cost) >= 6 and cost["nps_gap_adjusted"].notna().all()
    assert any("Emotions by NPS group" in str(c.proto.spec) for c in at.get("plotly_chart"))
    drill = next(d.value for d in at.dataframe if list(d.value.columns) == ["responded_on", "nps", "touchpoint", "verbatim"])
    assert len(drill) > 0
    at.button(key="voice_codebook_save").click().run()
    assert not at.exception, at.exception
    assert any("Saved codebook version 1" in s.value for s in at.success)
    at.run()  # the next run reads the saved codebook (the save moved the data version)
    assert "saved codebook v1" in _texts(at)


def test_voice_codebook_save_is_refused_for_finance(writable_db, make_app):
    at = make_app(writable_db, role="finance", page="pages/03_customer_voice.py", timeout=240)
    at.button(key="voice_codebook_save").click().run()
    assert not at.exception and any("analyst only" in e.value for e in at.error)


def test_executive_summary_says_what_moved(demo_db, make_app):
    at = make_app(demo_db, page="pages/01_executive_summary.py", timeout=240)
    assert not at.exception, at.exception
    assert any(s.value == "What moved this period" for s in at.subheader)
    assert any("FDR-adjusted p" in m.value for m in at.markdown)


def test_executive_summary_says_the_strongest_moves_and_tables_the_rest(demo_db, make_app, monkeypatch):
    # the demo has a few moved cells; at a million customers hundreds move: the page says the
    # first HEADLINES and lists every one in a table (lowered here so the demo has more)
    monkeypatch.setattr(moved, "HEADLINES", 3)
    at = make_app(demo_db, page="pages/01_executive_summary.py", timeout=240)
    assert not at.exception, at.exception
    said = [m.value for m in at.markdown if "FDR-adjusted p" in m.value]
    more = [m.value for m in at.markdown if "more change" in m.value and "survived" in m.value]
    assert len(said) == 3 and len(more) == 1 and "the table below lists them all" in more[0]
    box = next(e for e in at.expander if e.label.startswith("All ") and e.label.endswith("changes that moved"))
    table = box.dataframe[0].value
    rest = int(re.search(r"and ([\d,]+) more", more[0])[1].replace(",", ""))
    assert len(table) == int(box.label.split()[1].replace(",", "")) == 3 + rest


@pytest.fixture(scope="module")
def thin_stores(tmp_path_factory):
    """An initialised empty store and a survey-only one (customers and responses imported)."""
    frames = demo.generate(300, 5)
    folder = tmp_path_factory.mktemp("thin")
    out = {}
    for name, tables in {"empty": (), "survey": ("customers", "survey_responses")}.items():
        db = folder / f"{name}.duckdb"
        with store.connect(str(db), read_only=False) as con:
            store.mark(con, "initialised")
        for t in tables:
            path = folder / f"{name}_{t}.csv"
            frames[t].to_csv(path, index=False)
            importer.import_file(path, t, db=str(db), actor="test")
        out[name] = db
    return out


@pytest.mark.parametrize("name", ["empty", "survey"])
def test_voice_and_summary_on_thin_stores(thin_stores, make_app, name):
    at = make_app(thin_stores[name], page="pages/03_customer_voice.py", timeout=240)
    assert not at.exception, at.exception
    text = _texts(at)
    if name == "empty":
        assert "No verbatims match" in text
    else:
        assert "Themes and what they cost" in text and " nan " not in text
    at = make_app(thin_stores[name], page="pages/01_executive_summary.py", timeout=240)
    assert not at.exception, at.exception


def test_voice_discovery_action_keeps_themes(thin_stores, make_app, tmp_path):
    """A store imported without themes: the page says so, never fits on load; the analyst's
    "Discover themes" keeps a run and the next run shows its themes. Finance is refused."""
    import shutil

    db = tmp_path / "survey.duckdb"
    shutil.copy(thin_stores["survey"], db)
    at = make_app(db, role="finance", page="pages/03_customer_voice.py", timeout=240)
    assert "Themes have not been discovered" in _texts(at)
    at.button(key="voice_discover").click().run()
    assert not at.exception and any("analyst only" in e.value for e in at.error)
    at = make_app(db, role="analyst", page="pages/03_customer_voice.py", timeout=240)
    at.button(key="voice_discover").click().run()
    assert not at.exception, at.exception
    assert any("Kept theme run 1" in s.value for s in at.success)
    at.run()
    assert "discovered themes (not saved as a codebook yet)" in _texts(at)
    assert any("nps_points_at_stake" in d.value.columns and len(d.value) > 0 for d in at.dataframe)


def test_tables_show_dates_as_dates_not_midnight_timestamps():
    """A DuckDB DATE arrives in pandas as a timestamp at midnight: tables show it as a date; a real
    time of day keeps its time; p-values keep 4 places, other decimals 2."""
    import pandas as pd

    from cxmetrics import ui

    df = pd.DataFrame({"responded_on": pd.to_datetime(["2026-09-30", None]),
                       "imported_at": pd.to_datetime(["2026-09-30 10:15", "2026-01-01 00:00"]),
                       "p_value": [0.1, 0.2], "share_pct": [1.0, 2.0], "n": [1, 2]})
    cfg = ui.column_config(df)
    assert cfg["responded_on"]["type_config"] == {**cfg["responded_on"]["type_config"], "type": "date",
                                                  "format": "YYYY-MM-DD"}
    assert cfg["imported_at"]["type_config"]["type"] == "datetime"
    assert cfg["p_value"]["type_config"]["format"] == "%.4f" and cfg["share_pct"]["type_config"]["format"] == "%.2f"
    assert cfg["share_pct"]["label"] == "share pct"


def test_chart_legends_sit_below_the_plot_not_over_the_title():
    """A legend of several rows above the plot wrote over the chart title (the theme trend): the
    house style puts it at the bottom of the figure, where plotly makes room for it."""
    import plotly.graph_objects as go

    from cxmetrics.charts import style

    fig = style(go.Figure([go.Scatter(x=[1, 2], y=[1, 2], name=f"theme {i}") for i in range(9)]), "A title")
    legend = fig.layout.legend
    assert (legend.yref, legend.y, legend.yanchor, legend.orientation) == ("container", 0, "bottom", "h")
    assert fig.layout.title.text == "A title"


def test_bar_labels_stay_off_the_interval_whiskers():
    """A value label above a bar sat on its interval's whisker (the screenshots showed "n=1,500"
    and the bridge's figures crossed by the whisker): NPS bars name their n in the axis label, CLV
    bars carry their value at the foot, and the bridge's whiskers stand right of each bar's centre."""
    from types import SimpleNamespace

    import pandas as pd

    from cxmetrics.charts import churn as churn_charts
    from cxmetrics.charts import nps as nps_charts
    from cxmetrics.charts import pnl as pnl_charts

    t = pd.DataFrame({"segment": ["smb", "consumer"], "nps": [20.0, 5.0], "ci_low": [10.0, -2.0],
                      "ci_high": [30.0, 12.0], "n": [1862, 1500]})
    bar = nps_charts.breakdown(SimpleNamespace(table=t), "segment").data[0]
    assert list(bar.x) == ["smb · n=1,862", "consumer · n=1,500"] and bar.text is None
    t = pd.DataFrame({"nps_group": ["promoter", "detractor"], "clv": [26107.0, 4310.0], "ci_low": [20000.0, 2500.0],
                      "ci_high": [32000.0, 6300.0]})
    bar = churn_charts.clv_bars(SimpleNamespace(table=t)).data[0]
    assert (bar.textposition, bar.insidetextanchor) == ("inside", "start") and list(bar.text) == ["26,107", "4,310"]
    comps = pd.DataFrame({"label": ["Retention", "Programme cost"], "estimate": [21607.0, -30400.0],
                          "ci_low": [-10000.0, -30400.0], "ci_high": [58000.0, -30400.0]})
    fig = pnl_charts.waterfall(SimpleNamespace(components=comps, net=(-8793.0, -40000.0, 27600.0)))
    bars, whiskers = fig.data
    assert list(bars.x) == ["Retention", "Programme cost", "Net impact"] and bars.textposition == "outside"
    # categories sit at 0, 1, 2 on both axes; each whisker 0.3 to the right, inside its bar (width 0.8)
    assert whiskers.xaxis == "x2" and list(whiskers.x) == [0.3, 1.3, 2.3]
    assert list(fig.layout.xaxis.range) == list(fig.layout.xaxis2.range) == [-0.5, 2.5]
    assert fig.layout.xaxis2.overlaying == "x" and fig.layout.xaxis2.visible is False
    # the priority matrix: each name below its point, away from the whisker and the median lines
    t = pd.DataFrame({"touchpoint": ["delivery", "contact_centre", "billing"], "performance_csat": [3.77, 3.93, 4.0],
                      "importance_r": [0.57, 0.68, 0.69], "importance_ci_low": [0.53, 0.65, 0.65],
                      "importance_ci_high": [0.61, 0.71, 0.72], "nps_impact_points": [18.0, 9.8, 5.9]})
    dots = nps_charts.driver_matrix(SimpleNamespace(table=t)).data[0]
    assert list(dots.textposition) == ["bottom right", "bottom right", "bottom left"]
