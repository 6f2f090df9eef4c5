"""Executive summary: the CX-to-P&L story on one page."""

import streamlit as st

from cxmetrics.metrics import moved, pnl
from cxmetrics import ui, views
from cxmetrics.charts import churn as churn_charts
from cxmetrics.charts import nps as nps_charts
from cxmetrics.charts import pnl as pnl_charts

st.title("Executive summary")
st.caption("What customer experience does for revenue, churn and cost — every figure with its uncertainty. "
           "Open 'How was this computed?' under any figure to take it apart.")
filters = ui.page_filters()
c1, c2 = st.columns(2)
drop = c1.slider("Scenario: detractor share falls by (points)", 1, 20, 5, key="exec_drop")
to = c2.segmented_control("…and they become", ("passive", "promoter"), default="passive", key="exec_to") or "passive"
data = ui.compute(views.executive.page_data, filters, drop_points=float(drop), to=to)

if data.nps.n == 0:
    ui.empty_state("No survey responses match these filters. Widen the date range or clear the filters.")
    st.stop()

with st.expander("Export the executive update (deck, PDF or HTML)"):
    ui.deck_button(filters, key="exec_deck")

st.subheader("The story in one minute")
for topic, sentence in data.findings():
    st.markdown(f"- **{topic}.** {ui.md_escape(sentence)}")

st.subheader("What moved this period")
moved_result = ui.compute(views.executive.moved_data, filters)
for sentence in moved.describe(moved_result, limit=moved.HEADLINES, rest_where="the table below lists them all"):
    ui.say(sentence, bullet=True)
if len(moved_result.extra.get("sentences") or ()) > moved.HEADLINES:
    with st.expander(f"All {len(moved_result.extra['sentences']):,} changes that moved"):
        ui.table(moved.moved_cells(moved_result), key="exec_moved_all", name="what_moved")
ui.how_computed(moved_result, key="exec_moved_how")

t1, t2, t3, t4 = st.columns(4)
with t1:
    ui.estimate_tile(data.nps)
    ui.how_computed(data.nps, key="exec_nps_how")
with t2:
    if data.hazard.headline:
        ui.estimate_tile(data.hazard.headline[0], fmt="{:.2f}")
        ui.how_computed(data.hazard, key="exec_hazard_how")
with t3:
    ui.estimate_tile(data.promoter_value, fmt="{:,.0f}")
    st.caption(pnl.crude_beside(data.promoter_value))
    ui.how_computed(data.promoter_value, key="exec_value_how")
with t4:
    if data.bridge is not None:
        est, lo, hi = data.bridge.net
        st.metric("Net impact of the scenario (segment-adjusted)", f"{est:,.0f} EUR")
        st.caption(f"95% interval {lo:,.0f} to {hi:,.0f}")
        st.caption(pnl.crude_beside(data.bridge))

st.header("CX-to-P&L bridge")
if data.bridge is None:
    ui.empty_state(data.bridge_error)
else:
    ui.chart(pnl_charts.waterfall(data.bridge), key="exec_bridge",
             caption="Retention, enrichment, advocacy and cost savings of the scenario, minus the programme cost. "
                     "The Finance review page shows every input, assumption and the sensitivity.")
    ui.how_computed(data.bridge, key="exec_bridge_how")

c1, c2 = st.columns(2)
with c1:
    ui.chart(nps_charts.trend(data.nps_trend, "NPS by quarter (95% CI)"), key="exec_trend", caption=data.nps_change_text)
with c2:
    if data.churn_by_nps.table.empty:
        ui.empty_state(" ".join(data.churn_by_nps.warnings) or "No churn by NPS group: it needs contractual customers "
                       "with a relationship NPS answer before the landmark and their churn events (Data page).")
    else:
        ui.chart(churn_charts.rate_bars(data.churn_by_nps, "nps_group", title=f"{data.churn_by_nps.label} (95% CI)"),
                 key="exec_churn")
c3, c4 = st.columns(2)
with c3:
    ui.chart(churn_charts.clv_bars(data.clv), key="exec_clv")
with c4:
    if data.initiatives.summary.empty:
        ui.empty_state("No initiatives registered: add them on the Initiatives & impact page or import initiatives "
                       "on the Data page.")
    else:
        ui.table(data.initiatives.summary[["initiative", "name", "track", "status", "effect", "ci_low", "ci_high", "money"]],
                 key="exec_initiatives", name="initiative_results")
ui.how_computed(data.clv, key="exec_clv_how")
