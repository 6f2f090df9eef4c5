"""AppTest: Churn & retention and Customer value."""


def test_churn_page(demo_db, make_app):
    at = make_app(demo_db, page="pages/04_churn_retention.py")
    assert not at.exception, at.exception
    assert at.title[0].value == "Churn & retention"
    assert any("Detractors churn at" in m.value for m in at.markdown)


def test_value_page(demo_db, make_app):
    at = make_app(demo_db, page="pages/05_customer_value.py")
    assert not at.exception, at.exception
    assert any("A promoter is worth" in m.value for m in at.markdown)
    at.number_input(key="value_moved").set_value(500).run()
    assert not at.exception
    assert any("500" in m.label for m in at.metric)


def test_value_pages_are_not_offered_to_a_department_role(demo_db, make_app):
    from cxmetrics.core import roles

    titles = [p.title for p in roles.pages_for("department")]
    assert "Customer value" not in titles and "Churn & retention" not in titles
    at = make_app(demo_db, role="department")
    assert not at.exception, at.exception
