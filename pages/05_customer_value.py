"""Customer value: what a promoter is worth, and share of wallet."""

import streamlit as st

from cxmetrics.metrics import btyd, clv, pnl, wallet
from cxmetrics import ui, views
from cxmetrics.charts import churn as charts
from cxmetrics.charts import value as vcharts

st.title("Customer value")
filters = ui.page_filters()
moved = st.number_input("Customers to move from detractor to promoter", min_value=1, max_value=10_000_000,
                        value=1000, step=100, key="value_moved")
data = ui.compute(views.value.page_data, filters, moved=int(moved))

st.header("Customers with contracts")
if data.clv.table.empty:
    ui.empty_state(data.clv.warnings[0] if data.clv.warnings else
                   "No contractual customers with survey answers in this selection.")
else:
    c1, c2 = st.columns(2)
    with c1:
        ui.estimate_tile(data.promoter_value, fmt="{:,.0f}")
        st.caption(pnl.crude_beside(data.promoter_value))
        ui.how_computed(data.promoter_value, key="value_promoter_how")
    with c2:
        ui.say(clv.describe(data.clv, data.promoter_value), bold=True)
    ui.chart(charts.clv_bars(data.clv), key="value_clv")
    ui.table(data.clv.table, key="value_clv_table", name="clv_by_group")
    ui.how_computed(data.clv, key="value_clv_how")
    with st.expander("CLV by NPS group and segment"):
        ui.table(data.clv_by_segment.table, key="value_clv_seg", name="clv_by_group_segment")

st.header("Share of wallet")
if not wallet.measured(data.wallet):
    ui.empty_state("No share-of-wallet answers, brand ranks or category wallets in this selection: import survey "
                   "responses with share_of_wallet_pct (or customers with category_wallet) on the Data page.")
else:
    gap = data.wallet.headline[0] if data.wallet.headline else None
    rel = data.wallet_relation
    if gap is not None and gap.estimate == gap.estimate and rel.estimate == rel.estimate:
        st.markdown(f"**Promoters give us {gap.estimate:.1f} more points of their category spend than detractors "
                    f"({gap.ci_text()}); each NPS point is worth {data.wallet_relation.estimate:.2f} points of share "
                    f"of wallet ({data.wallet_relation.ci_text('{:.2f}')}).**")
    ui.chart(charts.wallet_bars(data.wallet), key="value_wallet")
    ui.table(data.wallet.table, key="value_wallet_table", name="share_of_wallet")
    ui.how_computed(data.wallet, key="value_wallet_how")

st.header("Customers without contracts (BG/NBD + Gamma-Gamma)")
b = data.btyd
if btyd.WHOLE_HISTORY in b.warnings:
    st.caption(btyd.WHOLE_HISTORY)
hold = b.extra.get("holdout")
if b.table.empty:
    ui.empty_state(b.warnings[0] if b.warnings else "No non-contractual customers.")
    if b.extra.get("not_identified"):
        ui.how_computed(b, key="value_btyd_how")
else:
    s = b.extra["summary"]
    worth = (f" and is worth {s['mean_clv']:,.0f} in margin over them" if s.get("mean_clv") is not None else "")
    ui.say(f"{s['customers']:,} customers buy without a contract (reference date {s['calibration_end']}, the last "
           f"transaction in the data). On average each is {s['mean_p_alive']:.0%} likely to still be active and is "
           f"expected to buy {s['mean_expected_purchases']:.1f} times in the next {s['horizon_weeks']:.0f} "
           f"weeks{worth}.", bold=True)
    if b.extra["not_identified"]["gamma_gamma"]:
        ui.empty_state(b.warnings[0])
    cols = st.columns(len(b.headline) or 1)
    for col, e in zip(cols, b.headline, strict=False):
        with col:
            ui.estimate_tile(e, fmt="{:,.2f}")
    d = b.extra["distributions"]
    c1, c2 = st.columns(2)
    with c1:
        ui.chart(vcharts.distribution(d["p_alive"], title="P(alive) across customers", x_title="P(alive)",
                                      fmt="{:.2f}"), key="value_btyd_palive")
    with c2:
        ui.chart(vcharts.distribution(d["expected_purchases"], x_title="expected purchases",
                                      title=f"Expected purchases in the next {s['horizon_weeks']:.0f} weeks"),
                 key="value_btyd_purchases")
    if "clv" in d:
        ui.chart(vcharts.distribution(d["clv"], x_title="CLV", fmt="{:,.0f}",
                                      title=f"CLV across customers (margin, next {s['horizon_weeks']:.0f} weeks)"),
                 key="value_btyd_clv")
    ui.table(b.extra["bgnbd_params"], key="value_btyd_bgnbd", name="bgnbd_parameters")
    if "gamma_gamma_params" in b.extra:
        ui.table(b.extra["gamma_gamma_params"], key="value_btyd_gg", name="gamma_gamma_parameters")
    ui.how_computed(b, key="value_btyd_how")
if hold is not None:
    st.subheader("Calibration / holdout check")
    if hold.table.empty:
        ui.empty_state(hold.warnings[0] if hold.warnings else "No holdout check for this selection.")
    else:
        ui.say(f"Fitted on the {hold.extra['stated']}: {hold.extra['predicted_total']:,.0f} repeat purchases "
               f"predicted in the holdout against {hold.extra['actual_total']:,.0f} actual.")
        ui.chart(vcharts.holdout(hold), key="value_btyd_holdout")
        ui.table(hold.table.drop(columns="x"), key="value_btyd_holdout_table", name="btyd_holdout")
        ui.how_computed(hold, key="value_btyd_holdout_how")
