"""A seeded synthetic company with known ground truth (``python -m cxmetrics demo``).

Everything is drawn from documented generative models so that tests can check that the metrics
recover what was planted. ``TRUTHS`` lists every planted fact; the README's "Planted truths"
table is generated from it.

The company: customers in three segments and four regions, 70% on contracts (monthly invoices,
observable churn) and 30% buying when they like (BG/NBD purchasing, unobserved drop-out). Each
customer has a stable *attitude* (promoter, passive, detractor) that all their relationship-survey
scores reflect; transactional surveys after deliveries, calls and bills add the experience of that
event. Three years of data, ``START`` to ``END``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cxmetrics.core import lazy
from cxmetrics.registers import demo_voice

np = lazy.module("numpy")
pd = lazy.module("pandas")

START = dt.date(2023, 10, 1)
END = dt.date(2026, 9, 30)
DAYS = (END - START).days  # last day index
MONTH = 365.25 / 12

SEGMENTS = ("consumer", "smb", "enterprise")
SEGMENT_P = (0.6, 0.3, 0.1)
REGIONS = ("north", "south", "east", "west")
REGION_P = (0.3, 0.25, 0.25, 0.2)
GROUPS = ("promoter", "passive", "detractor")
#: attitude mix per segment (promoter, passive, detractor)
GROUP_P = {"consumer": (0.35, 0.30, 0.35), "smb": (0.45, 0.30, 0.25), "enterprise": (0.55, 0.30, 0.15)}
#: probability of answering each quarterly relationship wave, per segment (non-response bias)
RESPONSE_P = {"consumer": 0.12, "smb": 0.25, "enterprise": 0.45}
#: monthly churn hazard of a contractual promoter, per segment
BASE_HAZARD = {"consumer": 0.025, "smb": 0.015, "enterprise": 0.008}
HAZARD_RATIO = {"promoter": 1.0, "passive": 1.4, "detractor": 2.0}
ESCALATION_HAZARD_RATIO = 1.5
#: true share of category wallet by attitude
SOW = {"promoter": 0.60, "passive": 0.45, "detractor": 0.30}
WALLET = {"consumer": 1_200.0, "smb": 12_000.0, "enterprise": 120_000.0}
COMPLAINT_RATE = {"promoter": 0.01, "passive": 0.02, "detractor": 0.04}  # per customer-month
ESCALATION_P = 0.30
ESCALATION_P_AFTER = 0.18
PROGRAMME_START = dt.date(2025, 7, 1)
PROGRAMME_REGION = "south"
DELIVERY_THRESHOLD = 3.0
DELIVERY_TARGET = 5.0
DELIVERY_PENALTY = 0.2  # per day beyond the threshold: P(disappointed) = min(1, 0.2·(days − 3))
WAIT_THRESHOLD = 15.0
WAIT_TARGET = 10.0
WAIT_PENALTY = 0.05  # per minute beyond the threshold: P(disappointed) = min(1, 0.05·(wait − 15))
WAIT_MEAN_BEFORE, WAIT_MEAN_AFTER = 8.0, 6.0
STAFFING_START = dt.date(2024, 10, 1)
SELF_SERVICE_BEFORE, SELF_SERVICE_AFTER = 55.0, 65.0
SELF_SERVICE_START = dt.date(2025, 4, 1)
BILLING_REDESIGN_START = dt.date(2025, 1, 1)
BGNBD = {"r": 0.75, "alpha": 5.0, "a": 0.8, "b": 4.0}  # per week
GAMMA_GAMMA = {"p": 6.0, "q": 4.0, "gamma": 20.0}
FOLLOWUP_P = 0.5

ASSUMPTIONS = (
    ("gross_margin", 0.35, "share", "FY2026 management accounts"),
    ("discount_rate", 0.10, "per year", "group WACC"),
    ("horizon_years", 5.0, "years", "finance policy"),
    ("cost_per_complaint", 25.0, "EUR", "contact-centre cost model"),
    ("cost_per_escalation", 120.0, "EUR", "contact-centre cost model"),
    ("referral_rate", 0.15, "referrals per promoter per year", "referral survey 2025"),
    ("referral_conversion", 0.20, "share", "CRM campaign data"),
    ("attribution_share", 0.50, "share", "CX steering committee"),
    ("reconciliation_tolerance", 0.02, "share", "finance close policy"),
)
#: finance's booked revenue matches the store within 0.3% except this month, booked 4% higher
RECONCILIATION_GAP_MONTH = dt.date(2025, 3, 1)
RECONCILIATION_GAP = 0.04


@dataclass(frozen=True)
class Truth:
    key: str
    value: float | str
    description: str


TRUTHS: dict[str, Truth] = {
    t.key: t
    for t in (
        Truth("acquisition_nps", 100 * sum(
            sp * (GROUP_P[s][0] - GROUP_P[s][2]) for s, sp in zip(SEGMENTS, SEGMENT_P, strict=False)),
            "attitude mix of customers at acquisition; the *active* base is more positive because "
            "detractors churn faster: `generate()['truth']` has the realised active-base NPS overall "
            "and per segment, which post-stratified (segment-weighted) NPS recovers while the "
            "unweighted NPS overstates it (enterprise customers answer more)"),
        *(Truth(f"response_rate_{s}", RESPONSE_P[s], f"chance a {s} customer answers a quarterly wave")
          for s in SEGMENTS),
        Truth("hr_detractor", HAZARD_RATIO["detractor"],
              "churn hazard ratio, detractor vs promoter, contractual customers, given segment"),
        Truth("hr_passive", HAZARD_RATIO["passive"], "churn hazard ratio, passive vs promoter, given segment"),
        Truth("hr_escalation", ESCALATION_HAZARD_RATIO,
              "churn hazard multiplies by this after a customer's first escalated complaint"),
        Truth("sow_gap_promoter_detractor", 100 * (SOW["promoter"] - SOW["detractor"]),
              "share-of-wallet points, promoters minus detractors (stated and observed)"),
        Truth("delivery_threshold_days", DELIVERY_THRESHOLD,
              "delivery time beyond which the chance of a detractor rises (logistics target is 5 days: misaligned)"),
        Truth("wait_threshold_minutes", WAIT_THRESHOLD,
              "call wait beyond which the chance of a detractor rises (contact-centre target is 10: aligned)"),
        Truth("invoice_days_effect", 0.0, "invoice issue time has no effect on NPS (no evidence)"),
        Truth("escalation_drop_south", 100 * (ESCALATION_P_AFTER - ESCALATION_P),
              f"escalation-rate points, region {PROGRAMME_REGION}, from {PROGRAMME_START} (INI-001, DiD)"),
        Truth("billing_redesign_effect", 0.0, "effect of INI-002 on billing CSAT in region east (null)"),
        Truth("wait_level_change", WAIT_MEAN_AFTER - WAIT_MEAN_BEFORE,
              f"minutes of mean call wait from {STAFFING_START} (INI-004, interrupted time series)"),
        Truth("self_service_level_change", SELF_SERVICE_AFTER - SELF_SERVICE_BEFORE,
              f"self-service rate points from {SELF_SERVICE_START} (INI-005, interrupted time series)"),
        *(Truth(f"bgnbd_{k}", v, "BG/NBD parameter of non-contractual customers (weeks)")
          for k, v in BGNBD.items()),
        *(Truth(f"gg_{k}", v, "Gamma-Gamma spend parameter") for k, v in GAMMA_GAMMA.items()),
        Truth("followup_effect", 0.0, "following up a detractor has no planted effect on churn"),
        Truth("reconciliation_gap", RECONCILIATION_GAP,
              f"booked revenue exceeds the store's by this share in {RECONCILIATION_GAP_MONTH:%Y-%m} only "
              "(0.3% elsewhere): the one month flagged at a 2% tolerance"),
        Truth("verbatim_share_english", demo_voice.LANGUAGE_P["en"],
              "share of verbatims in English; French 0.15, Dutch 0.15, German 0.10 (`demo_voice`, own random stream)"),
        Truth("verbatim_themes", len(demo_voice.THEMES),
              "planted themes by NPS group and touchpoint (late delivery, billing error, phone wait, price, friendly "
              "staff, easy app), each carrying one Plutchik emotion in every language"),
        Truth("late_delivery_surge", demo_voice.SURGE_P,
              "share of non-promoter verbatims turned to late delivery in the last quarter (what moved)"),
    )
}


def _day(d: dt.date) -> int:
    return (d - START).days


def _dates(days: np.ndarray) -> np.ndarray:
    return np.datetime64(START.isoformat(), "D") + np.floor(days).astype("int64").astype("timedelta64[D]")


def _ids(prefix: str, n: int, width: int = 7) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def _events(rng: np.random.Generator, start: np.ndarray, stop: np.ndarray, rate: np.ndarray):
    """Poisson events per customer on [start, stop) days at ``rate`` per month.

    Returns (owner index, event day) arrays, sorted by owner.
    """
    length = np.clip(stop - start, 0, None)
    counts = rng.poisson(rate * length / MONTH)
    owner = np.repeat(np.arange(len(start)), counts)
    day = start[owner] + rng.random(owner.size) * length[owner]
    return owner, day


def _scores(rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
    """A 0–10 score inside the band of each attitude group (promoter 9–10, passive 7–8, detractor 0–6)."""
    u = rng.random(group.size)
    det = np.searchsorted(np.cumsum([0.03, 0.04, 0.06, 0.08, 0.14, 0.25, 0.40]), u * 1.0)
    det = np.minimum(det, 6)
    return np.select([group == 0, group == 1], [9 + (u < 0.5), 7 + (u < 0.5)], det).astype(np.int64)


def _disappoint(rng: np.random.Generator, base: np.ndarray, excess: np.ndarray) -> np.ndarray:
    """With probability min(1, excess) the event disappoints: the score becomes a detractor's.

    So P(detractor | KPI) is flat up to the threshold and rises linearly from exactly there.
    """
    hit = rng.random(base.size) < np.minimum(1.0, excess)
    return np.where(hit, _scores(rng, np.full(base.size, 2)), base).astype(np.int64)


def _csat(rng: np.random.Generator, score: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(1 + 0.4 * score + rng.normal(0, 0.5, score.size)), 1, 5).astype(np.int64)


VERBATIMS = {
    0: ("Delivery was quick and the driver was friendly.", "Great support, solved in one call.",
        "Best supplier we work with.", "The app makes ordering easy."),
    1: ("Fine overall, a bit pricey.", "Delivery ok, tracking could be better.",
        "Support was helpful but slow to answer.", "Nothing special."),
    2: ("Parcel arrived four days late, again.", "Billing error on my invoice for the third month.",
        "Waited 25 minutes on the phone.", "Promised callback never came.",
        "<b>Terrible</b> service <script>alert('x')</script>", "=HYPERLINK(\"http://x\",\"click\") wrong charge"),
}
COMPLAINT_CATEGORIES = (
    # category, weight, department, root cause, mean days to resolve
    ("late delivery", 30, "logistics", "carrier capacity", 4),
    ("billing error", 18, "billing", "invoice system", 6),
    ("long wait on phone", 12, "contact_centre", "staffing", 2),
    ("damaged item", 9, "logistics", "packaging", 5),
    ("unexpected charge", 7, "billing", "pricing communication", 5),
    ("refund delay", 5, "billing", "refund process", 9),
    ("unhelpful agent", 4, "contact_centre", "training", 3),
    ("app login problem", 3, "digital", "authentication", 2),
    ("wrong item", 3, "logistics", "picking error", 4),
    ("repeat contact", 2, "contact_centre", "first contact resolution", 3),
    ("website error", 2, "digital", "release quality", 3),
    ("contract terms", 2, "sales", "contract wording", 10),
    ("missed appointment", 1, "logistics", "route planning", 4),
    ("data privacy", 1, "digital", "consent handling", 12),
    ("cancellation hassle", 1, "sales", "retention policy", 7),
)
DEPARTMENTS = (
    ("logistics", "Maria Jensen", "Tom Okafor"),
    ("contact_centre", "Ahmed Rahman", "Lisa Moreau"),
    ("billing", "Sophie Laurent", "Jan Kowalski"),
    ("digital", "Priya Nair", "Ben Carter"),
    ("sales", "Carlos Diaz", "Emma Schmidt"),
)
KPIS = (
    ("KPI-LOG-DELIVERY", "logistics", "Delivery time", "days", "lower_is_better", DELIVERY_TARGET, "delivery"),
    ("KPI-CC-WAIT", "contact_centre", "Call wait time", "minutes", "lower_is_better", WAIT_TARGET,
     "contact_centre"),
    ("KPI-BIL-INVOICE", "billing", "Invoice issue time", "days", "lower_is_better", 2.0, "billing"),
    ("KPI-DIG-UPTIME", "digital", "App availability", "%", "higher_is_better", 99.5, None),
    ("KPI-DIG-SELFSERVICE", "digital", "Self-service rate", "%", "higher_is_better", 60.0, None),
)
INITIATIVES = (
    ("INI-001", "Fix the top complaint causes (south)", "result_driven", "contact_centre", "Lisa Moreau",
     PROGRAMME_START, None, 250_000.0, "escalation_rate", f"region={PROGRAMME_REGION}",
     "Root-cause fixes for the 10 most common complaints, piloted in the south region."),
    ("INI-002", "Billing statement redesign", "result_driven", "billing", "Jan Kowalski",
     BILLING_REDESIGN_START, None, 80_000.0, "csat:billing", "region=east",
     "New invoice layout, piloted in the east region."),
    ("INI-003", "Listening architecture", "strategic", "digital", "Ben Carter", dt.date(2024, 1, 15),
     None, 120_000.0, None, "all", "Relationship and transactional surveys on every journey."),
    ("INI-004", "Contact-centre staffing plan", "result_driven", "contact_centre", "Ahmed Rahman",
     STAFFING_START, None, 180_000.0, "kpi:KPI-CC-WAIT", "all", "Peak-hour staffing to cut wait times."),
    ("INI-005", "Self-service fixes", "result_driven", "digital", "Priya Nair", SELF_SERVICE_START, None,
     90_000.0, "kpi:KPI-DIG-SELFSERVICE", "all", "Fix the top app journeys that push customers to call."),
    ("INI-006", "CX ambassador network", "strategic", "sales", "Emma Schmidt", dt.date(2024, 3, 1), None,
     40_000.0, None, "all", "One ambassador in every department, monthly CX forum."),
)


#: initiative costs in INITIATIVES are for a company of this many customers; the demo scales them
INITIATIVE_COST_SCALE = 100_000


def generate(customers: int = 10_000, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Generate every table of the data contract. Deterministic for a given (customers, seed)."""
    rng = np.random.default_rng(seed)
    n = int(customers)
    if n < 1:
        raise ValueError("customers must be at least 1")
    seg = rng.choice(len(SEGMENTS), n, p=SEGMENT_P)
    reg = rng.choice(len(REGIONS), n, p=REGION_P)
    contractual = rng.random(n) < 0.7
    acquired = rng.integers(-365, DAYS - 90, n).astype(float)
    gp = np.array([GROUP_P[s] for s in SEGMENTS])[seg]
    group = (rng.random(n)[:, None] > np.cumsum(gp, axis=1)).sum(axis=1)
    wallet = np.array([WALLET[s] for s in SEGMENTS])[seg] * rng.lognormal(0, 0.35, n)
    sow_true = np.clip(np.array([SOW[g] for g in GROUPS])[group] + rng.normal(0, 0.08, n), 0.02, 0.98)
    south = REGIONS.index(PROGRAMME_REGION)

    # complaints (candidate events over the window; churn truncates them below)
    c_start = np.maximum(acquired, 0)
    c_rate = np.array([COMPLAINT_RATE[g] for g in GROUPS])[group]
    c_owner, c_day = _events(rng, c_start, np.full(n, DAYS + 1.0), c_rate)
    after = (reg[c_owner] == south) & (c_day >= _day(PROGRAMME_START))
    c_esc = rng.random(c_owner.size) < np.where(after, ESCALATION_P_AFTER, ESCALATION_P)

    # churn: exponential with a hazard that multiplies after the first escalated complaint
    h = np.array([BASE_HAZARD[s] for s in SEGMENTS])[seg] * np.array(
        [HAZARD_RATIO[g] for g in GROUPS])[group] / MONTH
    first_esc = np.full(n, np.inf)
    np.minimum.at(first_esc, c_owner[c_esc], c_day[c_esc])
    t0 = acquired + rng.exponential(1 / h)
    t1 = first_esc + rng.exponential(1 / (h * ESCALATION_HAZARD_RATIO))
    churn_day = np.where(t0 > first_esc, t1, t0)
    churn_day = np.where(contractual, churn_day, np.inf)
    churned = churn_day <= DAYS
    active_end = np.minimum(churn_day, DAYS + 1.0)
    keep = c_day < active_end[c_owner]
    c_owner, c_day, c_esc = c_owner[keep], c_day[keep], c_esc[keep]

    cust = pd.DataFrame({
        "customer_id": _ids("C", n),
        "segment": np.array(SEGMENTS)[seg],
        "region": np.array(REGIONS)[reg],
        "acquired_on": _dates(acquired),
        "contract": np.where(contractual, "contractual", "non_contractual"),
        "category_wallet": np.round(wallet, 2),
    })
    ids = cust["customer_id"].to_numpy()

    # relationship survey: quarterly waves
    waves = np.arange(0, DAYS - 30, 91) + 15.0
    resp_p = np.array([RESPONSE_P[s] for s in SEGMENTS])[seg]
    r_owner, r_day = [], []
    for w in waves:
        day = w + rng.integers(0, 30, n)
        ok = (acquired <= w) & (day < active_end) & (rng.random(n) < resp_p)
        r_owner.append(np.flatnonzero(ok))
        r_day.append(day[ok])
    r_owner = np.concatenate(r_owner)
    r_day = np.concatenate(r_day).astype(float)
    # data-dependent truth: the attitude mix of the *active* base at the waves (churn removes
    # detractors faster, so this differs from the mix at acquisition)
    tally = np.zeros((len(SEGMENTS), 3))
    for w in waves:
        act = (acquired <= w) & (active_end > w)
        np.add.at(tally, (seg[act], group[act]), 1)
    realised = {f"active_nps_{s}": float(100 * (tally[i, 0] - tally[i, 2]) / tally[i].sum())
                for i, s in enumerate(SEGMENTS)}
    realised["active_nps"] = float(100 * (tally[:, 0].sum() - tally[:, 2].sum()) / tally.sum())
    r_group = group[r_owner]
    r_score = _scores(rng, r_group)
    m = r_owner.size
    stated = np.clip(np.rint(100 * sow_true[r_owner] + rng.normal(0, 5, m)), 0, 100)
    brands = rng.integers(1, 5, m)
    rank = np.minimum(np.where(r_group == 0, 1, np.where(r_group == 1, 1 + (rng.random(m) < 0.5), 2 +
                      (rng.random(m) < 0.5))), brands)
    rel = pd.DataFrame({
        "customer_idx": r_owner, "day": r_day, "survey": "relationship", "touchpoint": None,
        "department": None, "nps": r_score, "csat": pd.array([None] * m, dtype="Int64"),
        "ces": pd.array([None] * m, dtype="Int64"), "share_of_wallet_pct": stated,
        "brand_rank": rank, "brands_used": brands,
    })

    # transactional surveys, each tied to one KPI observation
    def tx(rate, touchpoint, department):
        owner, day = _events(rng, c_start, active_end, np.full(n, rate))
        return owner, day, _scores(rng, group[owner]), touchpoint, department

    d_owner, d_day, d_base, *_ = tx(0.04, "delivery", "logistics")
    d_days = np.round(np.maximum(rng.gamma(6.0, 0.6, d_owner.size), 0.5), 1)
    d_score = _disappoint(rng, d_base, DELIVERY_PENALTY * np.maximum(0, d_days - DELIVERY_THRESHOLD))
    w_owner, w_day, w_base, *_ = tx(0.03, "contact_centre", "contact_centre")
    wait_mean = np.where(w_day >= _day(STAFFING_START), WAIT_MEAN_AFTER, WAIT_MEAN_BEFORE)
    w_wait = np.round(rng.exponential(wait_mean), 1)
    w_score = _disappoint(rng, w_base, WAIT_PENALTY * np.maximum(0, w_wait - WAIT_THRESHOLD))
    w_ces = np.clip(np.rint(7 - w_wait / 6 + rng.normal(0, 0.7, w_owner.size)), 1, 7).astype(np.int64)
    b_owner, b_day, b_score, *_ = tx(0.02, "billing", "billing")
    b_invoice = np.round(rng.gamma(4.0, 0.55, b_owner.size), 1)

    def tx_frame(owner, day, score, touchpoint, department, ces=None):
        k = owner.size
        return pd.DataFrame({
            "customer_idx": owner, "day": day, "survey": "transactional", "touchpoint": touchpoint,
            "department": department, "nps": score, "csat": _csat(rng, score),
            "ces": pd.array(ces if ces is not None else [None] * k, dtype="Int64"),
            "share_of_wallet_pct": np.nan, "brand_rank": pd.array([None] * k, dtype="Int64"),
            "brands_used": pd.array([None] * k, dtype="Int64"),
        })

    frames = [rel, tx_frame(d_owner, d_day, d_score, "delivery", "logistics"),
              tx_frame(w_owner, w_day, w_score, "contact_centre", "contact_centre", w_ces),
              tx_frame(b_owner, b_day, b_score, "billing", "billing")]
    sizes = [len(f) for f in frames]
    resp = pd.concat(frames, ignore_index=True)
    total = len(resp)
    resp.insert(0, "response_id", _ids("R", total, 8))
    resp["customer_id"] = ids[resp["customer_idx"].to_numpy()]
    resp["responded_on"] = _dates(resp["day"].to_numpy())
    g = group[resp["customer_idx"].to_numpy()]
    pick = rng.integers(0, 4, total)
    det_pick = rng.integers(0, len(VERBATIMS[2]), total)
    has_text = rng.random(total) < 0.35
    verb = np.where(g == 0, np.array(VERBATIMS[0])[pick], np.where(
        g == 1, np.array(VERBATIMS[1])[pick], np.array(VERBATIMS[2])[det_pick]))
    # what the verbatims say comes from their own random stream (demo_voice): themes planted by the
    # response's NPS group and touchpoint, languages, emotions; no theme column (real exports have
    # none); the unsafe-text rows stay
    unsafe = has_text & (g == 2) & (det_pick >= 4)
    said = demo_voice.planted(seed, np.select([resp["nps"] >= 9, resp["nps"] >= 7], [0, 1], 2),
                              resp["touchpoint"].to_numpy(), resp["day"].to_numpy(), has_text & ~unsafe,
                              demo_voice.surge_day(START, END))
    resp["verbatim"] = np.where(unsafe, verb, said["verbatim"])
    resp["theme"] = None
    voice_truth = pd.DataFrame({"response_id": resp["response_id"], "language": said["language"],
                                "theme": said["theme"], "theme2": said["theme2"]})[has_text & ~unsafe]
    resp["weight"] = 1.0
    survey_cols = ["response_id", "customer_id", "responded_on", "survey", "touchpoint", "department", "nps",
                   "csat", "ces", "share_of_wallet_pct", "brand_rank", "brands_used", "verbatim", "theme",
                   "weight"]
    offsets = np.cumsum([0, *sizes])
    rid = resp["response_id"].to_numpy()

    # KPI observations: customer-level (linked to the transactional response) and monthly
    month_starts = np.array([_day(dt.date(START.year + (START.month - 1 + k) // 12,
                                          (START.month - 1 + k) % 12 + 1, 1)) for k in range(36)], float)
    kpi_obs = [
        pd.DataFrame({"kpi_id": "KPI-LOG-DELIVERY", "day": d_day, "value": d_days,
                      "customer_id": ids[d_owner], "response_id": rid[offsets[1]:offsets[2]]}),
        pd.DataFrame({"kpi_id": "KPI-CC-WAIT", "day": w_day, "value": w_wait,
                      "customer_id": ids[w_owner], "response_id": rid[offsets[2]:offsets[3]]}),
        pd.DataFrame({"kpi_id": "KPI-BIL-INVOICE", "day": b_day, "value": b_invoice,
                      "customer_id": ids[b_owner], "response_id": rid[offsets[3]:offsets[4]]}),
        pd.DataFrame({"kpi_id": "KPI-DIG-UPTIME", "day": month_starts,
                      "value": np.round(np.clip(rng.normal(99.6, 0.2, 36), 97, 100), 2),
                      "customer_id": None, "response_id": None}),
        pd.DataFrame({"kpi_id": "KPI-DIG-SELFSERVICE", "day": month_starts,
                      "value": np.round(np.where(month_starts >= _day(SELF_SERVICE_START), SELF_SERVICE_AFTER,
                                                 SELF_SERVICE_BEFORE) + rng.normal(0, 1.0, 36), 1),
                      "customer_id": None, "response_id": None}),
    ]
    obs = pd.concat(kpi_obs, ignore_index=True)
    obs.insert(0, "observation_id", _ids("O", len(obs), 8))
    obs["observed_on"] = _dates(obs.pop("day").to_numpy())
    obs = obs[["observation_id", "kpi_id", "observed_on", "value", "customer_id", "response_id"]]

    # complaints
    k = c_owner.size
    weights = np.array([c[1] for c in COMPLAINT_CATEGORIES], float)
    cat = rng.choice(len(COMPLAINT_CATEGORIES), k, p=weights / weights.sum())
    mean_days = np.array([c[4] for c in COMPLAINT_CATEGORIES], float)[cat] + 5 * c_esc
    close_day = c_day + np.ceil(rng.exponential(mean_days))
    promised = rng.random(k) < 0.6
    dept = np.array([c[2] for c in COMPLAINT_CATEGORIES])[cat]
    done = promised & (rng.random(k) < np.where(dept == "billing", 0.6, 0.88))
    comp = pd.DataFrame({
        "complaint_id": _ids("K", k, 8), "customer_id": ids[c_owner], "opened_on": _dates(c_day),
        "closed_on": pd.Series(_dates(close_day)).where(close_day <= DAYS),
        "category": np.array([c[0] for c in COMPLAINT_CATEGORIES])[cat],
        "channel": rng.choice(["phone", "email", "chat", "app"], k, p=[0.45, 0.25, 0.2, 0.1]),
        "department": dept, "escalated": c_esc, "callback_promised": promised, "callback_done": done,
        "root_cause": np.array([c[3] for c in COMPLAINT_CATEGORIES])[cat],
        "cost": np.round(20 + 80 * c_esc + rng.gamma(2.0, 5.0, k), 2),
    })

    # follow-ups of relationship detractors (closing the loop; no planted effect)
    det = np.flatnonzero((resp["survey"].to_numpy() == "relationship") & (resp["nps"].to_numpy() <= 6))
    det = det[rng.random(det.size) < FOLLOWUP_P]
    fday = resp["day"].to_numpy()[det] + rng.integers(1, 11, det.size)
    ok = fday <= np.minimum(DAYS, active_end[resp["customer_idx"].to_numpy()[det]] - 1)
    det, fday = det[ok], fday[ok]
    fol = pd.DataFrame({
        "followup_id": _ids("F", det.size, 8), "customer_id": resp["customer_id"].to_numpy()[det],
        "response_id": rid[det], "contacted_on": _dates(fday), "channel": "phone",
        "outcome": rng.choice(["resolved", "apologised", "no answer"], det.size, p=[0.5, 0.3, 0.2]),
    })
    resp = resp[survey_cols]

    # transactions: monthly invoices for contracts, BG/NBD purchases otherwise
    ci = np.flatnonzero(contractual)
    first = np.searchsorted(month_starts, np.maximum(acquired[ci], 0))
    last = np.searchsorted(month_starts, active_end[ci])
    cnt = np.clip(last - first, 0, None)
    inv_owner = np.repeat(ci, cnt)
    inv_idx = np.repeat(first, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    inv_amount = wallet[inv_owner] * sow_true[inv_owner] / 12 * rng.lognormal(0, 0.1, inv_owner.size)
    inv_day = month_starts[inv_idx]
    ni = np.flatnonzero(~contractual)
    lam = rng.gamma(BGNBD["r"], 1 / BGNBD["alpha"], ni.size)  # purchases per week
    p_drop = rng.beta(BGNBD["a"], BGNBD["b"], ni.size)
    nu = rng.gamma(GAMMA_GAMMA["q"], 1 / GAMMA_GAMMA["gamma"], ni.size)
    p_owner, p_day = [ni], [acquired[ni]]
    t = acquired[ni].copy()
    alive = np.ones(ni.size, bool)
    while alive.any():
        t = t + rng.exponential(7 / np.maximum(lam, 1e-9))
        alive &= t <= DAYS
        p_owner.append(ni[alive])
        p_day.append(t[alive])
        alive &= rng.random(ni.size) >= p_drop
    p_owner = np.concatenate(p_owner)
    p_day = np.concatenate(p_day)
    nu_of = np.zeros(n)
    nu_of[ni] = nu
    p_amount = rng.gamma(GAMMA_GAMMA["p"], 1 / nu_of[p_owner])
    t_owner = np.concatenate([inv_owner, p_owner])
    t_day = np.concatenate([inv_day, p_day])
    order = np.lexsort((t_day, t_owner))
    trans = pd.DataFrame({
        "transaction_id": _ids("T", t_owner.size, 9),
        "customer_id": ids[t_owner[order]],
        "occurred_on": _dates(t_day[order]),
        "amount": np.round(np.concatenate([inv_amount, p_amount])[order], 2),
    })

    churn_idx = np.flatnonzero(churned)
    esc_before = first_esc[churn_idx] < churn_day[churn_idx]
    churn = pd.DataFrame({
        "customer_id": ids[churn_idx], "churned_on": _dates(churn_day[churn_idx]),
        "reason": np.where(esc_before, "service", rng.choice(["price", "moved", "competitor", "other"],
                                                             churn_idx.size)),
        "voluntary": rng.random(churn_idx.size) < 0.9,
    })
    return {
        "departments": pd.DataFrame(DEPARTMENTS, columns=["department", "leader", "ambassador"]),
        "customers": cust,
        "kpis": pd.DataFrame(KPIS, columns=["kpi_id", "department", "name", "unit", "direction", "target",
                                            "touchpoint"]),
        "assumptions": pd.DataFrame(
            [(k, v, u, s, "demo", END) for k, v, u, s in ASSUMPTIONS],
            columns=["key", "value", "unit", "source", "updated_by", "updated_on"]),
        "initiatives": pd.DataFrame([(*i[:7], round(i[7] * n / INITIATIVE_COST_SCALE, 2), *i[8:]) for i in INITIATIVES],
                                    columns=[
            "initiative_id", "name", "track", "department", "owner", "started_on", "ended_on", "cost",
            "target_metric", "treated_segment", "description"]),
        "transactions": trans,
        "survey_responses": resp,
        "churn_events": churn,
        "complaints": comp,
        "followups": fol,
        "kpi_observations": obs,
        "truth": realised,
        "voice_truth": voice_truth.reset_index(drop=True),  # planted language and theme(s) per verbatim
    }


def truths_markdown() -> str:
    """The README's planted-truths table, generated from ``TRUTHS``."""
    lines = ["| truth | value | what it means |", "| --- | --- | --- |"]
    for t in TRUTHS.values():
        v = f"{t.value:g}" if isinstance(t.value, float) else str(t.value)
        lines.append(f"| `{t.key}` | {v} | {t.description} |")
    return "\n".join(lines)


def build(db=None, customers: int = 10_000, seed: int = 7, actor: str = "demo", progress=None) -> dict[str, int]:
    """Generate the demo company and write it to the store, replacing its contract tables.

    All in one transaction; recorded in ``imports`` (one row per table, source ``demo(...)``).
    ``progress(fraction, message)`` is called along the way when given. Returns row counts.
    """
    from cxmetrics import store
    from cxmetrics.metrics import theme_store
    from cxmetrics.store import assumptions, schema

    say = progress or (lambda f, m: None)
    say(0.05, f"generating {customers:,} customers (seed {seed})")
    frames = generate(customers, seed)
    source = f"demo(customers={customers}, seed={seed})"
    counts = {}
    with store.connect(db, read_only=False) as con:
        with store.transaction(con):
            for name in reversed(schema.LOAD_ORDER):
                con.execute(f'DELETE FROM "{name}"')  # identifiers from the schema allow-list
            for i, name in enumerate(schema.LOAD_ORDER):
                say(0.3 + 0.65 * i / len(schema.LOAD_ORDER), f"writing {name}")
                started = store.now()
                df = frames[name]
                cols = ", ".join(f'"{c}"' for c in schema.TABLES[name].names)
                for c in schema.TABLES[name].names:
                    if c not in df.columns:
                        df[c] = None
                con.register("__demo", df)
                con.execute(f'INSERT INTO "{name}" ({cols}) SELECT {cols} FROM __demo{schema.TABLES[name].stored_order}')
                con.unregister("__demo")
                counts[name] = len(df)
                con.execute(
                    'INSERT INTO imports ("table", source, sha256, rows, started_at, finished_at, status, '
                    "inserted, updated, actor) VALUES (?, ?, NULL, ?, ?, ?, 'accepted', ?, 0, ?)",
                    [name, source, len(df), started, store.now(), len(df), actor])
            assumptions.record_history(con, actor=actor, action="demo")
            con.execute("DELETE FROM booked_revenue")
            con.execute(
                "INSERT INTO booked_revenue SELECT date_trunc('month', occurred_on)::DATE AS m, "
                "round(sum(amount) * (1 + CASE WHEN date_trunc('month', occurred_on)::DATE = $gap_month "
                "THEN $gap ELSE 0.003 END), 2), 'finance (demo)', $at FROM transactions "
                "WHERE occurred_on >= $start GROUP BY m",
                {"gap_month": RECONCILIATION_GAP_MONTH, "gap": RECONCILIATION_GAP, "at": store.now(),
                 "start": START})
            store.bump_version(con)
            store.mark(con, "demo_complete", source)
            store.audit(con, actor=actor, action="demo", object=source, outcome="accepted",
                        detail=str(counts))
        say(0.97, "discovering the verbatims' themes")
        theme_store.keep(con, actor=actor)  # kept at the demo's data version: the page never refits
    say(1.0, "done")
    return counts


def build_atomic(db=None, customers: int = 10_000, seed: int = 7, actor: str = "demo", progress=None) -> dict[str, int]:
    """:func:`build` into a temporary file beside ``db``, renamed into place only when complete.

    Used for the app's first start: a build that is interrupted leaves only the temporary file
    (removed on the next attempt), never a half-built store at ``db``. A stale write-ahead log of
    the file being replaced is removed first so it cannot be replayed onto the new file.
    """
    import os
    from pathlib import Path

    from cxmetrics import store

    target = store.db_path(db)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.building")
    for leftover in (tmp, Path(f"{tmp}.wal")):
        leftover.unlink(missing_ok=True)
    try:
        counts = build(str(tmp), customers=customers, seed=seed, actor=actor, progress=progress)
        Path(f"{target}.wal").unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            leftover.unlink(missing_ok=True)
        store.faults.forget(tmp)
    return counts
