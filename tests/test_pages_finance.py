"""AppTest: the Finance review page, including an assumption edit by the finance role."""

from cxmetrics import store
from cxmetrics.store import assumptions

PAGE = "pages/10_finance_review.py"


def test_finance_review_renders_for_executive_without_edit_form(demo_db, make_app):
    at = make_app(demo_db, role="executive", page=PAGE)
    assert not at.exception, at.exception
    assert at.title[0].value == "Finance review"
    assert any("Only the finance role" in i.value for i in at.info)
    assert any("2025-03" in w.value for w in at.warning)  # the planted reconciliation gap
    # the bridge's "How was this computed?": the queries behind its inputs
    assert any("-- bridge_base" in c.value for c in at.code) and any("-- wallet_by_group" in c.value for c in at.code)


def test_finance_role_edits_and_restores_an_assumption(writable_db, make_app):
    at = make_app(writable_db, role="finance", page=PAGE)
    assert not at.exception, at.exception
    at.selectbox(key="fin_key").select("gross_margin")
    at.number_input(key="fin_value").set_value(0.42)
    at.text_input(key="fin_source").input("Q3 close")
    at.button(key="FormSubmitter:fin_edit-Save new version").click().run()
    assert not at.exception, at.exception
    assert any("version 2" in s.value for s in at.success)
    with store.connect(str(writable_db)) as con:
        a = assumptions.get(con, "gross_margin")
    assert (a.value, a.version, a.source) == (0.42, 2, "Q3 close")

    at.selectbox(key="fin_restore_key").select("gross_margin").run()
    at.selectbox(key="fin_restore_version").select(1).run()
    at.button(key="fin_restore").click().run()
    assert not at.exception, at.exception
    with store.connect(str(writable_db)) as con:
        a = assumptions.get(con, "gross_margin")
    assert (a.value, a.version) == (0.35, 3)


def test_out_of_range_edit_is_refused_with_a_message(writable_db, make_app):
    at = make_app(writable_db, role="finance", page=PAGE)
    at.selectbox(key="fin_key").select("gross_margin")
    at.number_input(key="fin_value").set_value(3.0)
    at.button(key="FormSubmitter:fin_edit-Save new version").click().run()
    assert any("outside the allowed range" in e.value for e in at.error)
    with store.connect(str(writable_db)) as con:
        assert assumptions.get(con, "gross_margin").version == 1
