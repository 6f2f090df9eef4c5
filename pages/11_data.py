"""Data: what is in the store, where it came from, and a validated upload."""

import streamlit as st

from cxmetrics.registers import import_preview, importer
from cxmetrics.core import roles
from cxmetrics.store import schema
from cxmetrics import store, ui, views

st.title("Data")
st.caption("Every table of the data contract, the import history, and a validated, all-or-nothing upload.")
filters = ui.page_filters()
if st.session_state.pop("demo_built_notice", False):
    st.success("No database existed, so the demo company was built. Import your own files below.")

data = ui.compute(views.data.page_data, filters)
overview, history = data.overview, data.history
c1, c2, c3 = st.columns(3)
c1.metric("Tables with data", f"{(overview['rows'] > 0).sum()} of {len(overview)}")
c2.metric("Rows in all tables", f"{int(overview['rows'].sum()):,}")
c3.metric("Data version", ui.data_version())
ui.table(overview, key="data_overview", name="tables")

st.subheader("Import history")
if history.empty:
    ui.empty_state("No imports yet.")
else:
    ui.table(history, key="data_history", name="imports")

st.subheader("Upload a file")
if not roles.can(filters.scope.role, "import"):
    ui.empty_state("Only the CX analyst role imports data. Switch role in the sidebar to upload.")
    st.stop()
if ui.read_only_reason():
    ui.empty_state(ui.read_only_reason())
    st.stop()
checked = st.session_state.get("data_check")  # the last dry run: its mapping fills the editor
n_checks = st.session_state.get("data_checks", 0)
with st.form("data_upload"):
    table = st.selectbox("Table", schema.IMPORTABLE, index=schema.IMPORTABLE.index("survey_responses"), key="data_table")
    uploaded = st.file_uploader("File (CSV, Excel .xlsx, Parquet or a Qualtrics CSV export)",
                                type=["csv", "txt", "tsv", "xlsx", "parquet"])
    st.caption("Validate shows what was detected, the mapping it will use and the first rows as they will be "
               "stored. Change the mapping or the options below and validate again; nothing is written until "
               "you confirm.")
    st.markdown("**Column mapping** (source column → target column; an empty target leaves the column out)")
    mapping_rows = st.data_editor(
        checked.mapping_frame() if checked and checked.request.table == table else import_preview.rows("source column", "target"),
        num_rows="dynamic", hide_index=True, key=f"data_map_{n_checks}",
        column_config={"target": st.column_config.SelectboxColumn(options=["", *schema.TABLES[table].names])})
    c1, c2, c3 = st.columns(3)
    encoding = c1.selectbox("Encoding", import_preview.ENCODINGS, key="data_encoding")
    date_format = c2.text_input("Date format (strftime, empty: detect)", placeholder="%m/%d/%Y", key="data_date_format")
    sheet = c3.text_input("Excel sheet (empty: the first visible one)", key="data_sheet")
    c1, c2, c3 = st.columns(3)
    include_incomplete = c1.checkbox("Qualtrics: keep unfinished responses", key="data_incomplete")
    line_items = c2.checkbox("Transactions: sum line items per transaction_id", key="data_line_items")
    amount = c3.text_input("Amount from columns (A*B or A+B)", placeholder="Quantity*UnitPrice", key="data_amount")
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**Constants** (`--set`)")
        set_rows = st.data_editor(import_preview.rows("column", "value"), num_rows="dynamic", hide_index=True,
                                  key="data_sets", column_config={"column": st.column_config.SelectboxColumn(
                                      options=list(schema.TABLES[table].names))})
    with c2:
        st.markdown("**Labels** (`--labels`: choice text → number)")
        label_rows = st.data_editor(import_preview.rows("column", "label", "value"), num_rows="dynamic",
                                    hide_index=True, key="data_labels")
    with c3:
        st.markdown("**Keep only rows where** (`--only`)")
        only_rows = st.data_editor(import_preview.rows("source column", "value"), num_rows="dynamic",
                                   hide_index=True, key="data_only")
    validate = st.form_submit_button("Validate")

if validate:
    st.session_state.pop("data_check", None)
    if uploaded is None:
        st.warning("Choose a file first.")
    else:
        try:
            req = import_preview.request(table, uploaded.name, mapping_rows=mapping_rows, set_rows=set_rows,
                                         label_rows=label_rows, only_rows=only_rows, encoding=encoding,
                                         date_format=date_format, include_incomplete=include_incomplete,
                                         amount=amount, line_items=line_items, sheet=sheet)
            with ui.working("Validating"), ui.upload_file(uploaded) as path:
                checked = import_preview.check(path, req, db=str(ui.db_file()), actor=filters.scope.user,
                                               role=filters.scope.role)
            st.session_state["data_check"] = checked
            st.session_state["data_checks"] = n_checks + 1
            st.rerun()  # the mapping editor now shows the mapping this check used
        except (ValueError, PermissionError, store.StoreError) as exc:
            st.error(ui.md_escape(exc))

checked = st.session_state.get("data_check")
if checked:
    req = checked.request
    ui.say(f"Detected: {checked.detected()}.")
    st.caption("The same import on the command line:")
    st.code(import_preview.cli_command(req), language="bash")
    if not checked.ok:
        exc = checked.rejected
        st.error(ui.md_escape(f"{req.source} was rejected — nothing was imported. {exc.total} problem(s):"))
        st.dataframe(checked.problems_frame(), hide_index=True, key="data_problems")
    else:
        rep = checked.report
        st.success(ui.md_escape(f"{rep.source}: {rep.rows:,} rows are valid for {req.table}. "
                                "Nothing is written until you confirm."))
        if rep.excluded:
            st.caption(ui.md_escape(f"Left out and counted: {checked.excluded_text()}."))
        for w in rep.warnings:
            st.caption(ui.md_escape(f"Note: {w}"))
        st.markdown("**First rows as they will be stored**")
        st.dataframe(checked.sample_frame(), hide_index=True, key="data_sample")
        if st.button(f"Import {rep.rows:,} rows into {req.table}", type="primary", key="data_confirm"):
            try:
                if uploaded is None:
                    raise store.StoreError("the uploaded file is no longer there: upload it again")
                with ui.working("Importing"), ui.upload_file(uploaded) as path:
                    done = import_preview.run(path, req, db=str(ui.db_file()), actor=filters.scope.user,
                                              role=filters.scope.role)
                st.session_state.pop("data_check", None)
                ui.clear_caches()
                st.success(f"Imported {done.rows:,} rows into {req.table} ({done.inserted:,} new, "
                           f"{done.updated:,} updated).")
                for w in done.warnings:
                    st.caption(ui.md_escape(f"Note: {w}"))
            except (importer.ImportRejected, store.StoreError, PermissionError) as exc:
                st.session_state.pop("data_check", None)
                st.error(ui.md_escape(exc))
