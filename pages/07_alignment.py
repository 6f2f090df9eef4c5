"""KPI alignment: departments' internal targets against what customers actually expect."""

import streamlit as st

from cxmetrics.metrics import alignment
from cxmetrics import ui, views
from cxmetrics.charts import alignment as charts

st.title("KPI alignment")
st.caption("For each departmental KPI linked to customers' survey answers: the value beyond which customers turn "
           "into detractors (with its 95% CI), compared with the department's own target.")
filters = ui.page_filters()
res = ui.compute(views.alignment.page_data, filters).scorecard
t = res.table
if t.empty:
    ui.empty_state("No KPIs are registered (or none in your department).")
    st.stop()
mis = t[t["status"] == "misaligned"]
c1, c2, c3 = st.columns(3)
c1.metric("Misaligned KPIs", len(mis))
c2.metric("Aligned KPIs", int((t["status"] == "aligned").sum()))
money_label, money_value, money_caption = views.alignment.money_headline(res)
c3.metric(money_label, money_value)
st.caption(money_caption)
for _, row in t.iterrows():
    ui.say(alignment.describe(row), bullet=True)
    if row["suggestion"]:
        st.markdown(f"  - *{ui.md_escape(row['suggestion'])}*")
ui.chart(charts.scorecard(t), key="align_scorecard")
ui.table(t, key="align_table", name="kpi_alignment")
for w in res.warnings:
    st.caption(ui.md_escape(w))
ui.how_computed(res, key="align_how")
