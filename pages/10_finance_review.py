"""Finance review: assumptions, sensitivity, methodology, lineage, reconciliation, samples."""

import datetime as dt

import streamlit as st

from cxmetrics.store import assumptions
from cxmetrics.metrics import finance, pnl
from cxmetrics.core import roles
from cxmetrics import ui, views
from cxmetrics.charts import nps as nps_charts
from cxmetrics.charts import pnl as pnl_charts

st.title("Finance review")
st.caption("Take every figure apart: the assumptions behind it (and their versions), how sensitive the "
           "result is to each, how the numbers were computed, where the data came from, and whether the "
           "revenue in the store matches the books.")
filters = ui.page_filters()
c1, c2 = st.columns([2, 1])
with_ranges = c1.toggle("Include assumption uncertainty in the bridge interval (Monte Carlo over finance's ranges)",
                        key="fin_mc")
distribution = c2.segmented_control("Draw each assumption", ("triangular", "uniform"), default="triangular",
                                    key="fin_mc_dist") or "triangular"
data = ui.compute(views.finance.page_data, filters, assumption_ranges=with_ranges, distribution=distribution)
can_edit = roles.can(filters.scope.role, "edit_assumptions")

st.header("Assumptions")
ui.table(data.register, key="fin_register", name="assumptions")
if can_edit:
    with st.form("fin_edit"):
        st.markdown("**Change an assumption** (finance role; every change is a new version)")
        keys = list(data.register["assumption"])
        c1, c2, c3 = st.columns([2, 1, 2])
        key = c1.selectbox("Assumption", keys, key="fin_key")
        value = c2.number_input("New value", value=None, format="%.4f", key="fin_value")
        source = c3.text_input("Source (e.g. 'FY2027 budget')", key="fin_source")
        if st.form_submit_button("Save new version"):
            if value is None:
                st.error("Enter a value.")
            else:
                try:
                    a = ui.write_action(assumptions.set_value, key, value, actor=filters.scope.user,
                                        role=filters.scope.role, source=source or None)
                    st.success(ui.md_escape(f"{key} is now {a.value:g} {a.unit} (version {a.version})."))
                except assumptions.AssumptionError as exc:
                    st.error(ui.md_escape(exc))
    with st.form("fin_range"):
        st.markdown("**Set an assumption's plausible range** (low ≤ value ≤ high; both empty clears it). The "
                    "tornado uses it, and the bridge interval includes it when asked.")
        c1, c2, c3 = st.columns([2, 1, 1])
        rkey = c1.selectbox("Assumption", keys, key="fin_range_key")
        low = c2.number_input("Low", value=None, format="%.4f", key="fin_range_low")
        high = c3.number_input("High", value=None, format="%.4f", key="fin_range_high")
        if st.form_submit_button("Save range"):
            try:
                a = ui.write_action(assumptions.set_range, rkey, low, high, actor=filters.scope.user,
                                    role=filters.scope.role)
                st.success(f"{rkey}: range {a.low:g} to {a.high:g} (version {a.version})." if a.range else
                           f"{rkey}: range cleared (version {a.version}).")
            except assumptions.AssumptionError as exc:
                st.error(ui.md_escape(exc))
else:
    ui.empty_state("Only the finance role changes assumptions. Switch role in the sidebar to edit.")

with st.expander("Version history and restore"):
    ui.table(data.history, key="fin_history", name="assumption_history")
    if can_edit and not data.history.empty:
        c1, c2, c3 = st.columns([2, 1, 1])
        rkey = c1.selectbox("Assumption", sorted(data.history["key"].unique()), key="fin_restore_key")
        versions = data.history.loc[data.history["key"] == rkey, "version"].tolist()
        rver = c2.selectbox("Version", versions, key="fin_restore_version")
        if c3.button("Restore this version", key="fin_restore"):
            try:
                a = ui.write_action(assumptions.restore, rkey, int(rver), actor=filters.scope.user,
                                    role=filters.scope.role)
                st.success(ui.md_escape(f"Restored {rkey} to {a.value:g} (now version {a.version})."))
            except assumptions.AssumptionError as exc:
                st.error(ui.md_escape(exc))

st.header("Sensitivity of the CX-to-P&L bridge")
b = data.bridge
if b is None:
    ui.empty_state(f"The bridge cannot be computed for this selection: {data.bridge_error}")
else:
    ui.say(pnl.headline(b), bold=True)
    if pnl.crude_beside(b):
        ui.say(pnl.crude_beside(b))
    st.caption(b.interval_note)
    if b.confounding_note:
        st.warning(b.confounding_note)
    ui.chart(pnl_charts.tornado(b), key="fin_tornado",
             caption="Each bar: the net impact when one assumption moves across its range (finance's range where set, "
                     "else the documented one), the others fixed.")
    for line in b.break_even["reading"]:
        ui.say(f"Break-even: {line}.", bullet=True)
    st.subheader("Every input of the bridge")
    ui.table(b.inputs, key="fin_inputs", name="bridge_inputs",
             caption="Estimated inputs carry a standard error (their uncertainty feeds the interval); assumptions do not "
                     "(their effect is the tornado above).")
    st.caption(ui.md_escape("Assumption versions used: " + "; ".join(f"{k} = {v}" for k, v in b.assumptions.items())))
    ui.how_computed(b, key="fin_bridge_how")

st.header("Sample sizes and representativeness")
rep = data.representativeness
ui.say(rep.extra['finding'], bold=True)
ui.chart(nps_charts.response_rates(rep), key="fin_rep")
ui.table(rep.table, key="fin_rep_table", name="response_rates")

st.header("Methodology")
ui.table(data.methodology, key="fin_methods", name="methodology")

st.header("Revenue reconciliation")
recon = data.reconciliation
flagged = recon.extra["flagged_periods"]
if flagged:
    st.warning(f"{len(flagged)} month(s) differ from the booked revenue by more than "
               f"{recon.extra['tolerance']:.0%}: {', '.join(flagged)}. Money figures for those months "
               "should be read with care.")
elif not recon.warnings:
    st.success(f"Store revenue matches booked revenue within {recon.extra['tolerance']:.0%} in every month shown.")
for w in recon.warnings:
    if "differs" not in w:
        st.caption(ui.md_escape(w))
ui.table(recon.table, key="fin_recon", name="reconciliation")
ui.how_computed(recon, key="fin_recon_how")
if can_edit:
    with st.form("fin_booked"):
        st.markdown("**Enter a booked revenue total**")
        c1, c2 = st.columns(2)
        period = c1.date_input("Month", value=dt.date.today().replace(day=1), key="fin_booked_month")
        amount = c2.number_input("Booked revenue", min_value=0.0, value=None, key="fin_booked_amount")
        if st.form_submit_button("Save booked total"):
            try:
                if amount is None:
                    raise ValueError("enter an amount")
                ui.write_action(finance.set_booked, period, amount, actor=filters.scope.user,
                                role=filters.scope.role)
                st.success(f"Booked revenue for {period:%Y-%m} saved.")
            except ValueError as exc:
                st.error(ui.md_escape(exc))

st.header("Net revenue retention")
ui.estimate_tile(data.nrr, fmt="{:.1f}")
ui.how_computed(data.nrr, key="fin_nrr_how")

st.header("Audit log")
st.caption("Append-only: who imported, edited an assumption or an initiative, entered booked revenue, and when.")
ui.table(data.audit, key="fin_audit", name="audit_log")

st.header("Data lineage")
st.caption("Every accepted import (file, sha256, rows, when) that the figures are built from.")
ui.table(data.imports, key="fin_lineage", name="lineage")
