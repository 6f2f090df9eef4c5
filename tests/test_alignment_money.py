"""Money at risk beyond a KPI threshold (issue 18 item 4): segment-adjusted, with an interval."""

import numpy as np
import pandas as pd
import pytest

from cxmetrics.core.results import Result
from cxmetrics.metrics import alignment_money
from cxmetrics.metrics.threshold import fit_threshold


def planted_mix() -> tuple[Result, Result]:
    """Within segment every NPS group has the same CLV; non-detractors sit in the high-value segment."""
    rows = []
    for seg, value, mix in (("enterprise", 50_000.0, {"promoter": 400, "passive": 200, "detractor": 50}),
                            ("consumer", 500.0, {"promoter": 100, "passive": 150, "detractor": 450})):
        for g, n in mix.items():
            rows.append({"nps_group": g, "segment": seg, "tenure": "24m+", "customers": n, "clv": value,
                         "clv_se": 0.1 * value})
    strata = pd.DataFrame(rows)
    pooled = (strata.assign(w=strata["clv"] * strata["customers"], v=(strata["clv_se"] * strata["customers"]) ** 2)
              .groupby("nps_group", as_index=False).sum(numeric_only=True))
    pooled = pooled.assign(clv=pooled["w"] / pooled["customers"], clv_se=np.sqrt(pooled["v"]) / pooled["customers"])
    return (Result("clv", "pooled", pooled[["nps_group", "customers", "clv", "clv_se"]]),
            Result("clv", "strata", strata))


def delivery_threshold():
    rng = np.random.default_rng(4)
    x = np.round(np.arange(0.5, 10.0, 0.1), 1)
    n = rng.poisson(60, x.size)
    k = rng.binomial(n, np.minimum(1.0, 0.27 + 0.15 * np.maximum(0.0, x - 3.0)))
    return fit_threshold(x, n, k), x, n


def test_gap_that_is_only_mix_vanishes_within_segment():
    pooled, strata = planted_mix()
    gap = alignment_money.detractor_gap(pooled, strata)
    assert gap.crude.ci_low > 0  # pooled: non-detractors look far more valuable
    assert gap.ci_low <= 0 <= gap.ci_high and gap.estimate == pytest.approx(0.0, abs=1e-6)
    assert gap.strata == ("segment", "tenure") and "mix" in gap.mix_note


def test_money_at_risk_adjusted_interval_covers_zero_and_the_crude_does_not():
    pooled, strata = planted_mix()
    gap = alignment_money.detractor_gap(pooled, strata)
    th, x, n = delivery_threshold()
    m = alignment_money.money_at_risk(th, x, n, gap, horizon_years=5)
    extra, lo, hi = m["extra"]
    assert 0 < lo <= extra <= hi
    assert m["money"].ci_low <= 0 <= m["money"].ci_high
    assert m["money_crude"].ci_low > 0
    assert m["money_crude"].estimate == pytest.approx(extra * gap.crude.estimate)
    assert "5-year horizon" in m["money"].label and "a year's extra detractors" in m["money"].label


def test_money_at_risk_interval_is_seeded_and_follows_alpha():
    pooled, strata = planted_mix()
    gap = alignment_money.detractor_gap(pooled, None)  # crude only: a positive gap
    th, x, n = delivery_threshold()
    a = alignment_money.money_at_risk(th, x, n, gap)["money"]
    b = alignment_money.money_at_risk(th, x, n, gap)["money"]
    c = alignment_money.money_at_risk(th, x, n, gap, alpha=0.5)["money"]
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert a.ci_low < c.ci_low < a.estimate < c.ci_high < a.ci_high


def test_deck_shows_the_adjusted_money_the_crude_beside_it_and_the_interval_methods(con):
    from cxmetrics import story
    from cxmetrics.core.filters import Filters

    slides = {s.title: s for s in story.story(con, Filters())}
    kpis = slides["Department targets vs customer expectations"]
    text = " ".join(kpis.sentences)
    assert "a year's extra detractors (5-year horizon)" in text and "crude" in text and "95% CI" in text
    assert {"money_at_risk_ci_low", "money_at_risk_crude"} <= set(kpis.table.columns)
    assert "standardised to the detractors' mix" in kpis.notes
    ini = slides["CX initiatives: what they delivered"]
    assert "HC1" in ini.notes and "cluster-robust inference is not available" in ini.notes
    assert "Prais–Winsten" in ini.notes


def test_pages_show_the_adjusted_money_and_the_crude_beside_it(demo_db, make_app):
    at = make_app(demo_db, page="pages/07_alignment.py")
    assert not at.exception, at.exception
    assert any("5-year horizon" in m.label for m in at.metric)
    assert any("crude" in c.value and "mix" in c.value for c in at.caption)
    at = make_app(demo_db, page="pages/06_department.py")
    at.selectbox(key="dept_pick").select("logistics").run()
    assert not at.exception, at.exception
    assert any("5-year horizon" in m.value and "crude" in m.value for m in at.markdown)
    at = make_app(demo_db, page="pages/09_initiatives.py")
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "HC1" in captions and "Prais–Winsten" in captions and "wild cluster bootstrap" in captions
