"""DuckDB-dialect SQL translated for Apache Spark SQL, with the few rewrites sqlglot leaves wrong.

The metric SQL is written once, in DuckDB's dialect (``$name`` parameters). For Spark it is
parsed and rewritten with sqlglot (``read="duckdb"``, ``write="spark"``); ``$name`` becomes Spark's
named parameter marker ``:name`` and ``?`` stays positional, so values are always bound by the
engine (``SparkSession.sql(query, args=…)``), never formatted into the text.

What needs care, construct by construct (each has a test in ``tests/test_spark.py`` comparing
DuckDB and Spark on literal data):

========================================  =====================================================
DuckDB                                    Spark (after :func:`translate`)
========================================  =====================================================
``$name``, ``?``                          ``:name``, ``?`` (bound through ``args``)
``date_diff('month'|'quarter'|'year')``   calendar arithmetic on year()/month(): DuckDB counts
                                          the boundaries crossed, Spark's ``DATEDIFF(MONTH …)``
                                          whole months elapsed (31 Jan → 1 Feb: 1 vs 0)
``date_diff('day', a, b)``                ``DATEDIFF(CAST(b AS DATE), CAST(a AS DATE))``
``1::UBIGINT << k``                       ``SHIFTLEFT(CAST(1 AS BIGINT), …)`` (no unsigned types)
``range(a, b, s)`` (end excluded)         ``SEQUENCE(a, b - 1, s)`` for an integer step s > 0
                                          (sqlglot writes ``b - s``: wrong unless b − a ≡ 0 mod s)
``to_months(n)``, ``to_days(n)``         ``MAKE_YM_INTERVAL(0, n)``, ``MAKE_DT_INTERVAL(n)``
``arg_max``, ``list_contains``,           ``MAX_BY``, ``ARRAY_CONTAINS``, ``FILTER (WHERE …)``,
``FILTER (WHERE …)``, ``GROUP BY ALL``,   ``GROUP BY ALL``, ``USING``, ``CAST(… AS DATE)``,
``USING``, ``::DATE``, ``INTERVAL``,      ``INTERVAL '12' MONTH``, ``BIT_COUNT``/``BIT_OR``:
``bit_count``/``bit_or``                  sqlglot's own mapping is right
``ORDER BY ALL``                          ``ORDER BY ALL NULLS LAST`` (DuckDB sorts NULLs last)
``round(x, n)`` of a DOUBLE                no equivalent: DuckDB rounds the binary value (63.735 is
                                          63.73499… → 63.73), Spark its shortest decimal string
                                          half up (63.74). Our SQL writes ``round(x * 100) / 100``
                                          instead, which both engines compute alike
``a / b``                                 ``CAST(a AS DOUBLE) / b``: DuckDB divides as DOUBLE, Spark
                                          keeps DECIMAL operands DECIMAL (at most 6 decimals)
``unnest(list)::T``                       ``EXPLODE(CAST(list AS ARRAY<T>))`` (no generator in
                                          an expression)
``SELECT unnest(a) x, unnest(b) y``       ``SELECT INLINE(ARRAYS_ZIP(a, b)) AS (x, y)`` (lists side
                                          by side; two generators would multiply)
``USING SAMPLE``                          refused (Spark's ``TABLESAMPLE (n ROWS)`` takes the
                                          first n rows): the SQL samples by ``ORDER BY md5(key)``
``list(x ORDER BY k)``                    ``TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT(k, x))), …)``:
                                          ``COLLECT_LIST`` keeps no order and drops NULLs (a
                                          struct holding a NULL is kept); one sort key
``list_slice(l, a, b)`` (a ≥ 1)           ``SLICE(l, a, GREATEST(b - a + 1, 0))`` (start, length)
``list_sum(l)``, ``list_count(l)``        ``AGGREGATE`` over the non-NULL elements (NULL when
                                          there is none), ``SIZE`` of them
========================================  =====================================================

Two semantic differences are settled by the session rather than the text (see
:mod:`cxmetrics.engines.spark`): ANSI mode is off, so ``x / 0`` is NULL (DuckDB gives ±inf for
floating division) rather than an error, and the session time zone is UTC.

References
----------
sqlglot: https://sqlglot.com (``transpile``, expression ``transform``).
Spark SQL parameterized queries: ``SparkSession.sql(sqlQuery, args)``, PySpark 3.4+ (named ``:x``
markers from a dict, positional ``?`` from a list).
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp

#: unit -> (a function of the date giving its whole number of units since year 0, multiplier)
_CALENDAR_UNITS = {"MONTH": ("MONTH", 12), "QUARTER": ("QUARTER", 4), "YEAR": (None, 1)}


def _unit(node: exp.Expression) -> str:
    unit = node.args.get("unit")
    return (unit.name if unit is not None else "DAY").upper().rstrip("S")


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _ordinal(e: exp.Expression, unit: str) -> exp.Expression:
    """(year(e) * k + part(e)): the unit's ordinal number, e.g. months since year 0."""
    part, per_year = _CALENDAR_UNITS[unit]
    year = _call("YEAR", e.copy())
    if part is None:
        return year
    return exp.Paren(this=exp.Add(this=exp.Mul(this=year, expression=exp.Literal.number(per_year)),
                                  expression=_call(part, e.copy())))


def _date_diff(node: exp.DateDiff) -> exp.Expression:
    """DuckDB's date_diff counts the unit boundaries crossed from start to end."""
    start, end, unit = _sub(node.expression), _sub(node.this), _unit(node)
    if unit == "DAY":
        return _call("DATEDIFF", exp.cast(end, "DATE"), exp.cast(start, "DATE"))
    if unit in _CALENDAR_UNITS:
        return exp.Paren(this=exp.Sub(this=_ordinal(end, unit), expression=_ordinal(start, unit)))
    return node  # finer units (hour, minute …) are not used on the contract's DATE columns


def _series(node: exp.GenerateSeries) -> exp.Expression:
    """DuckDB's range(a, b, s) excludes b; Spark's SEQUENCE includes its end."""
    if not node.args.get("is_end_exclusive"):
        return node
    step = node.args.get("step")
    step_value = 1 if step is None else (int(step.name) if isinstance(step, exp.Literal) and step.is_int else None)
    if step_value is None or step_value <= 0:
        raise ValueError("range() with a non-literal or negative step has no Spark translation here")
    end = exp.Sub(this=_sub(node.args["end"]), expression=exp.Literal.number(1))
    return exp.GenerateSeries(start=_sub(node.args["start"]), end=end, step=step.copy() if step else None,
                              is_end_exclusive=False)


def _cast_inside(node: exp.Cast) -> exp.Expression:
    """``unnest(list)::T`` casts each element; Spark allows no generator inside an expression, so
    the cast moves onto the array: ``EXPLODE(CAST(list AS ARRAY<T>))``."""
    gen = node.this
    to = exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[node.args["to"].copy()], nested=True)
    return gen.__class__(this=exp.Cast(this=_sub(gen.this), to=to)) if isinstance(gen, exp.Explode) else \
        exp.Unnest(expressions=[exp.Cast(this=_sub(e), to=to) for e in gen.expressions])


def _zip_unnests(node: exp.Select) -> exp.Expression:
    """``SELECT unnest(a) AS x, unnest(b) AS y``: DuckDB unnests lists side by side (the i-th
    elements together, NULL past the shorter one); Spark would multiply two generators. Written
    ``SELECT INLINE(ARRAYS_ZIP(a, b)) AS (x, y)``, which pairs them the same way."""
    out = node.copy()
    arrays = [_sub(e.this.this) for e in node.expressions]
    gen = _call("INLINE", _call("ARRAYS_ZIP", *arrays))
    out.set("expressions", [exp.Aliases(this=gen, expressions=[exp.to_identifier(e.alias) for e in node.expressions])])
    return out.transform(_rewrite)


def _side_by_side(node: exp.Select) -> bool:
    """A projection of two or more aliased unnests of lists and nothing else."""
    es = node.expressions
    return len(es) >= 2 and all(isinstance(e, exp.Alias) and isinstance(e.this, exp.Explode) for e in es)


def _lambda(var: str, body: exp.Expression) -> exp.Lambda:
    return exp.Lambda(this=body, expressions=[exp.to_identifier(var)])


def _non_null(lst: exp.Expression) -> exp.Expression:
    """``FILTER(lst, x -> x IS NOT NULL)``."""
    return _call("FILTER", lst, _lambda("lv_x", exp.Not(this=exp.Is(this=exp.column("lv_x"), expression=exp.Null()))))


def _ordered_list(node: exp.ArrayAgg) -> exp.Expression:
    """``list(x ORDER BY k)``: the (k, x) pairs collected, sorted by k, and x taken out of them."""
    order = node.this
    keys = order.expressions
    if len(keys) != 1 or keys[0].args.get("desc"):
        raise ValueError("list(… ORDER BY …) has a Spark translation here for one ascending key only")
    pairs = _call("COLLECT_LIST", _call("STRUCT", exp.alias_(_sub(keys[0].this), "k"),
                                        exp.alias_(_sub(order.this), "v")))
    return _call("TRANSFORM", _call("ARRAY_SORT", pairs), _lambda("lv_s", exp.Dot(this=exp.column("lv_s"),
                                                                                    expression=exp.to_identifier("v"))))


def _list_function(node: exp.Anonymous) -> exp.Expression:
    name, args = str(node.this).lower(), [_sub(e) for e in node.expressions]
    if name == "list_slice":
        lst, lo, hi = args
        length = exp.Add(this=exp.Sub(this=exp.Paren(this=hi), expression=exp.Paren(this=lo.copy())),
                         expression=exp.Literal.number(1))
        return _call("SLICE", lst, lo, _call("GREATEST", length, exp.Literal.number(0)))
    if name == "list_count":
        return _call("SIZE", _non_null(args[0]))
    # list_sum: NULL when no element is non-NULL, as in DuckDB
    kept = _non_null(args[0])
    total = _call("AGGREGATE", kept.copy(), exp.cast(exp.Literal.number(0), "DOUBLE"),
                  exp.Lambda(this=exp.Add(this=exp.column("lv_a"), expression=exp.column("lv_x")),
                             expressions=[exp.to_identifier("lv_a"), exp.to_identifier("lv_x")]))
    return exp.Case(ifs=[exp.If(this=exp.GT(this=_call("SIZE", kept), expression=exp.Literal.number(0)), true=total)])


_LIST_FUNCTIONS = ("list_slice", "list_count", "list_sum")


def _sub(node: exp.Expression) -> exp.Expression:
    """A copy of a child of a rewritten node, itself rewritten (a replaced node's children are not
    visited again by ``transform``)."""
    return node.copy().transform(_rewrite)


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Div):
        return exp.Div(this=exp.cast(_sub(node.this), "DOUBLE"), expression=_sub(node.expression))
    if isinstance(node, exp.DateDiff):
        return _date_diff(node)
    if isinstance(node, exp.GenerateSeries):
        return _series(node)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Explode | exp.Unnest):
        return _cast_inside(node)
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.UBIGINT:
        return exp.DataType.build("BIGINT")
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "to_months":
        return _call("MAKE_YM_INTERVAL", exp.Literal.number(0), *(_sub(e) for e in node.expressions))
    if isinstance(node, exp.Anonymous) and str(node.this).lower() in _LIST_FUNCTIONS:
        return _list_function(node)
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
        return _ordered_list(node)
    if isinstance(node, exp.ToDays):
        return _call("MAKE_DT_INTERVAL", _sub(node.this))
    if isinstance(node, exp.Select) and isinstance(node.args.get("sample"), exp.TableSample):
        # Spark's TABLESAMPLE (n ROWS) takes the first n rows, and a random draw differs by engine
        raise ValueError("USING SAMPLE has no Spark translation here: sample deterministically "
                         "(ORDER BY md5(key) LIMIT n), as the Cox check does")
    if isinstance(node, exp.Select) and _side_by_side(node):
        return _zip_unnests(node)
    return node


def parse(sql: str) -> exp.Expression:
    """One DuckDB-dialect statement as a sqlglot tree (several statements are refused)."""
    trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    if len(trees) != 1:
        raise ValueError(f"expected one SQL statement, got {len(trees)}")
    return trees[0]


def _unique_nested_ctes(tree: exp.Expression) -> exp.Expression:
    """Give the CTEs of every nested WITH a name of their own. sqlglot writes Spark SQL with all
    CTEs moved to the top, so a relation bound twice into one query (or a relation's ``bounds``
    beside the query's own) would define a name twice — or silently read the other definition.

    >>> to_spark(parse("WITH a AS (SELECT 1 AS x) SELECT * FROM (WITH a AS (SELECT 2 AS x) SELECT x FROM a) s, a"))
    'WITH a AS (SELECT 1 AS x), a__1 AS (SELECT 2 AS x) SELECT * FROM (SELECT x FROM a__1) AS s, a'
    """
    n = 0
    for with_ in list(tree.find_all(exp.With)):
        scope = with_.parent
        if scope is tree or scope is None:
            continue
        for cte in with_.expressions:
            n += 1
            old, new = cte.alias, f"{cte.alias}__{n}"
            for t in scope.find_all(exp.Table):
                if t.name == old and not t.args.get("db"):
                    t.set("this", exp.to_identifier(new))
            for c in scope.find_all(exp.Column):
                if c.table == old:
                    c.set("table", exp.to_identifier(new))
            cte.set("alias", exp.TableAlias(this=exp.to_identifier(new)))
    return tree


def to_spark(tree: exp.Expression) -> str:
    """A parsed DuckDB-dialect tree written as Spark SQL, with the rewrites in the module docs."""
    return _unique_nested_ctes(tree.copy()).transform(_rewrite).sql(dialect="spark")


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """DuckDB-dialect ``sql`` as Spark SQL (``$name`` → ``:name``), cached by text.

    Examples
    --------
    >>> translate("SELECT date_diff('month', a, b) FROM t WHERE s = $segment")
    'SELECT ((YEAR(b) * 12 + MONTH(b)) - (YEAR(a) * 12 + MONTH(a))) FROM t WHERE s = :segment'
    >>> translate("SELECT unnest(range(0, 37, 3)) AS k")
    'SELECT EXPLODE(SEQUENCE(0, 37 - 1, 3)) AS k'
    """
    return to_spark(parse(sql))
