"""AppTest: NPS & drivers and Customer voice."""


def test_nps_page(demo_db, make_app):
    at = make_app(demo_db, page="pages/02_nps_drivers.py")
    assert not at.exception, at.exception
    assert at.title[0].value == "NPS & drivers"
    assert any("NPS" in m.label for m in at.metric)
    assert any("from" in m.value and "to" in m.value for m in at.markdown)  # the change sentence


def test_nps_page_empty_state(demo_db, make_app):
    at = make_app(demo_db, page="pages/02_nps_drivers.py", query={"from": "2026-09-30", "to": "2026-09-30",
                                                                  "segment": "enterprise", "region": "west"})
    assert not at.exception, at.exception


def test_voice_page_shows_text_not_html(demo_db, make_app):
    at = make_app(demo_db, page="pages/03_customer_voice.py")
    assert not at.exception, at.exception
    at.text_input(key="voice_search").input("script").run()
    assert not at.exception
    df = next(d.value for d in at.dataframe if "verbatim" in d.value.columns)  # the search results, first
    assert df["verbatim"].str.contains("<script>").any()  # kept as literal text in a dataframe
