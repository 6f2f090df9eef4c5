"""Streamlit entry point: a router and a frame.

Builds the demo database on first start, shows the role switcher and the global filters, and
routes to the pages in ``pages/`` that the caller's role may open (``cxmetrics.roles.PAGES``).
"""

import streamlit as st

from cxmetrics import ui
from cxmetrics.core import roles

ui.leave_legacy_multipage_mode()
st.set_page_config(page_title="CX to P&L", page_icon=":material/insights:", layout="wide")

ui.ensure_database()
with ui.store_held_open():  # the run's reads share one open store (see cxmetrics.store.held_open)
    scope = ui.identify()
    specs = roles.pages_for(scope.role)
    if not specs:
        st.error("Your role has no pages. Ask an administrator to map your account to a role.")
        st.stop()
    nav = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=(i == 0))
                         for i, p in enumerate(specs)])
    st.session_state["filters"] = ui.sidebar_filters()
    nav.run()
