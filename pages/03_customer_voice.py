"""Customer voice: what customers wrote (plain text), the themes they raise, what those cost, how they feel."""

import streamlit as st

from cxmetrics.metrics import theme_cost, theme_store, themes
from cxmetrics import ui, views
from cxmetrics.charts import voice as voice_charts

st.title("Customer voice")
st.caption("Verbatims exactly as customers wrote them (shown as plain text). Search is case-insensitive.")
filters = ui.page_filters()
c1, c2, c3 = st.columns([3, 2, 2])
search = c1.text_input("Search the verbatims", key="voice_search", max_chars=200)
group = c2.selectbox("NPS group", ["all", *views.voice.GROUPS], key="voice_group")
lo, hi = c3.slider("Score", 0, 10, (0, 10), key="voice_score")
data = ui.compute(views.voice.page_data, filters, search=search, group=None if group == "all" else group,
                  min_score=lo, max_score=hi)

st.metric("Matching verbatims", f"{data.total_matching:,}")
if data.total_matching == 0:
    ui.empty_state("No verbatims match. Try a shorter search term or a wider score range — or import survey "
                   "responses with a verbatim column on the Data page.")
    st.stop()
st.subheader(f"Newest {len(data.verbatims):,} of {data.total_matching:,}")
ui.table(data.verbatims, key="voice_table", name="verbatims",
         column_config={"verbatim": st.column_config.TextColumn("verbatim", width="large")})

st.header("Themes and what they cost")
th = ui.compute(views.voice.themes_data, filters)
st.caption(f"Themes: {th.source}. {th.verbatims:,} verbatims classified. {th.cost.method}")
for note in th.notes:
    ui.say(note)
with st.expander("Discover themes again (fits the topic model on a seeded sample and classifies every verbatim)"):
    n_themes = st.slider("Themes to discover per language", 2, 20, 12, key="voice_n_themes")
    if st.button("Discover themes", key="voice_discover"):
        scope = ui.current_scope()
        try:
            with st.spinner("Fitting themes and classifying every verbatim…"):
                # fitted on a read-only connection; the write lock only while the results are written
                kept = ui.file_action(theme_store.discover_file, n_themes=n_themes, actor=scope.user, role=scope.role)
            st.success(f"Kept theme run {kept['run_id']}: {kept['themes']} themes, {kept['tags']:,} assignments, "
                       f"{kept['seconds']:.1f} s.")
        except themes.CodebookError as exc:
            st.error(ui.md_escape(exc))
if th.cost.table.empty:
    ui.empty_state("No theme found in these verbatims: discovery needs at least 30 verbatims in a language, "
                   "or save a codebook below.")
else:
    for sentence in th.findings():
        ui.say(sentence, bullet=True)
    ui.table(th.cost_table(), key="voice_cost", name="theme_cost")
    ui.chart(voice_charts.theme_trend(th.trend, th.top(5)), key="voice_trend")
    ui.how_computed(th.cost, key="voice_cost_how")
    pick = st.selectbox("Read the verbatims of a theme", th.top(50), key="voice_drill")
    drill = ui.compute(theme_cost.verbatims, filters, cb=th.codebook, theme=pick, kept=th.kept)
    ui.table(drill, key="voice_drill_table", name="theme_verbatims",
             column_config={"verbatim": st.column_config.TextColumn("verbatim", width="large")})

st.subheader("Sentiment and emotions")
if th.sentiment.empty:
    ui.empty_state("No verbatims to score in these filters.")
else:
    st.caption("Estimated on a seeded random sample of verbatims (Wilson 95% intervals). English sentiment: VADER; "
               "other languages: the lexicon's positive/negative words. Emotions: Plutchik's eight, from the "
               "word-emotion lexicon (the shipped one is a tiny sample — see the README to use your own).")
    ui.table(th.sentiment, key="voice_sentiment", name="sentiment")
    ui.chart(voice_charts.emotion_mix(th.emotions, "touchpoint", "Emotions by touchpoint (95% CI)"), key="voice_emo_tp")
    ui.chart(voice_charts.emotion_mix(th.emotions, "nps_group", "Emotions by NPS group (95% CI)"), key="voice_emo_grp")

st.subheader("Codebook")
with st.expander("Discovered themes (top terms and example verbatims)"):
    ui.table(th.discovered(), key="voice_discovered", name="discovered_themes")
st.caption("Rename a theme by editing its name; merge themes by giving them the same name; split one by adding a row "
           "with a new name and moving keywords to it. A verbatim carries every theme one of whose keywords it "
           "contains (whole word); an imported theme column wins.")
edited = st.data_editor(th.codebook_rows(), num_rows="dynamic", key="voice_codebook", width="stretch")
note = st.text_input("Note for this version", key="voice_codebook_note", max_chars=200)
if st.button("Save the codebook", key="voice_codebook_save", type="primary"):
    scope = ui.current_scope()
    try:
        version = ui.write_action(theme_store.save_codebook, themes.from_rows(edited), actor=scope.user,
                                  role=scope.role, note=note)
        st.success(f"Saved codebook version {version}.")
    except themes.CodebookError as exc:
        st.error(ui.md_escape(exc))
