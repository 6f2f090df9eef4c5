"""Verbatim text: language, tokens, sentiment and Plutchik emotions — all offline.

* **Language** (:func:`detect_language`): a function-word profile, as in Grefenstette (1995),
  "Comparing two language identification schemes": each word that is a stop word of a language
  votes for it (a word shared by k languages votes 1/k), plus letters only one of the languages
  uses (ß/ä/ö/ü for German, ç/é/è/ê/à/ù/œ for French, the "ij" digraph for Dutch). Too little
  evidence gives ``"und"`` (undetermined). No model or data is downloaded.
* **Tokens** (:func:`tokens`): lower-cased letter runs (Unicode), the detected language's stop
  words removed (:mod:`cxmetrics.stopwords`), at least two letters.
* **Sentiment** (:func:`sentiment`): English with VADER (Hutto & Gilbert 2014, the
  ``vaderSentiment`` package, MIT licence, lexicon shipped in the package); other languages from
  the ``positive``/``negative`` rows of the lexicon file when it has words for that language
  ((pos − neg) / (pos + neg) over the words found); otherwise no sentiment (NaN, counted).
* **Emotions** (:func:`emotions`): counts of lexicon words per Plutchik (1980) primary emotion.
  The lexicon is a CSV file ``word,emotion,language`` (see :func:`load_lexicon`). cxmetrics ships
  only a tiny sample lexicon written for its demo and tests (``lexicons/sample_emotions.csv``);
  widely used lexicons such as NRC EmoLex (Mohammad & Turney 2013) are not freely redistributable,
  so users who hold a licence point ``$CX_EMOTION_LEXICON`` (or the ``lexicon`` argument) at their
  own file in this format.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from cxmetrics.core import lazy
from cxmetrics.metrics.stopwords import STOPWORDS

np = lazy.module("numpy")
pd = lazy.module("pandas")

LANGUAGES = ("en", "fr", "nl", "de")
LANGUAGE_NAMES = {"en": "English", "fr": "French", "nl": "Dutch", "de": "German", "und": "undetermined"}
#: Plutchik's eight primary emotions, in his wheel's order.
PLUTCHIK = ("joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation")
POLARITY = ("positive", "negative")
SAMPLE_LEXICON = Path(__file__).resolve().parents[1] / "lexicons" / "sample_emotions.csv"
#: VADER's conventional cut-offs on the compound score (Hutto & Gilbert 2014).
POSITIVE_AT, NEGATIVE_AT = 0.05, -0.05

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_MARKS = {"de": re.compile(r"[äöüß]"), "fr": re.compile(r"[çéèêëàâîïôûùœ]"), "nl": re.compile(r"ij")}
_VOTES: dict[str, dict[str, float]] = {}
for _lang, _words in STOPWORDS.items():
    for _w in _words:
        _VOTES.setdefault(_w, {})[_lang] = 0.0
for _w, _langs in _VOTES.items():
    for _lang in _langs:
        _langs[_lang] = 1.0 / len(_langs)


class LexiconError(ValueError):
    """A lexicon file that does not follow the documented format (the message names the row)."""


def words(text: str | None) -> list[str]:
    """Lower-cased letter runs of ``text`` (apostrophe-joined words kept whole).

    >>> words("Parcel arrived 4 days LATE, again!")
    ['parcel', 'arrived', 'days', 'late', 'again']
    """
    return _WORD.findall(text.lower()) if text else []


def detect_language(text: str | None, *, min_votes: float = 1.0) -> str:
    """The most likely of :data:`LANGUAGES` for ``text``, or ``"und"`` below ``min_votes``.

    >>> detect_language("The parcel was late and the driver did not call")
    'en'
    >>> detect_language("Le colis est arrivé avec trois jours de retard")
    'fr'
    >>> detect_language("Het pakket kwam drie dagen te laat en de chauffeur belde niet")
    'nl'
    >>> detect_language("Das Paket kam drei Tage zu spät und der Fahrer hat nicht angerufen")
    'de'
    >>> detect_language("ok")
    'und'
    """
    if not text:
        return "und"
    low = text.lower()
    score = dict.fromkeys(LANGUAGES, 0.0)
    for w in _WORD.findall(low):
        for lang, v in _VOTES.get(w, {}).items():
            score[lang] += v
    for lang, pattern in _MARKS.items():
        score[lang] += 0.5 * min(len(pattern.findall(low)), 4)
    best = max(LANGUAGES, key=lambda lang: score[lang])
    ranked = sorted(score.values(), reverse=True)
    if ranked[0] < min_votes or ranked[0] == ranked[1]:
        return "und"
    return best


def tokens(text: str | None, language: str | None = None) -> list[str]:
    """Theme-bearing words: :func:`words` minus the stop words of ``language`` (detected when
    None; English stop words for an undetermined language), at least two letters.

    >>> tokens("The parcel arrived four days late, again.")
    ['parcel', 'arrived', 'four', 'days', 'late']
    >>> tokens("Le colis est arrivé avec trois jours de retard")
    ['colis', 'arrivé', 'trois', 'jours', 'retard']
    """
    lang = language or detect_language(text)
    stop = STOPWORDS.get(lang, STOPWORDS["en"])
    return [w for w in words(text) if len(w) > 1 and w not in stop]


# --------------------------------------------------------------------------- lexicon


def lexicon_path(path: str | os.PathLike | None = None) -> Path:
    """The lexicon file: the argument, else ``$CX_EMOTION_LEXICON``, else the shipped sample."""
    if path:
        return Path(path)
    env = os.environ.get("CX_EMOTION_LEXICON")
    return Path(env) if env else SAMPLE_LEXICON


def load_lexicon(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read and validate a word–emotion lexicon.

    Format: a UTF-8 CSV with the header ``word,emotion,language``; one row per (word, emotion);
    ``emotion`` one of :data:`PLUTCHIK` or ``positive``/``negative`` (used for sentiment outside
    English); ``language`` an ISO 639-1 code of :data:`LANGUAGES` or ``*`` for any language.
    Words are matched whole and case-insensitively. Raises :class:`LexiconError` naming the row.
    """
    p = lexicon_path(path)
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise LexiconError(f"cannot read lexicon {p.name}: {exc}") from exc
    if list(df.columns) != ["word", "emotion", "language"]:
        raise LexiconError(f"lexicon {p.name}: header must be word,emotion,language (found {','.join(df.columns)})")
    df = df.apply(lambda s: s.str.strip().str.lower())
    allowed = set(PLUTCHIK) | set(POLARITY)
    for i, row in enumerate(df.itertuples(index=False), start=2):
        if not row.word or " " in row.word:
            raise LexiconError(f"lexicon {p.name} row {i}: word must be one word")
        if row.emotion not in allowed:
            raise LexiconError(f"lexicon {p.name} row {i}: emotion {row.emotion!r} is not one of "
                               f"{', '.join(sorted(allowed))}")
        if row.language not in (*LANGUAGES, "*"):
            raise LexiconError(f"lexicon {p.name} row {i}: language {row.language!r} is not one of "
                               f"{', '.join(LANGUAGES)} or *")
    return df.drop_duplicates().reset_index(drop=True)


def _index(lexicon: pd.DataFrame) -> dict[tuple[str, str], tuple[str, ...]]:
    """(language, word) -> emotions; ``*`` rows are copied to every language."""
    out: dict[tuple[str, str], list[str]] = {}
    for w, e, lang in lexicon[["word", "emotion", "language"]].itertuples(index=False):
        for code in (LANGUAGES + ("und",) if lang == "*" else (lang,)):
            out.setdefault((code, w), []).append(e)
    return {k: tuple(v) for k, v in out.items()}


@functools.lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def annotate(texts: pd.Series, lexicon: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per text: ``language``, ``sentiment`` (−1 to 1, NaN when the language has no sentiment
    method), ``sentiment_method``, ``sentiment_label`` and one count column per Plutchik emotion
    plus ``emotion`` (the most frequent, ``"none"`` without a lexicon word; ties go to the first in
    :data:`PLUTCHIK`). The input is not changed; the index is kept.

    >>> lex = pd.DataFrame({"word": ["late", "angry"], "emotion": ["anger", "anger"], "language": ["en", "*"]})
    >>> a = annotate(pd.Series(["The parcel was late again and I am angry"]), lex)
    >>> a.loc[0, "language"], a.loc[0, "sentiment_label"], int(a.loc[0, "anger"]), a.loc[0, "emotion"]
    ('en', 'negative', 2, 'anger')
    """
    lex = load_lexicon() if lexicon is None else lexicon
    index = _index(lex)
    polar_langs = {lang for (lang, _), es in index.items() if set(es) & set(POLARITY)}
    rows = []
    for text in texts.fillna("").astype(str):
        lang = detect_language(text)
        counts = dict.fromkeys(PLUTCHIK + POLARITY, 0)
        for w in words(text):
            for e in index.get((lang, w), ()):
                counts[e] += 1
        if lang in ("en", "und") and text.strip():
            s, method = _vader().polarity_scores(text)["compound"], "VADER"
        elif lang in polar_langs:
            hits = counts["positive"] + counts["negative"]
            s = (counts["positive"] - counts["negative"]) / hits if hits else 0.0
            method = "lexicon polarity"
        else:
            s, method = float("nan"), "none"
        top = max(PLUTCHIK, key=lambda e: counts[e])
        rows.append({"language": lang, "sentiment": s, "sentiment_method": method,
                     **{e: counts[e] for e in PLUTCHIK}, "emotion": top if counts[top] else "none"})
    out = pd.DataFrame(rows, index=texts.index,
                       columns=["language", "sentiment", "sentiment_method", *PLUTCHIK, "emotion"])
    out["sentiment"] = out["sentiment"].astype(float)
    out["sentiment_label"] = np.select([out["sentiment"] >= POSITIVE_AT, out["sentiment"] <= NEGATIVE_AT],
                                       ["positive", "negative"], "neutral")
    out.loc[out["sentiment"].isna(), "sentiment_label"] = "no method"
    return out
