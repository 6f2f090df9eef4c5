"""Themes of the verbatims: discovered by a topic model, kept as a versioned codebook, classified in SQL.

Discovery (:func:`discover`) fits, per detected language, a non-negative matrix factorisation of
the TF-IDF matrix (Lee & Seung 1999; scikit-learn ``NMF`` with NNDSVDa start, Boutsidis & Gallopoulos
2008, seeded, so deterministic) on a seeded sample of at most ``sample`` verbatims. Each theme is
labelled by its top terms and shown with example verbatims. Its *keywords* are the top terms the
theme owns (a term belongs to the theme where its weight is largest), so the codebook stays readable.

The **codebook** (theme → keywords or phrases) is what classifies: a verbatim carries every theme
one of whose keywords it contains as a whole word, case-insensitively (several themes per verbatim
are allowed). The analyst renames, merges and splits themes (:func:`rename`, :func:`merge`,
:func:`split`, or rows of a table with :func:`from_rows`) and saves them (:func:`save`): append-only
versions in ``codebook_versions``/``codebook``, audited. An imported ``theme`` column wins: a
response with a theme keeps that one theme. Classification runs in DuckDB (``regexp_matches`` with
bound patterns or, for one-word keywords, a join of the verbatims' tokens, :func:`tagged_sql`), so
every verbatim is classified, not just the sample.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import duckdb

from cxmetrics import store
from cxmetrics.core import lazy, roles
from cxmetrics.core.filters import Filters
from cxmetrics.metrics import text
from cxmetrics.store import schema

np = lazy.module("numpy")
pd = lazy.module("pandas")

Codebook = dict[str, tuple[str, ...]]
_TOKEN = re.compile(r"[^\W_]+")  # one run of Unicode letters and digits, as DuckDB's [\pL\pN]+
MAX_THEMES, MAX_KEYWORDS, MAX_NAME, MAX_KEYWORD = 200, 200, 80, 100
METHOD = ("Themes discovered per detected language by NMF on TF-IDF (scikit-learn, NNDSVDa start, seeded) "
          "on a seeded random sample; verbatims classified by the codebook: a theme applies when the verbatim "
          "contains one of its keywords as a whole word (case-insensitive); an imported theme column wins.")
REFERENCE = ("Lee & Seung (1999), Learning the parts of objects by non-negative matrix factorization, Nature 401; "
             "Boutsidis & Gallopoulos (2008), SVD based initialization for NMF, Pattern Recognition 41.")


class CodebookError(ValueError):
    """A codebook that cannot be saved (the message says which theme or keyword)."""


@dataclass(frozen=True)
class Discovery:
    """Discovered themes: one row per theme (``theme, language, label, keywords, top_terms, docs,
    share_of_sample, examples``) and the codebook they suggest."""

    themes: pd.DataFrame
    codebook: Codebook
    n_sample: int
    n_total: int
    languages: pd.DataFrame
    seed: int
    method: str = METHOD
    warnings: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- discovery


def _where(filters: Filters) -> tuple[str, dict]:
    where, params = filters.where(date_col="r.responded_on", customer_id_col="r.customer_id",
                                  department_col="r.department")
    return f"{where} AND r.verbatim IS NOT NULL AND length(trim(r.verbatim)) > 0", params


def sample_query(filters: Filters, sample: int, seed: int, columns: str = "r.response_id, r.verbatim") -> store.Query:
    """A seeded random sample of verbatims: ordered by md5(response_id ‖ seed), first ``sample``.
    ``columns`` is a literal written in cxmetrics."""
    cond, params = _where(filters)
    params.update({"sample": int(sample), "seed": str(int(seed))})
    return store.Query("verbatim_sample", f"""
SELECT {columns} FROM survey_responses r WHERE {cond}
ORDER BY md5(r.response_id || $seed) LIMIT $sample""", params)


def _fit_language(docs: list[str], lang: str, n_themes: int, seed: int, n_keywords: int):
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=lambda d: text.tokens(d, lang), min_df=2, max_df=0.95, sublinear_tf=True)
    try:
        x = vec.fit_transform(docs)
    except ValueError:  # no term in two documents
        return []
    terms = np.asarray(vec.get_feature_names_out())
    k = int(min(n_themes, max(1, len(docs) // 10), x.shape[1] - 1))
    if k < 1:
        return []
    model = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=500)
    with warnings.catch_warnings():  # sklearn's loss report takes sqrt of a rounding-error negative
        warnings.simplefilter("ignore", RuntimeWarning)
        w = model.fit_transform(x)
    h = model.components_
    owner = h.argmax(axis=0)
    main = w.argmax(axis=1)
    out = []
    for t in range(k):
        order = np.argsort(-h[t])
        top = [str(terms[j]) for j in order[:8] if h[t, j] > 0]
        own = [str(terms[j]) for j in order if owner[j] == t and h[t, j] >= 0.2 * h[t].max()][:n_keywords]
        if not own:
            continue
        mine = np.flatnonzero(main == t)
        best = mine[np.argsort(-w[mine, t])] if mine.size else np.argsort(-w[:, t])[:3]
        examples = list(dict.fromkeys(docs[i] for i in best))[:3]
        out.append({"language": lang, "label": " · ".join(top[:3]), "keywords": tuple(own), "top_terms": tuple(top),
                    "docs": int(mine.size), "examples": tuple(examples)})
    return out


def discover(con: duckdb.DuckDBPyConnection, filters: Filters, *, n_themes: int = 12, sample: int = 20_000,
             seed: int = 0, min_docs: int = 30, n_keywords: int = 6) -> Discovery:
    """Discover up to ``n_themes`` themes per language with at least ``min_docs`` sampled verbatims.

    Parameters
    ----------
    n_themes : themes per language (the NMF rank; fewer when a language has few verbatims). More
        themes than the data hold give near-duplicates for the analyst to merge.
    sample : at most this many verbatims are fitted (seeded sample, :func:`sample_query`).
    seed : seeds the sample and the NMF start, so the same data give the same themes.
    n_keywords : keywords per theme in the suggested codebook.

    References
    ----------
    Lee & Seung (1999); Boutsidis & Gallopoulos (2008); Grefenstette (1995) for the language profile.
    """
    df = store.run(con, sample_query(filters, sample, seed))
    cond, params = _where(filters)
    total = int(store.scalar(con, f"SELECT count(*) FROM survey_responses r WHERE {cond}", params) or 0)
    docs = df["verbatim"].astype(str).tolist()
    detected = pd.Series([text.detect_language(d) for d in docs], dtype=object)
    lang_counts = detected.value_counts()
    known = lang_counts.drop("und", errors="ignore")
    # a verbatim too short to tell (no function word) is fitted with the survey's main language
    langs = detected.replace("und", known.index[0]).tolist() if len(known) else detected.tolist()
    lang_counts = pd.Series(langs, dtype=object).value_counts()
    rows, notes = [], []
    n_und = int((detected == "und").sum())
    if n_und and len(known):
        notes.append(f"{n_und:,} verbatims too short to tell their language were fitted as "
                     f"{text.LANGUAGE_NAMES[known.index[0]]}.")
    for lang, n in lang_counts.items():
        if n < min_docs:
            notes.append(f"{n} {text.LANGUAGE_NAMES.get(lang, lang)} verbatims: too few to discover themes "
                            f"(minimum {min_docs}).")
            continue
        sub = [d for d, g in zip(docs, langs, strict=True) if g == lang]
        rows += _fit_language(sub, lang, n_themes, seed, n_keywords)
    # a keyword owned by themes of several languages ("app", "service") would tie them together:
    # leave it out of the suggested codebook (a theme keeps its best keyword at least)
    langs_of: dict[str, set[str]] = {}
    for r in rows:
        for k in r["keywords"]:
            langs_of.setdefault(k, set()).add(r["language"])
    for r in rows:
        r["keywords"] = tuple(k for k in r["keywords"] if len(langs_of[k]) == 1) or r["keywords"][:1]
    themes = pd.DataFrame(rows, columns=["language", "label", "keywords", "top_terms", "docs", "examples"])
    themes.insert(0, "theme", [f"{r.label} [{r.language}]" for r in themes.itertuples()])
    themes["share_of_sample"] = themes["docs"] / max(len(docs), 1)
    languages = pd.DataFrame({"language": lang_counts.index, "verbatims": lang_counts.to_numpy(),
                              "detected": detected.value_counts().reindex(lang_counts.index).fillna(0).astype(int).to_numpy()})
    languages["name"] = languages["language"].map(text.LANGUAGE_NAMES)
    if len(docs) < total:
        notes.append(f"Themes were fitted on a random sample of {len(docs):,} of {total:,} verbatims; "
                        "the codebook classifies all of them.")
    cb = {r.theme: tuple(r.keywords) for r in themes.itertuples()}
    return Discovery(themes, cb, len(docs), total, languages, seed, warnings=tuple(notes))


# --------------------------------------------------------------------------- codebook


def _clean_keyword(k: str) -> str:
    return re.sub(r"\s+", " ", str(k).strip().lower())


def validate(cb: Mapping[str, Iterable[str]]) -> Codebook:
    """A clean codebook (names stripped, keywords lower-cased and de-duplicated) or
    :class:`CodebookError` listing every problem.

    >>> validate({" Late delivery ": ["Late", "te laat", "late"]})
    {'Late delivery': ('late', 'te laat')}
    """
    out: Codebook = {}
    problems = []
    if len(cb) > MAX_THEMES:
        problems.append(f"at most {MAX_THEMES} themes")
    for name, kws in cb.items():
        n = str(name).strip()
        if not n or len(n) > MAX_NAME:
            problems.append(f"theme name {n!r} must have 1 to {MAX_NAME} characters")
        elif n.startswith(schema.FORMULA_PREFIXES):
            problems.append(f"theme name {n!r} may not start with {n[0]!r}")
        words = tuple(dict.fromkeys(k for k in (_clean_keyword(k) for k in kws) if k))
        if not words:
            problems.append(f"theme {n!r} has no keyword")
        if len(words) > MAX_KEYWORDS or any(len(k) > MAX_KEYWORD for k in words):
            problems.append(f"theme {n!r}: at most {MAX_KEYWORDS} keywords of at most {MAX_KEYWORD} characters")
        out[n] = tuple(dict.fromkeys(out.get(n, ()) + words))
    if problems:
        raise CodebookError("; ".join(problems))
    return out


def rename(cb: Mapping[str, Iterable[str]], old: str, new: str) -> Codebook:
    """The codebook with theme ``old`` called ``new`` (merged into ``new`` if that exists)."""
    if old not in cb:
        raise CodebookError(f"no theme {old!r}")
    return merge(cb, [old], new)


def merge(cb: Mapping[str, Iterable[str]], names: Iterable[str], new: str) -> Codebook:
    """The codebook with themes ``names`` replaced by one theme ``new`` holding all their keywords.

    >>> merge({"a": ["late"], "b": ["retard"], "c": ["price"]}, ["a", "b"], "Late delivery")
    {'c': ('price',), 'Late delivery': ('late', 'retard')}
    """
    names = list(names)
    missing = [n for n in names if n not in cb]
    if missing:
        raise CodebookError(f"no theme {', '.join(map(repr, missing))}")
    out = {k: tuple(v) for k, v in cb.items() if k not in names}
    out[new] = tuple(dict.fromkeys(tuple(out.get(new, ())) + tuple(k for n in names for k in cb[n])))
    return validate(out)


def split(cb: Mapping[str, Iterable[str]], name: str, parts: Mapping[str, Iterable[str]]) -> Codebook:
    """The codebook with theme ``name`` split into ``parts`` (new name → its keywords; every
    keyword of a part must be one of the theme's; keywords left out stay with ``name``)."""
    if name not in cb:
        raise CodebookError(f"no theme {name!r}")
    own = {_clean_keyword(k) for k in cb[name]}
    out = {k: tuple(v) for k, v in cb.items()}
    moved: set[str] = set()
    for new, kws in parts.items():
        ks = tuple(_clean_keyword(k) for k in kws)
        foreign = [k for k in ks if k not in own]
        if foreign:
            raise CodebookError(f"{', '.join(foreign)} not keywords of {name!r}")
        out[new] = tuple(dict.fromkeys(tuple(out.get(new, ())) + ks))
        moved |= set(ks)
    rest = tuple(k for k in cb[name] if _clean_keyword(k) not in moved)
    if rest:
        out[name] = rest
    else:
        out.pop(name)
    return validate(out)


def from_rows(rows: pd.DataFrame) -> Codebook:
    """A codebook from an edited table with columns ``theme`` and ``keywords`` (comma-separated):
    rows with the same theme are merged; rows without a theme are dropped."""
    cb: dict[str, tuple[str, ...]] = {}
    for name, kws in rows[["theme", "keywords"]].itertuples(index=False):
        if name is None or (isinstance(name, float) and np.isnan(name)) or not str(name).strip():
            continue
        items = kws if isinstance(kws, (list, tuple)) else str(kws or "").split(",")
        cb[str(name).strip()] = cb.get(str(name).strip(), ()) + tuple(items)
    return validate(cb)


def to_rows(cb: Mapping[str, Iterable[str]]) -> pd.DataFrame:
    """The codebook as an editable table (``theme``, ``keywords`` comma-separated)."""
    return pd.DataFrame({"theme": list(cb), "keywords": [", ".join(v) for v in cb.values()]},
                        columns=["theme", "keywords"])


def save(con: duckdb.DuckDBPyConnection, cb: Mapping[str, Iterable[str]], *, actor: str, role: str,
         note: str = "") -> int:
    """Save ``cb`` as the next codebook version (analyst role): validated, one transaction, the data
    version moved (cached results are recomputed), audited. Returns the version."""
    if not roles.can(role, "edit_codebook"):
        store.audit(con, actor=actor, role=role, action="codebook_save", outcome="refused",
                    detail="role may not edit the codebook")
        raise CodebookError(f"the {role} role may not edit the codebook (analyst only)")
    clean = validate(cb)
    if not clean:
        raise CodebookError("a codebook needs at least one theme")
    with store.transaction(con):
        version = int(store.scalar(con, "SELECT coalesce(max(version), 0) + 1 FROM codebook_versions"))
        con.execute("INSERT INTO codebook_versions VALUES (?, ?, ?, ?, ?)",
                    [version, store.now(), actor, note[:500] or None, len(clean)])
        rows = [(version, t, k) for t, ks in clean.items() for k in ks]
        con.executemany("INSERT INTO codebook VALUES (?, ?, ?)", rows)
        store.bump_version(con, ["codebook"])
        store.audit(con, actor=actor, role=role, action="codebook_save", object=f"codebook v{version}",
                    outcome="accepted", detail=json.dumps({"themes": len(clean), "keywords": len(rows)}))
    return version


def current(con: duckdb.DuckDBPyConnection, version: int | None = None) -> tuple[int | None, Codebook]:
    """The saved codebook (the latest version, or ``version``) as (version, codebook); (None, {})
    when none was saved."""
    v = version if version is not None else store.scalar(con, "SELECT max(version) FROM codebook_versions")
    if v is None:
        return None, {}
    rows = con.execute("SELECT theme, keyword FROM codebook WHERE version = ? ORDER BY theme, keyword",
                       [int(v)]).fetchall()
    cb: dict[str, tuple[str, ...]] = {}
    for t, k in rows:
        cb[t] = cb.get(t, ()) + (k,)
    return int(v), cb


def history(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every saved version, newest first."""
    return con.execute("SELECT version, saved_at, saved_by, themes, note FROM codebook_versions "
                       "ORDER BY version DESC").df()


# --------------------------------------------------------------------------- classification


def pattern(keywords: Iterable[str]) -> str:
    """The RE2 pattern for a theme: any keyword as a whole word (Unicode letters and digits are
    word characters; inner spaces match any whitespace).

    >>> pattern(["late", "te laat"])
    '(^|[^\\\\pL\\\\pN])(late|te\\\\s+laat)($|[^\\\\pL\\\\pN])'
    """
    def esc(k: str) -> str:
        k = re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", _clean_keyword(k))
        return k.replace(" ", r"\s+")

    return r"(^|[^\pL\pN])(" + "|".join(esc(k) for k in keywords) + r")($|[^\pL\pN])"


def tagged_sql(filters: Filters, cb: Mapping[str, Iterable[str]],
               con: duckdb.DuckDBPyConnection | None = None) -> tuple[str, dict]:
    """SQL for two relations, to prefix a query with: ``v`` (the verbatims in the filters:
    response_id, customer_id, responded_on, nps, touchpoint, department, imported theme) and
    ``tagged`` (response_id, theme: one row per theme a verbatim carries).

    A keyword that is one run of letters and digits matches a verbatim exactly when one of the
    verbatim's tokens (its maximal runs of letters and digits, lower-cased) equals it, so such
    keywords are joined to the tokens (bound lists ``$kw_words``, ``$kw_themes``); the other keywords
    (phrases, words with an apostrophe or a sign) are tested with their theme's :func:`pattern`
    (bound ``$t_i``, ``$p_i``: constants, so each regular expression is compiled once per query). Given
    ``con`` inside a page call (:func:`cxmetrics.store.memoized`), both relations are materialised
    once as temporary tables and the SQL reads those (no parameters left)."""
    cond, params = _where(filters)
    # a keyword that is one run of letters and digits matches exactly the verbatim's tokens equal to
    # it (the pattern's word boundaries are what ends a run), so those are joined as tokens — one
    # tokenisation per verbatim and a hash join, whatever the number of themes; any other keyword
    # (a phrase, "j'ai", "a+b") is tested with its theme's regular expression
    words, other = [], {}
    for n, kws in cb.items():
        for k in (_clean_keyword(k) for k in kws):
            if _TOKEN.fullmatch(k):
                words.append((k, n))
            elif k:
                other.setdefault(n, []).append(k)
    parts = []
    if words:
        params["kw_words"], params["kw_themes"] = [w for w, _ in words], [n for _, n in words]
        parts.append(r"""SELECT x.response_id, k.theme
           FROM (SELECT response_id, unnest(regexp_extract_all(text, '[\pL\pN]+')) AS tok FROM v WHERE imported IS NULL) x
           JOIN (SELECT unnest($kw_words) AS keyword, unnest($kw_themes) AS theme) k ON k.keyword = x.tok""")
    cases = []
    for i, n in enumerate(other):
        params[f"t_{i}"], params[f"p_{i}"] = n, pattern(other[n])
        cases.append(f"CASE WHEN regexp_matches(text, $p_{i}) THEN $t_{i} END")  # generated parameter names
    if cases:
        parts.append("SELECT response_id, unnest(list_filter([" + ", ".join(cases) + "], lambda x: x IS NOT NULL)) "
                     "AS theme FROM v WHERE imported IS NULL")
    hits = ("SELECT DISTINCT response_id, theme FROM (" + " UNION ALL ".join(parts) + ")") if parts \
        else "SELECT response_id, imported AS theme FROM v WHERE FALSE"
    sql = f"""
WITH v AS (SELECT r.response_id, r.customer_id, r.responded_on, r.nps,
                  coalesce(r.touchpoint, '(relationship)') AS touchpoint, r.department, r.theme AS imported,
                  lower(r.verbatim) AS text
           FROM survey_responses r WHERE {cond}),
tagged AS ({hits}
           UNION ALL SELECT v.response_id, v.imported AS theme FROM v WHERE v.imported IS NOT NULL)"""
    if con is not None:
        v = store.temp_table(con, "cx_voice_v_", store.Query("voice_v", sql + " SELECT * FROM v", params))
        if v:
            t = store.temp_table(con, "cx_voice_t_", store.Query("voice_tagged", sql + " SELECT * FROM tagged", params))
            return f"WITH v AS (SELECT * FROM {v}), tagged AS (SELECT * FROM {t})", {}  # names made by temp_table
    return sql, params


def counts(con: duckdb.DuckDBPyConnection, filters: Filters, cb: Mapping[str, Iterable[str]]) -> pd.DataFrame:
    """Verbatims carrying each theme (``theme, mentions``), most frequent first."""
    sql, params = tagged_sql(filters, cb)
    return store.run(con, store.Query("theme_counts", sql + """
SELECT theme, count(*) AS mentions FROM tagged GROUP BY theme ORDER BY mentions DESC, theme""", params))
