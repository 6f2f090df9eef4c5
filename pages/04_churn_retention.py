"""Churn & retention: do detractors leave faster, and by how much?"""

import streamlit as st

from cxmetrics.metrics import churn
from cxmetrics import ui, views
from cxmetrics.charts import churn as charts

st.title("Churn & retention")
filters = ui.page_filters()
data = ui.compute(views.churn.page_data, filters)
landmark = data.by_nps.extra["landmark"]
st.caption(f"Contractual customers active on {landmark}, grouped by their latest relationship-survey answer "
           "before that date (no look-ahead), followed to the end of the data.")

if data.hazard.table.empty:
    ui.empty_state("Not enough customers or churn in this selection to compare NPS groups.")
else:
    c1, c2 = st.columns([1, 2])
    with c1:
        ui.estimate_tile(data.hazard.headline[0], fmt="{:.2f}")
    with c2:
        ui.say(churn.describe_hazard(data.hazard), bold=True)
    ui.chart(charts.survival(data.survival), key="churn_km",
             caption="Shaded bands: pointwise 95% confidence intervals (Kaplan–Meier, Greenwood, log-log).")
    ui.chart(charts.ratios(data.hazard), key="churn_hr")
    ui.table(data.hazard.table, key="churn_hr_table", name="hazard_ratios")
    ui.how_computed(data.hazard, key="churn_hr_how")

st.header("Churn by group")
tab1, tab2, tab3 = st.tabs(["NPS group", "Segment", "Complaint history"])
for tab, res, dim, key in ((tab1, data.by_nps, "nps_group", "nps"), (tab2, data.by_segment, "segment", "seg"),
                           (tab3, data.by_complaints, "complaint_history", "comp")):
    with tab:
        if res.table.empty:
            ui.empty_state(" ".join(res.warnings) or "No customers active at the landmark in this selection.")
            continue
        ui.chart(charts.rate_bars(res, dim, title=res.label + " (95% CI)"), key=f"churn_by_{key}")
        ui.table(res.table, key=f"churn_by_{key}_table", name=f"churn_by_{dim}")

st.header("Over time")
ui.chart(charts.monthly(data.by_month), key="churn_monthly")
ui.chart(charts.cohort_heatmap(data.cohorts), key="churn_cohorts",
         caption="Each row is a quarter's new customers; each cell the share still customers k months later.")
