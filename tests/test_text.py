"""Language, tokens, sentiment and emotions: unit tests on literal sentences written for these tests."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cxmetrics.metrics import text

SENTENCES = {
    "en": ["I would like to know where my order is", "They told me that it was on the way but it never came",
           "The shop is nice and the people are helpful"],
    "fr": ["Je voudrais savoir où est ma commande", "Ils m'ont dit que c'était en route mais rien n'est arrivé",
           "Le magasin est agréable et les vendeurs sont serviables"],
    "nl": ["Ik wil graag weten waar mijn bestelling is", "Ze zeiden dat het onderweg was maar het kwam nooit",
           "De winkel is mooi en de mensen zijn behulpzaam"],
    "de": ["Ich möchte wissen wo meine Bestellung ist", "Sie haben gesagt dass es unterwegs ist aber es kam nie",
           "Der Laden ist schön und die Leute sind hilfsbereit"],
}


@pytest.mark.parametrize("lang", text.LANGUAGES)
def test_language_detection(lang):
    assert [text.detect_language(s) for s in SENTENCES[lang]] == [lang] * 3


def test_tokens_drop_the_languages_stop_words():
    assert text.tokens("Ich möchte wissen wo meine Bestellung ist") == ["möchte", "wissen", "bestellung"]
    assert text.tokens("De winkel is mooi en de mensen zijn behulpzaam") == ["winkel", "mooi", "mensen", "behulpzaam"]
    assert "not" in text.tokens("It did not arrive")  # negations stay


def test_lexicon_file_is_validated(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("word,feeling,language\nlate,anger,en\n", encoding="utf-8")
    with pytest.raises(text.LexiconError, match="header"):
        text.load_lexicon(bad)
    bad.write_text("word,emotion,language\nlate,anger,en\nslow,boredom,en\n", encoding="utf-8")
    with pytest.raises(text.LexiconError, match="row 3: emotion 'boredom'"):
        text.load_lexicon(bad)
    bad.write_text("word,emotion,language\nlate,anger,es\n", encoding="utf-8")
    with pytest.raises(text.LexiconError, match="row 2: language 'es'"):
        text.load_lexicon(bad)


def test_user_lexicon_from_the_environment(tmp_path, monkeypatch):
    lex = tmp_path / "mine.csv"
    lex.write_text("word,emotion,language\nonderweg,anticipation,nl\nnooit,sadness,nl\nnooit,negative,nl\n",
                   encoding="utf-8")
    monkeypatch.setenv("CX_EMOTION_LEXICON", str(lex))
    a = text.annotate(pd.Series(SENTENCES["nl"][1:2]))
    assert int(a.loc[0, "anticipation"]) == 1 and int(a.loc[0, "sadness"]) == 1
    assert a.loc[0, "emotion"] == "sadness"  # a tie goes to the first in Plutchik's order
    assert a.loc[0, "sentiment"] == -1.0 and a.loc[0, "sentiment_method"] == "lexicon polarity"
    # German has no polarity words in this lexicon: no sentiment rather than a made-up one
    g = text.annotate(pd.Series(SENTENCES["de"][:1]))
    assert math.isnan(g.loc[0, "sentiment"]) and g.loc[0, "sentiment_label"] == "no method"


def test_english_sentiment_is_vader():
    a = text.annotate(pd.Series(["The staff were wonderful and kind", "Terrible service, I am very angry"]))
    assert list(a["sentiment_label"]) == ["positive", "negative"] and set(a["sentiment_method"]) == {"VADER"}


def test_shipped_sample_lexicon_is_valid_and_small():
    lex = text.load_lexicon(text.SAMPLE_LEXICON)
    assert set(lex["emotion"]) <= set(text.PLUTCHIK) | set(text.POLARITY)
    assert len(lex) < 200  # a sample written for the demo, not a real lexicon
