"""Start-up stays light (issue 21, item 3): the CLI's help, ``status`` and the package import load
none of the heavy libraries; they come in when a computation first needs them
(:mod:`cxmetrics.core.lazy`). Structural checks on ``sys.modules`` in a fresh process, never
timings (those are reported by the bench)."""

from __future__ import annotations

import json
import subprocess
import sys

from cxmetrics.core import lazy

HEAVY = ("pandas", "numpy", "scipy", "statsmodels", "plotly", "sklearn", "pyarrow", "streamlit", "sqlglot")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_package_and_cli_parser_import_no_heavy_library():
    assert _loaded_after("import cxmetrics, cxmetrics.cli\ncxmetrics.cli.build_parser()") == []


def test_help_loads_no_heavy_library():
    code = ("import contextlib, io, cxmetrics.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    cxmetrics.cli.main(['--help'])")
    assert _loaded_after(code) == []


def test_status_loads_no_heavy_library(tmp_path):
    db = tmp_path / "s.duckdb"
    subprocess.run([sys.executable, "-m", "cxmetrics", "init", "--db", str(db)], check=True, capture_output=True)
    code = ("import contextlib, io, cxmetrics.cli\n"
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            f"    assert cxmetrics.cli.main(['status', '--db', {str(db)!r}]) == 0\n"
            "assert 'survey_responses' in buf.getvalue()")
    assert _loaded_after(code) == []


def test_a_metric_module_imports_without_its_libraries_and_loads_them_on_use():
    """Importing a metric module loads none of its libraries; the normal, t and chi-square
    quantiles need none at all (cxmetrics.core.dist); the BTYD likelihood loads scipy.special on
    first use, never scipy.stats."""
    code = ("import sys\nfrom cxmetrics.metrics import nps, churn, btyd, scores, threshold\n"
            "assert 'scipy' not in sys.modules and 'pandas' not in sys.modules\n"
            "assert abs(nps.norm.ppf(0.975) - 1.959964) < 1e-6\n"
            "assert abs(scores.student_t.ppf(0.975, 10) - 2.228139) < 1e-6\n"
            "assert abs(threshold.chi2.ppf(0.95, 1) - 3.841459) < 1e-6 and 'scipy' not in sys.modules\n"
            "assert abs(btyd.gammaln(0.5) - 0.572365) < 1e-6\n"
            "assert 'scipy.special' in sys.modules and 'scipy.stats' not in sys.modules")
    assert "scipy" in _loaded_after(code)


def test_the_commit_step_is_wired_without_loading_the_models():
    code = ("from cxmetrics import store\n"
            "assert store.COMMIT_HOOKS, 'the commit step (summaries, fits) must be registered'")
    assert _loaded_after(code) == []


def test_lazy_module_and_attr_behave_like_the_real_ones():
    m = lazy.LazyModule("json")
    assert m.dumps([1]) == "[1]" and "dumps" in vars(m)  # held after the first access
    dumps = lazy.LazyAttr("json", "dumps")
    assert dumps({"a": 1}) == '{"a": 1}' and dumps.__name__ == "dumps"
    assert lazy.module("json") is sys.modules["json"]  # already imported: the real module


_TEMPLATE_PROBE = """
import json, sys
{before}
import plotly.io as pio
from cxmetrics.charts import nps as nps_charts
import pandas as pd
{after}
class R:
    table = pd.DataFrame({{"group": ["a"], "nps": [10.0], "ci_low": [5.0], "ci_high": [15.0], "n": [40]}})
fig = nps_charts.breakdown(R(), "group")
want = pio.templates["plotly_white"].to_plotly_json()
print(json.dumps(fig.to_dict()["layout"]["template"] == want))
"""


def test_every_chart_takes_the_house_template_whatever_was_imported_first():
    """Every figure carries the whole plotly_white template, whether plotly or Streamlit (which
    makes its own template plotly's default when imported) was imported before the charts, after
    them, or not at all."""
    for before, after in (("", ""), ("import plotly.graph_objects as go; go.Figure()", ""),
                          ("import streamlit", ""), ("", "import streamlit")):
        out = subprocess.run([sys.executable, "-c", _TEMPLATE_PROBE.format(before=before, after=after)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip().splitlines()[-1] == "true", (before, after)
