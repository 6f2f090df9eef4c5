"""NPS & drivers: the score with its uncertainty, where it moves, who answered, what drives it."""

import streamlit as st

from cxmetrics.metrics import drivers, nps
from cxmetrics import ui, views
from cxmetrics.charts import nps as charts

st.title("NPS & drivers")
filters = ui.page_filters()
c1, c2 = st.columns(2)
period = c1.segmented_control("Period", nps.PERIODS, default="quarter", key="nps_period") or "quarter"
survey = c2.segmented_control("Survey", ("relationship", "transactional"), default="relationship",
                              key="nps_survey") or "relationship"
data = ui.compute(views.nps_page.page_data, filters, period=period, survey=survey)

if data.overall.n == 0:
    ui.empty_state("No survey responses match these filters. Widen the date range or clear the segment filter.")
    st.stop()
t1, t2, t3 = st.columns(3)
with t1:
    ui.estimate_tile(data.overall)
    ui.how_computed(data.overall, key="nps_overall_how")
with t2:
    ui.estimate_tile(data.weighted, help="Post-stratified so each segment counts as in the customer base.")
    ui.how_computed(data.weighted, key="nps_weighted_how")
with t3:
    if data.last_change is not None:
        ui.estimate_tile(data.last_change)
        ui.how_computed(data.last_change, key="nps_change_how")
ui.say(data.last_change_text, bold=True)

ui.chart(charts.trend(data.trend, f"NPS by {period} with 95% CI"), key="nps_trend",
         caption="Stars mark a change from the previous period that is statistically significant (z test, 5%).")
ui.how_computed(data.trend, key="nps_trend_how")

st.header("Breakdowns")
b1, b2 = st.columns(2)
with b1:
    ui.chart(charts.breakdown(data.by_segment, "segment"), key="nps_seg")
with b2:
    ui.chart(charts.breakdown(data.by_region, "region"), key="nps_reg")
ui.table(data.by_segment.table, key="nps_seg_table", name="nps_by_segment",
         caption=f"Groups under {filters.min_n} responses show their count only.")
ui.table(data.by_region.table, key="nps_reg_table", name="nps_by_region")
st.subheader("Transactional NPS, CSAT and CES by touchpoint")
ui.table(data.by_touchpoint.table, key="nps_tp_table", name="nps_by_touchpoint")
ui.table(data.csat.table, key="nps_csat_table", name="csat_by_touchpoint")
ui.table(data.ces.table, key="nps_ces_table", name="ces_by_touchpoint")

st.header("Key drivers")
if data.drivers.table.empty:
    ui.empty_state("No transactional responses to analyse.")
else:
    ui.chart(charts.driver_matrix(data.drivers), key="nps_drivers", caption=drivers.describe(data.drivers))
    ui.table(data.drivers.table, key="nps_drivers_table", name="key_drivers")
    ui.how_computed(data.drivers, key="nps_drivers_how")

st.header("Which customers responded?")
rep = data.representativeness
ui.chart(charts.response_rates(rep), key="nps_rep", caption=rep.extra["finding"])
ui.table(rep.table, key="nps_rep_table", name="response_rates")
ui.how_computed(rep, key="nps_rep_how")
