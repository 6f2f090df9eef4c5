"""Data: what is in the store, where it came from, and a validated upload."""

from pathlib import Path

import pandas as pd
import streamlit as st

from cxmetrics import importer, roles, schema, store, ui

st.title("Data")
st.caption("Every table of the data contract, the import history, and a validated, all-or-nothing upload.")
filters = ui.page_filters()
if st.session_state.pop("demo_built_notice", False):
    st.success("No database existed, so the demo company was built. Import your own files below.")

data = ui.compute(store.page_data, filters)
overview, history = data["overview"], data["history"]
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
with st.form("data_upload"):
    table = st.selectbox("Table", schema.IMPORTABLE, index=schema.IMPORTABLE.index("survey_responses"))
    uploaded = st.file_uploader("File (CSV, Excel .xlsx, Parquet or a Qualtrics CSV export)",
                                type=["csv", "txt", "tsv", "xlsx", "parquet"])
    mapping_text = st.text_area("Column mapping (optional), one per line: Source Column=target_column",
                                height=80)
    validate = st.form_submit_button("Validate")

if validate:
    st.session_state.pop("data_pending", None)
    if uploaded is None:
        st.warning("Choose a file first.")
    else:
        try:
            mapping = importer.parse_mapping(mapping_text)
            path = ui.save_upload(uploaded)
            with st.spinner("Validating…"):
                rep = importer.import_file(path, table, db=str(ui.db_file()), mapping=mapping,
                                           dry_run=True, actor=filters.scope.user,
                                           role=filters.scope.role, source=uploaded.name)
            st.session_state["data_pending"] = (str(path), table, mapping, rep)
        except importer.ImportRejected as exc:
            try:  # the validation wrote nothing: run it once more for real so imports/audit record it
                importer.import_file(path, table, db=str(ui.db_file()), mapping=mapping,
                                     actor=filters.scope.user, role=filters.scope.role, source=uploaded.name)
            except (importer.ImportRejected, store.StoreError):
                pass
            finally:
                path.unlink(missing_ok=True)
            st.error(ui.md_escape(f"{uploaded.name} was rejected — nothing was imported. {exc.total} problem(s):"))
            st.dataframe(pd.DataFrame([{"row": p.row, "column": p.column, "problem": p.reason,
                                        "value": p.value} for p in exc.problems]),
                         hide_index=True, key="data_problems")
        except (ValueError, PermissionError, store.StoreError) as exc:
            st.error(ui.md_escape(exc))

pending = st.session_state.get("data_pending")
if pending:
    path, table, mapping, rep = pending
    st.success(ui.md_escape(f"{rep.source}: {rep.rows:,} rows are valid for {table}. Nothing is written until you confirm."))
    for w in rep.warnings:
        st.caption(ui.md_escape(f"Note: {w}"))
    if st.button(f"Import {rep.rows:,} rows into {table}", type="primary", key="data_confirm"):
        try:
            with st.spinner("Importing…"):
                done = importer.import_file(path, table, db=str(ui.db_file()), mapping=mapping,
                                            actor=filters.scope.user, role=filters.scope.role,
                                            source=rep.source)
            st.session_state.pop("data_pending", None)
            Path(path).unlink(missing_ok=True)  # uploads are not kept in the temp folder
            ui.clear_caches()
            st.success(f"Imported {done.rows:,} rows into {table} ({done.inserted:,} new, {done.updated:,} updated).")
        except (importer.ImportRejected, store.StoreError, PermissionError) as exc:
            st.session_state.pop("data_pending", None)
            Path(path).unlink(missing_ok=True)
            st.error(ui.md_escape(exc))
