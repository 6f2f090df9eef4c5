"""The sums behind a theme's cost, aggregated in SQL, and the interval arithmetic on them.

Every query here reads two relations a caller defines in a ``WITH`` prefix: ``v`` (the verbatim
responses in the filters: ``response_id, customer_id, responded_on, nps, …``) and ``tagged``
(``response_id, theme``: one row per theme a verbatim carries, never twice the same) — classified on the fly by the
codebook (:func:`cxmetrics.themes.tagged_sql`) or read from the kept assignments
(:mod:`cxmetrics.theme_store`). Only sums leave DuckDB: no verbatim is pulled into pandas.

**NPS of those who mention a theme vs those who do not, customer-clustered.** A customer can answer
many times, and the same customer can be in both groups (one answer mentions the theme, another
does not), so neither group's answers are independent and the two groups are correlated. With y =
promoter − detractor and, per customer c, Y₁c, W₁c the sum of y and the number of NPS answers that
mention the theme and Y₂c, W₂c those that do not, the difference D = R₁ − R₂ (R = ΣY / ΣW) has the
linearised (Taylor) influence u_c = (Y₁c − R₁W₁c)/ΣW₁ − (Y₂c − R₂W₂c)/ΣW₂ and the cluster-robust
variance m/(m−1)·Σ_c u_c² (Wolter 2007 §6.4; CR1). Σ_c u_c² needs only the cluster sums ΣY₁², ΣY₁W₁,
ΣW₁², the customer totals' ΣYₜ², ΣYₜWₜ, ΣWₜ² and the cross sums ΣY₁Yₜ, ΣY₁Wₜ, ΣW₁Yₜ, ΣW₁Wₜ
(Y₂ = Yₜ − Y₁, W₂ = Wₜ − W₁), which one GROUP BY returns.

**Adjusted** as money is (DESIGN.md, "Money is segment-adjusted"): within strata of segment × tenure
band (tenure at the customer's first verbatim in the selection), standardised to the mix of all NPS
answers with a verbatim, D_adj = Σ_s w_s D_s with variance Σ_s w_s² V_s (customers nest in strata,
so strata are independent). Strata where either group is empty are left out; when the strata kept
hold less than 95% of the answers, segment alone is used (as :func:`cxmetrics.clv.standardise`).

**12-month churn** of customers who raised the theme vs those who did not (each customer once:
binomial variances; raised and not raised are disjoint sets of customers), crude and adjusted the
same way, tenure taken at the customer's first verbatim.
"""

from __future__ import annotations

import math

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy
from cxmetrics.core.filters import Filters
from cxmetrics.core.stats import wilson
from cxmetrics.metrics import nps
from cxmetrics.metrics.clustered import Clusters
from cxmetrics.store import stubs

pd = lazy.module("pandas")
np = lazy.module("numpy")

CHURN_DAYS = 365
STRATA = ("segment", "tenure")
COVER = 0.95

_Y = "CASE WHEN v.nps >= 9 THEN 1 WHEN v.nps <= 6 THEN -1 ELSE 0 END"
_TENURE = """CASE WHEN c.acquired_on IS NULL THEN 'unknown'
                  WHEN date_diff('month', c.acquired_on, {first}) < 12 THEN '0-11m'
                  WHEN date_diff('month', c.acquired_on, {first}) < 24 THEN '12-23m' ELSE '24m+' END"""

#: The stratum's segment: stub customers (ids not in the customers file) are a segment of their own.
_SEGMENT = stubs.segment_stratum("c.segment", "c.customer_id")

#: Per (theme, segment, tenure): the mention group's counts and cluster sums; theme NULL rows hold
#: the stratum's totals over every customer with an NPS answer with a verbatim.
NPS_SQL = f"""
, cu AS (SELECT v.customer_id, {_SEGMENT} AS segment, {_TENURE.format(first="min(v.responded_on)")} AS tenure,
                count(v.nps) AS wt, sum({_Y}) AS yt, count(*) FILTER (WHERE v.nps >= 9) AS pt,
                count(*) FILTER (WHERE v.nps <= 6) AS dt
         FROM v JOIN customers c ON c.customer_id = v.customer_id WHERE v.nps IS NOT NULL GROUP BY v.customer_id, c.customer_id, c.segment, c.acquired_on),
pt AS (SELECT t.theme, v.customer_id, count(*) AS w1, sum({_Y}) AS y1,
              count(*) FILTER (WHERE v.nps >= 9) AS p1, count(*) FILTER (WHERE v.nps <= 6) AS d1
       FROM tagged t JOIN v USING (response_id)
       WHERE v.nps IS NOT NULL GROUP BY ALL)
SELECT pt.theme, cu.segment, cu.tenure, count(*) AS m, max(pt.w1) AS max_k, count(*) FILTER (WHERE pt.w1 = cu.wt) AS m_all,
       sum(pt.w1) AS w, sum(pt.y1) AS y, sum(pt.p1) AS p, sum(pt.d1) AS d,
       sum(pt.y1 * pt.y1) AS yy, sum(pt.y1 * pt.w1) AS yw, sum(pt.w1 * pt.w1) AS ww,
       sum(pt.y1 * cu.yt) AS y_yt, sum(pt.y1 * cu.wt) AS y_wt, sum(pt.w1 * cu.yt) AS w_yt, sum(pt.w1 * cu.wt) AS w_wt
FROM pt JOIN cu USING (customer_id) GROUP BY ALL
UNION ALL
SELECT NULL, segment, tenure, count(*), max(wt), 0, sum(wt), sum(yt), sum(pt), sum(dt),
       sum(yt * yt), sum(yt * wt), sum(wt * wt), sum(yt * yt), sum(yt * wt), sum(wt * yt), sum(wt * wt)
FROM cu GROUP BY ALL"""

MENTIONS_SQL = """
SELECT (SELECT count(*) FROM v) AS verbatims, theme, count(*) AS mentions,
       count(*) FILTER (WHERE v.nps >= 9) AS promoters, count(*) FILTER (WHERE v.nps BETWEEN 7 AND 8) AS passives,
       count(*) FILTER (WHERE v.nps <= 6) AS detractors
FROM tagged JOIN v USING (response_id) GROUP BY theme"""

TREND_SQL = """
, months AS (SELECT date_trunc('month', responded_on)::DATE AS month, count(*) AS verbatims FROM v GROUP BY 1)
SELECT m.month, x.theme, coalesce(x.mentions, 0) AS mentions, m.verbatims
FROM months m JOIN (SELECT date_trunc('month', v.responded_on)::DATE AS month, t.theme, count(*) AS mentions
                    FROM tagged t JOIN v USING (response_id) GROUP BY ALL) x USING (month)
ORDER BY m.month, x.theme"""

CHURN_SQL = f"""
, ends AS (SELECT max(responded_on) AS last_day FROM survey_responses),
first AS (SELECT customer_id, min(responded_on) AS t0 FROM v WHERE customer_id IS NOT NULL GROUP BY 1
          HAVING min(responded_on) <= (SELECT last_day FROM ends) - $days::INTEGER),
outcome AS (SELECT f.customer_id, {_SEGMENT} AS segment, {_TENURE.format(first="f.t0")} AS tenure,
                   coalesce(bool_or(ch.churned_on > f.t0 AND ch.churned_on <= f.t0 + $days::INTEGER), FALSE) AS churned
            FROM first f JOIN customers c USING (customer_id) LEFT JOIN churn_events ch USING (customer_id)
            GROUP BY ALL),
raised AS (SELECT DISTINCT v.customer_id, t.theme FROM tagged t JOIN v USING (response_id)
           JOIN first f USING (customer_id) WHERE v.responded_on <= (SELECT last_day FROM ends) - $days::INTEGER)
SELECT r.theme, o.segment, o.tenure, count(*) AS n, count(*) FILTER (WHERE o.churned) AS k
FROM raised r JOIN outcome o USING (customer_id) GROUP BY ALL
UNION ALL SELECT NULL, segment, tenure, count(*), count(*) FILTER (WHERE churned) FROM outcome GROUP BY ALL"""


def aggregate(con: duckdb.DuckDBPyConnection, prefix: str, params: dict, filters: Filters) -> dict[str, pd.DataFrame]:
    """The frames ``nps``, ``mentions``, ``trend``, ``churn`` for the ``v``/``tagged`` prefix, and
    ``n_all`` (every NPS answer in ``filters``, with or without a verbatim: the points-at-stake base)."""
    where, wparams = filters.where(date_col="r.responded_on", customer_id_col="r.customer_id",
                                   department_col="r.department")
    out = {"n_all": store.run(con, store.Query("theme_nps_all", f"SELECT count(nps) AS n FROM survey_responses r "
                                                                f"WHERE {where}", wparams))}
    stub = {"stub_stratum": stubs.STUB_STRATUM}
    for name, sql, extra in (("nps", NPS_SQL, stub), ("mentions", MENTIONS_SQL, {}), ("trend", TREND_SQL, {}),
                             ("churn", CHURN_SQL, {"days": CHURN_DAYS, **stub})):
        out[name] = store.run(con, store.Query(f"theme_{name}", prefix + sql,
                                               {**params, **extra}))
    return out


# --------------------------------------------------------------------------- interval arithmetic

_SUMS = ["m", "m_all", "w", "y", "p", "d", "yy", "yw", "ww", "y_yt", "y_wt", "w_yt", "w_wt"]


def gap_var(x: pd.DataFrame) -> pd.DataFrame:
    """Per row (a theme in a stratum, its sums beside the stratum's totals ``*_t``): R₁, R₂ and
    Var(R₁ − R₂) = m/(m−1)·Σ_c u_c² (module docstring), NaN where a group is empty or m < 2."""
    w1, w2, m = x["w"], x["w_t"] - x["w"], x["m_t"]
    ok = (w1 > 0) & (w2 > 0) & (m >= 2)
    w1, w2 = w1.where(ok), w2.where(ok)
    y1, y2 = x["y"], x["y_t"] - x["y"]
    r1, r2 = y1 / w1, y2 / w2
    yy1, yw1, ww1 = x["yy"], x["yw"], x["ww"]
    yy2 = x["yy_t"] - 2 * x["y_yt"] + yy1
    yw2 = x["yw_t"] - x["w_yt"] - x["y_wt"] + yw1
    ww2 = x["ww_t"] - 2 * x["w_wt"] + ww1
    y1y2, y1w2, w1y2, w1w2 = x["y_yt"] - yy1, x["y_wt"] - yw1, x["w_yt"] - yw1, x["w_wt"] - ww1
    a = (yy1 - 2 * r1 * yw1 + r1 * r1 * ww1) / (w1 * w1)
    b = (yy2 - 2 * r2 * yw2 + r2 * r2 * ww2) / (w2 * w2)
    c = (y1y2 - r2 * y1w2 - r1 * w1y2 + r1 * r2 * w1w2) / (w1 * w2)
    var = (m / (m - 1)).where(ok) * np.maximum(a + b - 2 * c, 0.0)
    return pd.DataFrame({"r1": r1, "r2": r2, "var": var}, index=x.index)


def _joined(sums: pd.DataFrame, strata: list[str]) -> pd.DataFrame:
    """Each theme's sums per stratum (``strata`` empty: over all) beside the stratum's totals."""
    s = sums.copy()
    s[_SUMS] = s[_SUMS].astype(float)
    tot_rows, mine_rows = s[s["theme"].isna()], s[s["theme"].notna()]
    if strata:
        tot = tot_rows.groupby(strata)[_SUMS].sum()
        mine = mine_rows.groupby(["theme", *strata])[_SUMS].sum().reset_index()
        return mine.merge(tot.add_suffix("_t"), left_on=strata, right_index=True, how="left")
    tot = tot_rows[_SUMS].sum()
    mine = mine_rows.groupby("theme")[_SUMS].sum().reset_index()
    for k in _SUMS:
        mine[f"{k}_t"] = tot[k]
    return mine


def standardised(sums: pd.DataFrame) -> pd.DataFrame:
    """Per theme: D_adj = Σ_s w_s D_s and its SE √Σ_s w_s² V_s in NPS points, w_s the stratum's
    share of the NPS answers among the strata where both groups are present, and the strata used:
    segment × tenure band, or segment alone for a theme whose kept strata cover under :data:`COVER`."""
    out = []
    for k in range(len(STRATA), 0, -1):
        st = list(STRATA[:k])
        j = _joined(sums, st)
        if j.empty:
            continue
        g = gap_var(j)
        j["wt"] = j["w_t"].where(g["var"].notna(), 0.0)
        j["d"] = (g["r1"] - g["r2"]).fillna(0.0)
        j["v"] = g["var"].fillna(0.0)
        total = sums[sums["theme"].isna()]["w"].astype(float).sum()
        per = j.groupby("theme").agg(kept=("wt", "sum"))
        j = j.join(per, on="theme")
        share = j["wt"] / j["kept"].where(j["kept"] > 0)
        j["wd"], j["wv"] = share * j["d"], share * share * j["v"]
        r = j.groupby("theme").agg(adj=("wd", "sum"), v=("wv", "sum"), kept=("kept", "first"))
        r["covered"] = r["kept"] / total if total else 0.0
        r["by"] = " × ".join(st)
        r = r[r["kept"] > 0]
        out.append(r if k == 1 else r[r["covered"] >= COVER])
    if not out:
        return pd.DataFrame(columns=["adj", "se", "by"])
    r = pd.concat(out)
    r = r[~r.index.duplicated(keep="first")]
    return pd.DataFrame({"adj": 100 * r["adj"], "se": 100 * np.sqrt(r["v"]), "by": r["by"]})


def nps_table(sums: pd.DataFrame, *, alpha: float = 0.05, min_n: int = 30) -> pd.DataFrame:
    """Per theme: NPS of the answers that mention it and of the others (customer-clustered
    intervals, :func:`cxmetrics.nps.nps_estimate`), the crude difference and the adjusted one,
    each with its customer-clustered interval and the crude difference's p-value."""
    cols = ["nps_mention", "nps_mention_ci_low", "nps_mention_ci_high", "nps_other", "nps_other_ci_low",
            "nps_other_ci_high", "nps_gap", "nps_gap_ci_low", "nps_gap_ci_high", "nps_gap_p", "nps_gap_adjusted",
            "nps_gap_adjusted_ci_low", "nps_gap_adjusted_ci_high", "nps_adjusted_by"]
    if sums.empty or sums["theme"].notna().sum() == 0:
        return pd.DataFrame(columns=cols)
    z = nps._z(alpha)
    j = _joined(sums, [])
    g = gap_var(j)
    gap, se = (100 * (g["r1"] - g["r2"])).to_numpy(), (100 * np.sqrt(g["var"])).to_numpy()
    out = pd.DataFrame({"nps_gap": gap, "nps_gap_ci_low": gap - z * se, "nps_gap_ci_high": gap + z * se,
                        "nps_gap_p": [math.erfc(abs(a) / b / math.sqrt(2)) if b > 0 else float("nan")
                                      for a, b in zip(gap, se, strict=True)]}, index=j["theme"].to_numpy())
    est = {c: [] for c in cols[:6]}
    for r in j.itertuples(index=False):
        groups = (("nps_mention", r.w, r.p, r.d, Clusters(int(r.m), 2, r.yy, r.yw, r.ww)),
                  ("nps_other", r.w_t - r.w, r.p_t - r.p, r.d_t - r.d,
                   Clusters(int(r.m_t - r.m_all), 2, r.yy_t - 2 * r.y_yt + r.yy, r.yw_t - r.w_yt - r.y_wt + r.yw,
                            r.ww_t - 2 * r.w_wt + r.ww)))
        for key, n, p, d, cl in groups:
            e = nps.nps_estimate(int(n), float(p), float(d), clusters=cl if cl.m > 1 else None, alpha=alpha,
                                 min_n=min_n) if n > 0 else None
            est[key].append(e.estimate if e else float("nan"))
            est[f"{key}_ci_low"].append(e.ci_low if e else float("nan"))
            est[f"{key}_ci_high"].append(e.ci_high if e else float("nan"))
    for c, v in est.items():
        out[c] = v
    adj = standardised(sums).reindex(out.index)
    out["nps_gap_adjusted"] = adj["adj"]
    out["nps_gap_adjusted_ci_low"] = adj["adj"] - z * adj["se"]
    out["nps_gap_adjusted_ci_high"] = adj["adj"] + z * adj["se"]
    out["nps_adjusted_by"] = adj["by"].fillna("")
    return out[cols]


def churn_table(churn: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Per theme: 12-month churn of customers who raised it vs not, the crude difference and the
    adjusted one (strata as :func:`standardised`, weights the customers' mix), binomial intervals
    (raised and not raised are disjoint sets of customers)."""
    cols = ["churn_raised", "churn_other", "churn_customers_raised", "churn_gap", "churn_gap_ci_low",
            "churn_gap_ci_high", "churn_gap_adjusted", "churn_gap_adjusted_ci_low", "churn_gap_adjusted_ci_high",
            "churn_adjusted_by"]
    if churn.empty or churn["theme"].notna().sum() == 0:
        return pd.DataFrame(columns=cols)
    z = nps._z(alpha)
    c = churn.copy()
    c[["n", "k"]] = c[["n", "k"]].astype(float)

    def cells(st):
        tot_rows, mine_rows = c[c["theme"].isna()], c[c["theme"].notna()]
        if st:
            tot = tot_rows.groupby(st)[["n", "k"]].sum()
            j = mine_rows.groupby(["theme", *st])[["n", "k"]].sum().reset_index().merge(
                tot.add_suffix("_t"), left_on=st, right_index=True, how="left")
        else:
            j = mine_rows.groupby("theme")[["n", "k"]].sum().reset_index()
            j["n_t"], j["k_t"] = tot_rows["n"].sum(), tot_rows["k"].sum()
        n1, n0 = j["n"], j["n_t"] - j["n"]
        ok = (n1 > 0) & (n0 > 0)
        r1, r0 = j["k"] / n1.where(ok), (j["k_t"] - j["k"]) / n0.where(ok)
        j["r1"], j["r0"] = j["k"] / n1.where(n1 > 0), (j["k_t"] - j["k"]) / n0.where(n0 > 0)
        j["d"], j["v"] = r1 - r0, r1 * (1 - r1) / n1 + r0 * (1 - r0) / n0
        return j

    j = cells([]).set_index("theme")
    se = np.sqrt(j["v"])
    out = pd.DataFrame({"churn_raised": j["r1"], "churn_other": j["r0"], "churn_customers_raised": j["n"].astype(int),
                        "churn_gap": j["d"], "churn_gap_ci_low": j["d"] - z * se, "churn_gap_ci_high": j["d"] + z * se})
    found = []
    for k in range(len(STRATA), 0, -1):
        st = list(STRATA[:k])
        j = cells(st)
        j["wt"] = j["n_t"].where(j["d"].notna(), 0.0)
        total = c[c["theme"].isna()]["n"].sum()
        j = j.join(j.groupby("theme")["wt"].sum().rename("kept"), on="theme")
        share = j["wt"] / j["kept"].where(j["kept"] > 0)
        j["wd"], j["wv"] = share * j["d"].fillna(0.0), share * share * j["v"].fillna(0.0)
        r = j.groupby("theme").agg(adj=("wd", "sum"), v=("wv", "sum"), kept=("kept", "first"))
        r["by"] = " × ".join(st)
        r = r[r["kept"] > 0]
        found.append(r if k == 1 else r[r["kept"] / total >= COVER] if total else r.iloc[0:0])
    r = pd.concat(found)
    r = r[~r.index.duplicated(keep="first")].reindex(out.index)
    se = np.sqrt(r["v"])
    out["churn_gap_adjusted"] = r["adj"]
    out["churn_gap_adjusted_ci_low"] = r["adj"] - z * se
    out["churn_gap_adjusted_ci_high"] = r["adj"] + z * se
    out["churn_adjusted_by"] = r["by"].fillna("")
    return out[cols]


def _wilson(k, n, alpha: float):
    """Wilson intervals for arrays of counts (NaN where n is 0)."""
    k, n = np.asarray(k, dtype=float), np.broadcast_to(np.asarray(n, dtype=float), np.shape(k))
    if k.size == 0:
        return np.array([]), np.array([])
    return wilson(np.minimum(k, n), n, alpha)


def _wilson_cols(df: pd.DataFrame, k: str, n: str, prefix: str, alpha: float, scale: float = 1.0) -> None:
    lo, hi = _wilson(df[k].to_numpy(), df[n].to_numpy(), alpha)
    df[f"{prefix}_ci_low"], df[f"{prefix}_ci_high"] = scale * lo, scale * hi


def verbatims(frames: dict) -> int:
    m = frames.get("mentions")
    return int(m["verbatims"].iloc[0]) if m is not None and len(m) else 0


def n_all(frames: dict) -> int:
    n = frames.get("n_all")
    return int(n["n"].iloc[0]) if n is not None and len(n) else 0


def cost_table(frames: dict[str, pd.DataFrame], cb, *, min_n: int = 30, alpha: float = 0.05) -> pd.DataFrame:
    """One row per theme (the codebook's and any imported one): share of verbatims (Wilson), NPS
    with vs without (:func:`nps_table`), NPS points at stake (Wilson) and churn (:func:`churn_table`)."""
    mentions, sums, churn = frames["mentions"], frames["nps"], frames["churn"]
    total_v = verbatims(frames)
    n_total = n_all(frames)
    names = list(dict.fromkeys([*cb, *mentions["theme"].dropna()])) if total_v else []  # imported themes too
    out = pd.DataFrame({"theme": names})
    k = out["theme"].map(mentions.set_index("theme")["mentions"] if len(mentions) else {}).fillna(0).astype(int)
    d_theme = out["theme"].map(sums[sums["theme"].notna()].groupby("theme")["d"].sum() if len(sums) else {}).fillna(0.0)
    out["estimate"] = k / total_v if total_v else float("nan")
    out["ci_low"], out["ci_high"] = _wilson(k, total_v, alpha)
    out["n"], out["verbatims"], out["nps_answers"] = k, total_v, n_total
    out = out.join(nps_table(sums, alpha=alpha, min_n=min_n), on="theme")
    out["nps_points_at_stake"] = 100 * d_theme / n_total if n_total else float("nan")
    lo, hi = _wilson(d_theme, n_total, alpha)
    out["nps_points_at_stake_ci_low"], out["nps_points_at_stake_ci_high"] = 100 * lo, 100 * hi
    out = out.join(churn_table(churn, alpha=alpha), on="theme")
    out["churn_customers_raised"] = out["churn_customers_raised"].fillna(0).astype(int)
    out["small_sample"] = k < min_n
    if not out.empty:
        out = out.sort_values(["n", "theme"], ascending=[False, True]).reset_index(drop=True)
    return out


def trend_table(df: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Monthly mentions and verbatims with the share and its Wilson interval."""
    df = df.copy()
    df["share"] = df["mentions"] / df["verbatims"]
    _wilson_cols(df, "mentions", "verbatims", "share", alpha)
    return df


def feelings_tables(counts: dict[str, pd.DataFrame], alpha: float = 0.05) -> dict[str, pd.DataFrame]:
    """Shares with Wilson intervals from the annotation counts of :func:`cxmetrics.theme_store.feelings`:
    ``sentiment`` by language (share of each label, mean score, method) and ``emotions`` by
    touchpoint and by NPS group (share of sampled verbatims with a word of each emotion)."""
    sent, emo = counts.get("sentiment", pd.DataFrame()), counts.get("emotions", pd.DataFrame())
    if sent.empty:
        return {"sentiment": pd.DataFrame(), "emotions": pd.DataFrame()}
    sent = sent.copy()
    sent["n"] = sent.groupby("language")["k"].transform("sum")
    sent["share"] = sent["k"] / sent["n"]
    _wilson_cols(sent, "k", "n", "share", alpha)
    g = sent.groupby("language")[["sentiment_sum", "sentiment_n"]].sum()
    sent["mean_sentiment"] = sent["language"].map(g["sentiment_sum"] / g["sentiment_n"].where(g["sentiment_n"] > 0))
    sent = sent.drop(columns=["sentiment_sum", "sentiment_n"])
    emo = emo.copy()
    emo["share"] = emo["k"] / emo["n"]
    _wilson_cols(emo, "k", "n", "share", alpha)
    return {"sentiment": sent, "emotions": emo}


def stub_customers(frames: dict[str, pd.DataFrame]) -> int:
    """How many stub customers the NPS comparison includes (their own stratum)."""
    n = frames.get("nps")
    if n is None or n.empty:
        return 0
    t = n[n["theme"].isna() & (n["segment"] == stubs.STUB_STRATUM)]
    return int(t["m"].sum())
