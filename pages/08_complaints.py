"""Complaints & closed loop: what customers complain about, how fast we fix it, and whether we call back."""

import streamlit as st

from cxmetrics.metrics import complaints
from cxmetrics import ui, views
from cxmetrics.charts import complaints as charts

st.title("Complaints & closed loop")
filters = ui.page_filters()
days = st.slider("Detractor follow-up counts if made within (days)", 1, 30, 7, key="comp_days")
data = ui.compute(views.complaints.page_data, filters, followup_days=int(days))

if data.pareto.table.empty:
    ui.empty_state("No complaints match these filters.")
    st.stop()
ui.say(complaints.describe_pareto(data.pareto), bold=True)
ui.chart(charts.pareto(data.pareto), key="comp_pareto",
         caption="Dark bars: the categories that together make 80% of complaints — the 'top N to fix'.")
ui.table(data.pareto.table, key="comp_pareto_table", name="complaint_pareto")
ui.how_computed(data.pareto, key="comp_pareto_how")

st.header("Escalations and resolution")
c1, c2 = st.columns(2)
with c1:
    ui.chart(charts.escalation_trend(data.by_month), key="comp_esc")
with c2:
    ui.estimate_tile(data.recontact)
    ui.how_computed(data.recontact, key="comp_recontact_how")
    st.caption("Median and 90th percentile days to resolve (open complaints counted as censored, not dropped):")
    ui.table(data.resolution.table, key="comp_res_table", name="resolution_times")

st.header("Complaints and churn")
if data.churn_uplift.table.empty:
    ui.empty_state("Too little churn in this selection to compare.")
else:
    ui.chart(charts.hazard(data.churn_uplift), key="comp_hazard",
             caption="Adjusted for NPS group, segment and tenure; customers' complaint history before the landmark date.")
    ui.table(data.churn_uplift.table, key="comp_hazard_table", name="complaint_churn")
    ui.how_computed(data.churn_uplift, key="comp_hazard_how")
ui.table(data.cost.table, key="comp_cost", name="complaint_cost", caption="Cost of complaints per month.")

st.header("Closing the loop")
ui.chart(charts.callbacks(data.callbacks_dept), key="comp_callbacks",
         caption="If we promise to call back, do we? Share of promised callbacks made, by department.")
ui.table(data.callbacks_dept.table, key="comp_callbacks_table", name="callbacks")
ui.say(complaints.describe_followup(data.followup), bold=True)
ui.table(data.followup.table, key="comp_followup_table", name="detractor_followup")
ui.how_computed(data.followup, key="comp_followup_how")
