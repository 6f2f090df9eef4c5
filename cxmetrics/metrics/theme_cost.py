"""What each theme costs, how its share moves, and how customers feel: the Customer voice page's figures.

Per theme (verbatims classified by the codebook, :mod:`cxmetrics.themes`):

* **share** of verbatims that carry it, Wilson score interval (Wilson 1927);
* **NPS of those who mention it vs those who don't** (each with its adjusted-Wald interval, the
  difference with z = Δ / √(SE₁² + SE₂²)), and the difference **segment-adjusted**: computed within
  segment and standardised to the segment mix of all verbatims (direct standardisation,
  :func:`cxmetrics.clv.standardise`), the crude figure beside it;
* **NPS points at stake**: how much the NPS of all responses would rise if the theme's detractors
  were passives, 100 · d_theme / n (Wilson interval on d_theme / n);
* **12-month churn** of customers who raised it vs those who did not, from each customer's first
  verbatim with a full year of follow-up, segment-adjusted the same way (binomial SEs);
* **trend** of its share by month with Wilson intervals, and a drill-down to its verbatims (text).

Sentiment and emotion mixes come from :func:`cxmetrics.text.annotate` on a seeded sample of
verbatims; shares carry Wilson intervals for that sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.core.results import Estimate, Result
from cxmetrics.metrics import clv, nps, text, themes

np = lazy.module("numpy")
pd = lazy.module("pandas")

SENTIMENT_SAMPLE = 5_000
CHURN_DAYS = 365


def _wilson_cols(df: pd.DataFrame, k: str, n: str, prefix: str, alpha: float, scale: float = 1.0) -> None:
    ci = [text.wilson(a, b, alpha) for a, b in zip(df[k], df[n], strict=True)]
    df[f"{prefix}_ci_low"] = [scale * c[0] for c in ci]
    df[f"{prefix}_ci_high"] = [scale * c[1] for c in ci]


def _nps_by_segment(t: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per (theme, grp, segment) NPS and SE from counts n, p, d."""
    t = t.copy()
    share_p, share_d = t["p"] / t["n"], t["d"] / t["n"]
    t["nps"] = 100 * (share_p - share_d)
    t["se"] = 100 * np.sqrt(np.maximum(share_p + share_d - (share_p - share_d) ** 2, 0) / t["n"])
    t["customers"] = t["n"]
    return t[t["n"] > 0]


def _adjusted(t: pd.DataFrame, value: str, se: str) -> tuple[float, float, str]:
    """Standardised (mention − other) difference of ``value`` and its SE, strata used."""
    if t.empty:
        return float("nan"), float("nan"), ""
    out, info = clv.standardise(t, ("mention", "other"), {value: se}, strata=("segment",), group_col="grp")
    if not out:
        return float("nan"), float("nan"), ""
    (a, sa), (b, sb) = out["mention"][value], out["other"][value]
    return a - b, math.hypot(sa, sb), ", ".join(info.get("strata", ())) if isinstance(info, dict) else ""


@store.memoized
def cost(con: duckdb.DuckDBPyConnection, filters: Filters, cb: Mapping[str, Iterable[str]], *,
         alpha: float = 0.05) -> Result:
    """One row per theme: share, NPS with vs without (crude and segment-adjusted), NPS points at
    stake and 12-month churn raised vs not (crude and adjusted), each with its interval."""
    z = nps._z(alpha)
    sql, params = themes.tagged_sql(filters, cb, con)
    by_seg = store.run(con, store.Query("theme_nps_by_segment", sql + """
, base AS (SELECT v.response_id, v.nps, c.segment FROM v JOIN customers c USING (customer_id) WHERE v.nps IS NOT NULL)
SELECT t.theme, b.segment, count(*) AS n, count(*) FILTER (WHERE b.nps >= 9) AS p,
       count(*) FILTER (WHERE b.nps <= 6) AS d
FROM tagged t JOIN base b USING (response_id) GROUP BY ALL
UNION ALL
SELECT NULL, segment, count(*), count(*) FILTER (WHERE nps >= 9), count(*) FILTER (WHERE nps <= 6) FROM base GROUP BY ALL""",
        params))
    mentions = store.run(con, store.Query("theme_mentions", sql + """
SELECT (SELECT count(*) FROM v) AS verbatims, theme, count(DISTINCT response_id) AS mentions FROM tagged GROUP BY theme""",
        params))
    where, wparams = filters.where(date_col="r.responded_on", customer_id_col="r.customer_id",
                                   department_col="r.department")
    n_all = int(store.scalar(con, f"SELECT count(nps) FROM survey_responses r WHERE {where}", wparams) or 0)
    churn = _churn(con, filters, cb)
    total_v = int(store.scalar(con, sql + " SELECT count(*) FROM v", params) or 0)
    totals = by_seg[by_seg["theme"].isna()].set_index("segment")[["n", "p", "d"]]
    rows = []
    for theme_name in dict.fromkeys([*cb, *mentions["theme"].dropna()]):  # imported themes too
        m = mentions[mentions["theme"] == theme_name]
        k = int(m["mentions"].iloc[0]) if len(m) else 0
        seg = by_seg[by_seg["theme"] == theme_name].set_index("segment")[["n", "p", "d"]]
        other = totals.sub(seg.reindex(totals.index).fillna(0), fill_value=0)
        e_m = nps.nps_estimate(int(seg["n"].sum()), float(seg["p"].sum()), float(seg["d"].sum()), alpha=alpha,
                               min_n=filters.min_n)
        e_o = nps.nps_estimate(int(other["n"].sum()), float(other["p"].sum()), float(other["d"].sum()), alpha=alpha,
                               min_n=filters.min_n)
        gap = nps.difference(e_m, e_o) if e_m.n and e_o.n else None
        strat = pd.concat([seg.assign(grp="mention"), other.assign(grp="other")]).rename_axis("segment").reset_index()
        adj, adj_se, _ = _adjusted(_nps_by_segment(strat, alpha), "nps", "se")
        d_theme = float(seg["d"].sum())
        stake = text.wilson(d_theme, n_all, alpha)
        lo, hi = text.wilson(k, total_v, alpha)
        ch = churn.get(theme_name, {})
        rows.append({
            "theme": theme_name, "estimate": k / total_v if total_v else float("nan"), "ci_low": lo, "ci_high": hi,
            "n": k, "verbatims": total_v,
            "nps_mention": e_m.estimate, "nps_mention_ci_low": e_m.ci_low, "nps_mention_ci_high": e_m.ci_high,
            "nps_other": e_o.estimate, "nps_other_ci_low": e_o.ci_low, "nps_other_ci_high": e_o.ci_high,
            "nps_gap": gap.estimate if gap else float("nan"),
            "nps_gap_ci_low": gap.ci_low if gap else float("nan"), "nps_gap_ci_high": gap.ci_high if gap else float("nan"),
            "nps_gap_adjusted": adj, "nps_gap_adjusted_ci_low": adj - z * adj_se, "nps_gap_adjusted_ci_high": adj + z * adj_se,
            "nps_points_at_stake": 100 * d_theme / n_all if n_all else float("nan"),
            "nps_points_at_stake_ci_low": 100 * stake[0], "nps_points_at_stake_ci_high": 100 * stake[1],
            **ch, "small_sample": k < filters.min_n,
        })
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.sort_values(["n", "theme"], ascending=[False, True]).reset_index(drop=True)
    warnings = []
    if total_v == 0:
        warnings.append("No verbatims in these filters.")
    return Result(
        "theme_cost", "What each theme costs", table,
        method=("Share: Wilson score interval. NPS with vs without the theme: adjusted-Wald intervals, difference "
                "z = Δ/√(SE₁²+SE₂²); adjusted: within segment, standardised to the segment mix of all verbatims. "
                "Points at stake: 100·(theme's detractors)/(all NPS responses), Wilson interval. Churn: share of "
                f"customers churned within {CHURN_DAYS} days of their first verbatim (only customers with a full year "
                "of follow-up), raised vs not, crude and segment-standardised, binomial SEs. " + themes.METHOD),
        reference="Wilson (1927) JASA 22; Rocks (2016) adjusted-Wald NPS interval; " + themes.REFERENCE,
        filters=filters.describe(), alpha=alpha,
        assumptions={"responses independent": "repeat respondents not clustered in the theme comparison",
                     "churn window days": CHURN_DAYS},
        warnings=tuple(warnings), extra={"verbatims": total_v, "nps_responses": n_all})


def _churn(con: duckdb.DuckDBPyConnection, filters: Filters, cb: Mapping[str, Iterable[str]]) -> dict[str, dict]:
    """Per theme: 12-month churn of customers who raised it vs not, crude and segment-adjusted."""
    sql, params = themes.tagged_sql(filters, cb, con)
    params = {**params, "days": CHURN_DAYS}
    t = store.run(con, store.Query("theme_churn", sql + """
, ends AS (SELECT max(responded_on) AS last_day FROM survey_responses),
first AS (SELECT customer_id, min(responded_on) AS t0 FROM v GROUP BY 1
          HAVING min(responded_on) <= (SELECT last_day FROM ends) - $days::INTEGER),
outcome AS (SELECT f.customer_id, c.segment,
                   coalesce(bool_or(ch.churned_on > f.t0 AND ch.churned_on <= f.t0 + $days::INTEGER), FALSE) AS churned
            FROM first f JOIN customers c USING (customer_id) LEFT JOIN churn_events ch USING (customer_id)
            GROUP BY ALL),
raised AS (SELECT DISTINCT v.customer_id, t.theme FROM tagged t JOIN v USING (response_id)
           JOIN first f USING (customer_id) WHERE v.responded_on <= (SELECT last_day FROM ends) - $days::INTEGER)
SELECT r.theme, o.segment, count(*) AS n, count(*) FILTER (WHERE o.churned) AS k
FROM raised r JOIN outcome o USING (customer_id) GROUP BY ALL
UNION ALL SELECT NULL, segment, count(*), count(*) FILTER (WHERE churned) FROM outcome GROUP BY ALL""", params))
    if t.empty:
        return {}
    totals = t[t["theme"].isna()].set_index("segment")[["n", "k"]]
    out = {}
    for name in t["theme"].dropna().unique():
        seg = t[t["theme"] == name].set_index("segment")[["n", "k"]]
        other = totals.sub(seg.reindex(totals.index).fillna(0), fill_value=0)
        strat = pd.concat([seg.assign(grp="mention"), other.assign(grp="other")]).rename_axis("segment").reset_index()
        strat = strat[strat["n"] > 0].copy()
        strat["rate"] = strat["k"] / strat["n"]
        strat["se"] = np.sqrt(strat["rate"] * (1 - strat["rate"]) / strat["n"])
        strat["customers"] = strat["n"]
        adj, adj_se, _ = _adjusted(strat, "rate", "se")
        n1, k1, n0, k0 = seg["n"].sum(), seg["k"].sum(), other["n"].sum(), other["k"].sum()
        r1 = k1 / n1 if n1 else float("nan")
        r0 = k0 / n0 if n0 else float("nan")
        out[name] = {"churn_raised": r1, "churn_other": r0, "churn_customers_raised": int(n1),
                     "churn_gap": r1 - r0, "churn_gap_adjusted": adj,
                     "churn_gap_adjusted_ci_low": adj - 1.959964 * adj_se,
                     "churn_gap_adjusted_ci_high": adj + 1.959964 * adj_se}
    return out


@store.memoized
def trend(con: duckdb.DuckDBPyConnection, filters: Filters, cb: Mapping[str, Iterable[str]], *,
          alpha: float = 0.05) -> pd.DataFrame:
    """Share of verbatims carrying each theme by month (``month, theme, mentions, verbatims,
    share, share_ci_low, share_ci_high``), Wilson intervals."""
    sql, params = themes.tagged_sql(filters, cb, con)
    df = store.run(con, store.Query("theme_trend", sql + """
, months AS (SELECT date_trunc('month', responded_on)::DATE AS month, count(*) AS verbatims FROM v GROUP BY 1)
SELECT m.month, x.theme, coalesce(x.mentions, 0) AS mentions, m.verbatims
FROM months m JOIN (SELECT date_trunc('month', v.responded_on)::DATE AS month, t.theme, count(*) AS mentions
                    FROM tagged t JOIN v USING (response_id) GROUP BY ALL) x USING (month)
ORDER BY m.month, x.theme""", params))
    df["share"] = df["mentions"] / df["verbatims"]
    _wilson_cols(df, "mentions", "verbatims", "share", alpha)
    return df


def verbatims(con: duckdb.DuckDBPyConnection, filters: Filters, cb: Mapping[str, Iterable[str]], theme: str, *,
              limit: int = 200) -> pd.DataFrame:
    """The newest verbatims carrying ``theme`` (text only: pages show it as plain text)."""
    sql, params = themes.tagged_sql(filters, cb, con)
    params = {**params, "theme": theme, "limit": max(1, min(int(limit), 500))}
    return store.run(con, store.Query("theme_verbatims", sql + """
SELECT r.responded_on, r.nps, coalesce(r.touchpoint, '(relationship)') AS touchpoint, r.verbatim
FROM tagged t JOIN survey_responses r USING (response_id) WHERE t.theme = $theme
ORDER BY r.responded_on DESC, r.response_id LIMIT $limit""", params))


@store.memoized
def feelings(con: duckdb.DuckDBPyConnection, filters: Filters, *, sample: int = SENTIMENT_SAMPLE, seed: int = 0,
             alpha: float = 0.05, lexicon: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Sentiment and Plutchik emotion mixes on a seeded sample of verbatims: ``sentiment`` by
    language (share of each label, Wilson CI, mean score) and ``emotions`` by touchpoint and by
    NPS group (share of verbatims with a word of each emotion, Wilson CI)."""
    q = themes.sample_query(filters, sample, seed, "r.verbatim, coalesce(r.touchpoint, '(relationship)') AS touchpoint, "
                            "CASE WHEN r.nps >= 9 THEN 'promoter' WHEN r.nps >= 7 THEN 'passive' "
                            "WHEN r.nps <= 6 THEN 'detractor' ELSE '(no score)' END AS nps_group")
    df = store.run(con, q)
    if df.empty:
        empty = pd.DataFrame()
        return {"sentiment": empty, "emotions": empty, "sample": empty}
    a = text.annotate(df["verbatim"], lexicon).join(df[["touchpoint", "nps_group"]])
    sent = a.groupby(["language", "sentiment_label"]).size().rename("k").reset_index()
    sent["n"] = sent.groupby("language")["k"].transform("sum")
    sent["share"] = sent["k"] / sent["n"]
    _wilson_cols(sent, "k", "n", "share", alpha)
    means = a.groupby("language")["sentiment"].mean().rename("mean_sentiment")
    sent = sent.join(means, on="language")
    sent["method"] = sent["language"].map(a.groupby("language")["sentiment_method"].first())
    frames = []
    for dim in ("touchpoint", "nps_group"):
        hit = (a[list(text.PLUTCHIK)] > 0).astype(int)
        g = hit.join(a[dim]).groupby(dim)
        k = g.sum().stack().rename("k")
        n = g.size().rename("n")
        f = k.reset_index().rename(columns={dim: "group", "level_1": "emotion"}).join(n, on="group")
        f.insert(0, "by", dim)
        frames.append(f)
    emo = pd.concat(frames, ignore_index=True)
    emo["share"] = emo["k"] / emo["n"]
    _wilson_cols(emo, "k", "n", "share", alpha)
    return {"sentiment": sent, "emotions": emo, "sample": a}


@dataclass(frozen=True)
class VoiceThemes:
    """What the Customer voice page shows about themes."""

    source: str
    version: int | None
    codebook: dict
    discovery: themes.Discovery | None
    cost: Result
    trend: pd.DataFrame
    sentiment: pd.DataFrame
    emotions: pd.DataFrame
    drill: pd.DataFrame
    headline: Estimate | None = None

    @property
    def verbatims(self) -> int:
        return int(self.cost.extra.get("verbatims", 0))

    def top(self, n: int = 5) -> list[str]:
        """The ``n`` most mentioned themes."""
        t = self.cost.table
        return t["theme"].head(n).tolist() if len(t) else []

    def cost_table(self) -> pd.DataFrame:
        """The cost table's columns for the page (every figure beside its interval)."""
        cols = ["theme", "n", "estimate", "ci_low", "ci_high", "nps_mention", "nps_other", "nps_gap",
                "nps_gap_adjusted", "nps_gap_adjusted_ci_low", "nps_gap_adjusted_ci_high", "nps_points_at_stake",
                "nps_points_at_stake_ci_low", "nps_points_at_stake_ci_high", "churn_raised", "churn_other",
                "churn_gap_adjusted", "churn_gap_adjusted_ci_low", "churn_gap_adjusted_ci_high", "small_sample"]
        t = self.cost.table
        return t[[c for c in cols if c in t.columns]].rename(columns={"n": "mentions", "estimate": "share"})

    def discovered(self) -> pd.DataFrame:
        """The discovered themes as text columns (keywords and examples joined)."""
        d = self.discovery.themes if self.discovery is not None else pd.DataFrame()
        if d.empty:
            return pd.DataFrame(columns=["theme", "language", "keywords", "docs", "examples"])
        return pd.DataFrame({"theme": d["theme"], "language": d["language"],
                             "keywords": [", ".join(k) for k in d["keywords"]], "docs": d["docs"],
                             "examples": [" | ".join(e) for e in d["examples"]]})

    def codebook_rows(self) -> pd.DataFrame:
        return themes.to_rows(self.codebook)

    def findings(self, n: int = 3) -> list[str]:
        """Sentences for the themes with the most NPS points at stake."""
        t = self.cost.table
        if t.empty or "nps_points_at_stake" not in t:
            return []
        out = []
        for _, r in t.sort_values("nps_points_at_stake", ascending=False).head(n).iterrows():
            if not np.isfinite(r["nps_gap_adjusted"]) or not np.isfinite(r["nps_points_at_stake"]):
                out.append(f"\u201c{r['theme']}\u201d is in {100 * r['estimate']:.1f}% of verbatims (95% CI "
                           f"{100 * r['ci_low']:.1f} to {100 * r['ci_high']:.1f}); no NPS answers to compare.")
                continue
            out.append(f"\u201c{r['theme']}\u201d is in {100 * r['estimate']:.1f}% of verbatims "
                       f"(95% CI {100 * r['ci_low']:.1f} to {100 * r['ci_high']:.1f}); NPS of those who mention it is "
                       f"{r['nps_gap_adjusted']:+.1f} points vs the others after segment adjustment "
                       f"(95% CI {r['nps_gap_adjusted_ci_low']:.1f} to {r['nps_gap_adjusted_ci_high']:.1f}); "
                       f"{r['nps_points_at_stake']:.2f} NPS points at stake (95% CI {r['nps_points_at_stake_ci_low']:.2f} "
                       f"to {r['nps_points_at_stake_ci_high']:.2f}).")
        return out


@store.memoized
def page_data(con: duckdb.DuckDBPyConnection, filters: Filters, *, theme: str | None = None,
              n_themes: int = 12, alpha: float = 0.05) -> VoiceThemes:
    """Everything the themes part of Customer voice shows: the saved codebook (else the discovered
    one), its cost, trend, sentiment and emotion mixes and the drill-down for ``theme``."""
    version, cb = themes.current(con)
    disc = themes.discover(con, filters, n_themes=n_themes)
    if cb:
        source = f"saved codebook v{version}"
    else:
        cb = dict(disc.codebook)
        source = "discovered themes (not saved as a codebook yet)"
    cond, params = themes._where(filters)
    imported = store.scalar(con, f"SELECT count(*) FROM survey_responses r WHERE {cond} AND r.theme IS NOT NULL", params)
    if imported:
        source += f"; {imported:,} verbatims keep their imported theme"
    c = cost(con, filters, cb, alpha=alpha)
    tr = trend(con, filters, cb, alpha=alpha)
    f = feelings(con, filters, alpha=alpha)
    drill = verbatims(con, filters, cb, theme) if theme else pd.DataFrame()
    return VoiceThemes(source, version, cb, disc, c, tr, f["sentiment"], f["emotions"], drill)
