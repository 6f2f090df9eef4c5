"""Customer value: what a promoter is worth, and share of wallet."""

import streamlit as st

from cxmetrics.metrics import clv, pnl
from cxmetrics import ui, views
from cxmetrics.charts import churn as charts

st.title("Customer value")
filters = ui.page_filters()
moved = st.number_input("Customers to move from detractor to promoter", min_value=1, max_value=10_000_000,
                        value=1000, step=100, key="value_moved")
data = ui.compute(views.value.page_data, filters, moved=int(moved))

if data.clv.table.empty:
    ui.empty_state(data.clv.warnings[0] if data.clv.warnings else
                   "No contractual customers with survey answers in this selection.")
    st.stop()
c1, c2 = st.columns(2)
with c1:
    ui.estimate_tile(data.promoter_value, fmt="{:,.0f}")
    st.caption(pnl.crude_beside(data.promoter_value))
with c2:
    ui.say(clv.describe(data.clv, data.promoter_value), bold=True)
ui.chart(charts.clv_bars(data.clv), key="value_clv")
ui.table(data.clv.table, key="value_clv_table", name="clv_by_group")
ui.how_computed(data.clv, key="value_clv_how")
with st.expander("CLV by NPS group and segment"):
    ui.table(data.clv_by_segment.table, key="value_clv_seg", name="clv_by_group_segment")

st.header("Share of wallet")
gap = data.wallet.headline[0] if data.wallet.headline else None
if gap is not None:
    st.markdown(f"**Promoters give us {gap.estimate:.1f} more points of their category spend than detractors "
                f"({gap.ci_text()}); each NPS point is worth {data.wallet_relation.estimate:.2f} points of share of "
                f"wallet ({data.wallet_relation.ci_text('{:.2f}')}).**")
ui.chart(charts.wallet_bars(data.wallet), key="value_wallet")
ui.table(data.wallet.table, key="value_wallet_table", name="share_of_wallet")
ui.how_computed(data.wallet, key="value_wallet_how")

st.header("Customers without contracts (BG/NBD)")
b = data.btyd
if b.table.empty:
    ui.empty_state(b.warnings[0] if b.warnings else "No non-contractual customers.")
else:
    s = b.extra["summary"]
    st.markdown(f"{s['customers']:,} customers buy without a contract. On average each is {s['mean_p_alive']:.0%} "
                f"likely to still be active and worth {s['mean_clv']:,.0f} in margin over the next year.")
    cols = st.columns(len(b.headline) or 1)
    for col, e in zip(cols, b.headline, strict=False):
        with col:
            ui.estimate_tile(e, fmt="{:,.2f}")
    ui.table(b.extra["bgnbd_params"], key="value_btyd_bgnbd", name="bgnbd_parameters")
    ui.table(b.extra["gamma_gamma_params"], key="value_btyd_gg", name="gamma_gamma_parameters")
    ui.how_computed(b, key="value_btyd_how")
