"""Heavy libraries imported on first use, so that commands start fast.

``python -m cxmetrics --help`` and ``status`` need none of pandas, NumPy, SciPy, statsmodels or
plotly, yet every metric module names them at its top. Importing them all costs seconds (pandas
alone about one on a small machine), so the CLI's start-up budget (issue 21: ``--help`` and
``status`` under 0.5 s, a metric command's fixed overhead under 1 s) is met only if they load when
a computation first touches them. A module writes::

    from cxmetrics.core import lazy

    pd = lazy.module("pandas")             # instead of: import pandas as pd
    norm = lazy.attr("scipy.stats", "norm")  # instead of: from scipy.stats import norm

and uses ``pd`` and ``norm`` exactly as before. The first attribute access (``pd.DataFrame``) or call
(``norm.ppf``, ``minimize(…)``) imports the real module; after that a :class:`LazyModule` holds
each attribute it handed out in its own namespace, so a repeated ``pd.DataFrame`` is a plain
attribute look-up. Nothing is put into :data:`sys.modules` before the real import, so
``"scipy" in sys.modules`` still tells whether SciPy was loaded (``tests/test_startup.py``).

Set ``CX_TRACE_LAZY=1`` to print a stack trace whenever a lazy library is loaded (to find which
code pulled it into a command that should not need it).

This is the idea of :class:`importlib.util.LazyLoader` without its caveats: that loader places a
half-made module in ``sys.modules`` and fails on packages that import their own submodules while
loading (pandas does).
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import Any


def _load(name: str) -> types.ModuleType:
    if name not in sys.modules and os.environ.get("CX_TRACE_LAZY"):
        import traceback

        print(f"cxmetrics.core.lazy: importing {name}", file=sys.stderr)
        traceback.print_stack(limit=12, file=sys.stderr)
    return importlib.import_module(name)


class LazyModule(types.ModuleType):
    """A stand-in for the module ``name``, imported on the first attribute access."""

    def __getattr__(self, attr: str) -> Any:  # called only for names not yet in our namespace
        value = getattr(_load(self.__name__), attr)
        if not (attr.startswith("__") and attr.endswith("__")):
            setattr(self, attr, value)  # the next access is a plain look-up
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"


def module(name: str) -> types.ModuleType:
    """The module ``name`` if it is already imported, else a :class:`LazyModule` for it."""
    return sys.modules.get(name) or LazyModule(name)


class LazyAttr:
    """A stand-in for ``from <module> import <name>``: calls and attribute look-ups go to the
    real object, which is imported on first use."""

    __slots__ = ("_module", "_name", "_target")

    def __init__(self, module_name: str, name: str):
        self._module, self._name, self._target = module_name, name, None

    def _get(self) -> Any:
        if self._target is None:
            self._target = getattr(_load(self._module), self._name)
        return self._target

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._get(), attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._get()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lazy {self._module}.{self._name}>"


def attr(module_name: str, name: str) -> Any:
    """``from module_name import name``, imported on first use (at once if already imported)."""
    mod = sys.modules.get(module_name)
    return getattr(mod, name) if mod is not None else LazyAttr(module_name, name)


def loaded(name: str) -> bool:
    """True when the real module ``name`` has been imported (no stand-in counts)."""
    return name in sys.modules
