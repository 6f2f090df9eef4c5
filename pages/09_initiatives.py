"""Initiatives & impact: what each CX initiative delivered, and the two-speed portfolio."""

import datetime as dt

import streamlit as st

from cxmetrics.metrics import impact
from cxmetrics.registers import initiatives
from cxmetrics.core import roles
from cxmetrics.store import schema
from cxmetrics import ui, views
from cxmetrics.charts import initiatives as charts

st.title("Initiatives & impact")
filters = ui.page_filters()
if filters.dated:
    st.caption(impact.WHOLE_HISTORY)
data = ui.compute(views.initiatives.page_data, filters.undated())  # one result for every range

if data.initiatives.empty:
    ui.empty_state("No initiatives registered (or none in your department). Add one below or import initiatives.")
else:
    ui.say(impact.describe_portfolio(data.portfolio), bold=True)
    ui.chart(charts.portfolio(data.portfolio), key="ini_portfolio")
    ui.table(data.portfolio, key="ini_portfolio_table", name="portfolio")
    st.header("Measured results")
    ui.table(data.summary, key="ini_summary", name="initiative_results")
    for imp in data.impacts:
        with st.expander(ui.md_escape(f"{imp.initiative_id} · {imp.name} — {imp.status}")):
            ui.say(imp.explanation)
            for c in imp.checks:
                st.caption(ui.md_escape(c))
            if imp.effect is not None:
                st.caption(ui.md_escape(f"Interval: {imp.effect.method}."))
            if imp.money is not None:
                ui.estimate_tile(imp.money, fmt="{:,.0f}")
                if imp.roi is not None:
                    st.caption(f"ROI to date against a cost of {imp.cost:,.0f}: {imp.roi:+.0%}.")
            if not imp.event_study.empty:
                ui.chart(charts.event_study(imp), key=f"ini_es_{imp.initiative_id}")
            elif "fitted" in imp.series:
                ui.chart(charts.its(imp), key=f"ini_its_{imp.initiative_id}")
            if imp.effect is not None:
                ui.how_computed(imp.effect, key=f"ini_how_{imp.initiative_id}")

st.header("Register")
ui.table(data.initiatives, key="ini_register", name="initiatives")
if roles.can(filters.scope.role, "edit_initiatives"):
    ids = ["(new)"] + data.initiatives["initiative_id"].tolist()
    pick = st.selectbox("Add or edit", ids, key="ini_pick")
    cur = {} if pick == "(new)" else data.initiatives.set_index("initiative_id").loc[pick].to_dict() | {"initiative_id": pick}
    with st.form("ini_form"):
        c1, c2, c3 = st.columns(3)
        rec = {
            "initiative_id": c1.text_input("ID", cur.get("initiative_id", ""), key="ini_id"),
            "name": c2.text_input("Name", cur.get("name", ""), key="ini_name"),
            "track": c3.selectbox("Track", schema.TRACKS, index=schema.TRACKS.index(cur.get("track", "result_driven")),
                                  key="ini_track"),
            "department": c1.text_input("Department", cur.get("department", ""), key="ini_dept"),
            "owner": c2.text_input("Owner", cur.get("owner") or "", key="ini_owner"),
            "cost": c3.number_input("Cost", min_value=0.0, value=float(cur.get("cost") or 0.0), key="ini_cost"),
            "started_on": c1.date_input("Started", cur.get("started_on") or dt.date.today(), key="ini_start"),
            "ended_on": c2.date_input("Ended (optional)", cur.get("ended_on") if cur.get("ended_on") is not None
                                      and str(cur.get("ended_on")) != "NaT" else None, key="ini_end"),
            "target_metric": c3.text_input("Target metric (e.g. escalation_rate, csat:billing, kpi:KPI-CC-WAIT)",
                                           cur.get("target_metric") or "", key="ini_metric"),
            "treated_segment": c1.text_input("Treated group (all, region=…, segment=…)",
                                             cur.get("treated_segment") or "all", key="ini_treated"),
            "description": st.text_area("Description", cur.get("description") or "", key="ini_desc"),
        }
        if st.form_submit_button("Save initiative"):
            try:
                ui.write_action(initiatives.save, rec, actor=filters.scope.user, role=filters.scope.role)
                st.success(ui.md_escape(f"Saved {rec['initiative_id']}. The change is in the audit log."))
            except initiatives.InitiativeError as exc:
                st.error(ui.md_escape(exc))
else:
    ui.empty_state("Only the CX analyst role adds or edits initiatives.")
