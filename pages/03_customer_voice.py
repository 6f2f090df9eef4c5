"""Customer voice: what customers wrote, searchable, shown strictly as text."""

import streamlit as st

from cxmetrics import ui, voice

st.title("Customer voice")
st.caption("Verbatims exactly as customers wrote them (shown as plain text). Search is case-insensitive.")
filters = ui.page_filters()
c1, c2, c3 = st.columns([3, 2, 2])
search = c1.text_input("Search the verbatims", key="voice_search", max_chars=200)
group = c2.selectbox("NPS group", ["all", *voice.GROUPS], key="voice_group")
lo, hi = c3.slider("Score", 0, 10, (0, 10), key="voice_score")
data = ui.compute(voice.page_data, filters, search=search, group=None if group == "all" else group,
                  min_score=lo, max_score=hi)

st.metric("Matching verbatims", f"{data.total_matching:,}")
if data.total_matching == 0:
    ui.empty_state("No verbatims match. Try a shorter search term or a wider score range.")
    st.stop()
if not data.themes.empty:
    st.subheader("Themes")
    ui.table(data.themes, key="voice_themes", name="themes")
st.subheader(f"Newest {len(data.verbatims):,} of {data.total_matching:,}")
ui.table(data.verbatims, key="voice_table", name="verbatims",
         column_config={"verbatim": st.column_config.TextColumn("verbatim", width="large")})
