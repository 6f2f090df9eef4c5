"""AppTest: Churn & retention and Customer value."""

import pytest

from tests.test_btyd_checks import build_stores_without_surveys


@pytest.fixture(scope="module")
def tx_stores(tmp_path_factory):
    """A transactions-only store and the line-item retail store (see tests/test_btyd_checks.py)."""
    return build_stores_without_surveys(tmp_path_factory)


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


# ----------------------------------------------------------------------------- non-contractual value


def _text(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [i.value for i in at.info] + [c.value for c in at.caption]
                     + [s.value for s in at.subheader] + [h.value for h in at.header])


def test_value_page_shows_btyd_distributions_and_the_holdout(demo_db, make_app):
    at = make_app(demo_db, page="pages/05_customer_value.py")
    assert not at.exception, at.exception
    text = _text(at)
    assert "customers buy without a contract" in text and "likely to still be active" in text
    assert "Calibration / holdout check" in text and "the last third" in text
    labels = [m.label for m in at.metric]
    assert any("alive" in x and "non-contractual" in x for x in labels) and "Mean CLV, non-contractual" in labels
    assert len(at.get("plotly_chart")) >= 6  # CLV, wallet, P(alive), purchases, CLV distribution, holdout
    frames = [df.value for df in at.dataframe]
    assert any({"calibration_repeats", "actual", "predicted"} <= set(f.columns) for f in frames)


def test_value_page_on_a_transactions_only_store(tx_stores, make_app):
    """No survey at all: the contractual and wallet sections say why they are empty and the
    non-contractual section shows P(alive) and expected purchases, the CLV withheld with its reason
    (see test_btyd_checks for why this store's spend model is not identified)."""
    at = make_app(tx_stores["transactions"], page="pages/05_customer_value.py", timeout=180)
    assert not at.exception, at.exception
    text = _text(at)
    assert "customers buy without a contract" in text and "worth" not in text.split("without a contract")[1][:300]
    assert "not identified by this data, so no CLV is shown" in text
    labels = [m.label for m in at.metric]
    assert any("alive" in x and "non-contractual" in x for x in labels) and "Mean CLV, non-contractual" not in labels
    assert "Calibration / holdout check" in text
    for bad in ("nan", "Traceback", "Empty DataFrame"):
        assert bad not in text


def test_value_page_flags_an_unidentified_fit_instead_of_showing_it(tx_stores, make_app):
    at = make_app(tx_stores["line_items"], page="pages/05_customer_value.py", timeout=180)
    assert not at.exception, at.exception
    text = _text(at)
    assert "The model's parameters are not identified by this data" in text and "a/(a+b)" in text
    assert "likely to still be active" not in text
    assert not [m for m in at.metric if "non-contractual" in m.label]
    assert not at.get("plotly_chart")

