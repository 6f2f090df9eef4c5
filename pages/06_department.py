"""Department: your KPIs against customer expectation, your NPS, complaints and initiatives."""

import streamlit as st

from cxmetrics.metrics import alignment
from cxmetrics import ui, views
from cxmetrics.charts import alignment as charts

st.title("Department")
filters = ui.page_filters()
options = ui.options()["departments"]
if filters.scope.role == "department":
    choices = list(filters.scope.departments or ())
else:
    choices = options
if not choices:
    ui.empty_state("Your account is not mapped to a department, so there is nothing to show.")
    st.stop()
dept = st.selectbox("Department", choices, key="dept_pick", disabled=len(choices) == 1)
data = ui.compute(views.department.page_data, filters, department=dept)
if data is None:
    st.error("You may only open your own department.")
    st.stop()

st.subheader(ui.md_escape(dept.replace("_", " ").title()))
c1, c2 = st.columns(2)
c1.markdown(f"**Leader:** {ui.md_escape(data.leader or '—')}")
c2.markdown(f"**CX ambassador:** {ui.md_escape(data.ambassador or '—')}")

with st.expander("Export this department's update"):
    ui.deck_button(filters, key="dept_deck", department=dept)

st.header("Your KPIs and what customers expect")
a = data.alignment.table
if a.empty:
    ui.empty_state("No KPIs registered for this department.")
for _, row in a.iterrows():
    ui.say(alignment.describe(row), bold=True)
    if row["suggestion"]:
        st.info(ui.md_escape(row["suggestion"]))
    ui.chart(charts.kpi_chart(data.kpi_trend, row), key=f"dept_kpi_{row['kpi_id']}")
    curve = data.alignment.extra["curves"].get(row["kpi_id"])
    if curve is not None and "x" in curve:
        ui.chart(charts.curve(curve, row), key=f"dept_curve_{row['kpi_id']}")
if len(a):
    if data.alignment.extra.get("mix_note") and a["money_at_risk"].notna().any():
        st.caption(data.alignment.extra["mix_note"])
    ui.table(a, key="dept_align_table", name=f"{dept}_kpis")
    ui.how_computed(data.alignment, key="dept_align_how")

st.header("NPS and CSAT at your touchpoints")
if data.nps_by_touchpoint.table.empty:
    ui.empty_state("No transactional survey responses are attributed to this department.")
else:
    ui.table(data.nps_by_touchpoint.table, key="dept_nps", name=f"{dept}_nps")
    ui.how_computed(data.nps_by_touchpoint, key="dept_nps_how")
    ui.table(data.csat_by_touchpoint.table, key="dept_csat", name=f"{dept}_csat")
    ui.how_computed(data.csat_by_touchpoint, key="dept_csat_how")

st.header("Your complaints")
ui.table(data.complaints.table, key="dept_complaints", name=f"{dept}_complaints")
ui.how_computed(data.complaints, key="dept_complaints_how")

st.header("Your initiatives")
if data.initiatives.empty:
    ui.empty_state("No initiatives owned by this department.")
else:
    ui.table(data.initiatives, key="dept_initiatives", name=f"{dept}_initiatives")
