"""The demo company's verbatims: planted themes, languages and emotions (issue 22).

Drawn from their own random stream (``numpy.random.default_rng([seed, STREAM])``) so that no other
planted figure of :mod:`cxmetrics.demo` changes: the demo decides *which* responses carry text (as
before) and this module decides *what* they say. Planted truths the tests recover:

* languages: ``LANGUAGE_P`` of verbatims in English, French, Dutch and German;
* themes: ``THEME_BY`` — a detractor's verbatim is about their touchpoint's failure (late delivery
  on delivery, billing error on billing, phone wait on the contact centre), passives talk about
  price, promoters about friendly staff or the easy app; ``SECOND_THEME_P`` add a second theme;
* emotions: each theme's sentences carry one Plutchik emotion (``THEME_EMOTION``) in every language;
* what moved: from ``SURGE_FROM`` (the last quarter) a further ``SURGE_P`` of non-promoter
  verbatims are about late delivery, so its share rises in the last quarter.
"""

from __future__ import annotations

import datetime as dt

from cxmetrics.core import lazy

np = lazy.module("numpy")

STREAM = 22  # the issue that planted these verbatims; any constant distinct from other streams
LANGUAGE_P = {"en": 0.6, "fr": 0.15, "nl": 0.15, "de": 0.10}
SECOND_THEME_P = 0.15
SURGE_P = 0.3
THEME_EMOTION = {"late delivery": "anger", "billing error": "disgust", "phone wait": "sadness",
                 "price": "surprise", "friendly staff": "trust", "easy app": "joy"}
#: (NPS group, touchpoint) -> theme probabilities; touchpoint None = any other.
THEME_BY = {
    ("detractor", "delivery"): {"late delivery": 0.8, "price": 0.2},
    ("detractor", "billing"): {"billing error": 0.8, "price": 0.2},
    ("detractor", "contact_centre"): {"phone wait": 0.8, "price": 0.2},
    ("detractor", None): {"late delivery": 0.35, "billing error": 0.25, "phone wait": 0.25, "price": 0.15},
    ("passive", None): {"price": 0.6, "phone wait": 0.2, "easy app": 0.1, "friendly staff": 0.1},
    ("promoter", None): {"friendly staff": 0.5, "easy app": 0.5},
}
SENTENCES = {
    "late delivery": {
        "en": ("My parcel arrived four days late, the courier never came. Furious.",
               "My parcel arrived a week late again, the courier lost it. Furious."),
        "fr": ("Mon colis est arrivé avec quatre jours de retard, le livreur n'est jamais venu, je suis furieux.",
               "Livraison encore en retard, colis bloqué au dépôt, je suis en colère."),
        "nl": ("Mijn pakket kwam vier dagen te laat en de koerier kwam nooit, ik ben woedend.",
               "Levering weer te laat, het pakket lag een week in het depot. Woedend."),
        "de": ("Mein Paket kam vier Tage zu spät und der Kurier kam nie, ich bin wütend.",
               "Lieferung wieder verspätet, das Paket lag eine Woche im Depot. Wütend."),
    },
    "billing error": {
        "en": ("Wrong amount on my invoice, charged twice. Disgusting.",
               "Another invoice error, charged twice for one order. Disgusting."),
        "fr": ("Erreur sur ma facture, montant faux, facturé deux fois, c'est scandaleux.",
               "Encore une facture fausse, prélevé deux fois, scandaleux."),
        "nl": ("Verkeerd bedrag op mijn factuur, dubbel gefactureerd, walgelijk.",
               "Weer een fout op de factuur, twee keer betaald. Walgelijk."),
        "de": ("Falscher Betrag auf meiner Rechnung, doppelt abgebucht, widerlich.",
               "Wieder ein Fehler auf der Rechnung, zweimal bezahlt. Widerlich."),
    },
    "phone wait": {
        "en": ("Waited forty minutes in the phone queue, nobody answered. Disappointed.",
               "Waited an hour in the phone queue and hung up. Disappointed."),
        "fr": ("Attente de quarante minutes au téléphone, personne ne répond, très déçu.",
               "File d'attente interminable au téléphone, j'ai raccroché. Déçu."),
        "nl": ("Veertig minuten gewacht aan de telefoon in de wachtrij, niemand nam op, teleurgesteld.",
               "Eindeloze wachtrij aan de telefoon, na een uur opgehangen. Teleurgesteld."),
        "de": ("Vierzig Minuten am Telefon in der Warteschleife gewartet, niemand ging ran, enttäuscht.",
               "Endlose Warteschleife am Telefon, nach einer Stunde aufgelegt. Enttäuscht."),
    },
    "price": {
        "en": ("The price went up again, too expensive compared with competitors. Surprised.",
               "Surprised by the price increase, too expensive now."),
        "fr": ("Le prix a encore augmenté, trop cher par rapport aux concurrents, surpris.",
               "Surpris par la hausse du prix, trop cher maintenant."),
        "nl": ("De prijs is weer gestegen, te duur vergeleken met concurrenten, verrast.",
               "Verrast door de hogere prijs, nu te duur."),
        "de": ("Der Preis ist wieder gestiegen, zu teuer im Vergleich zur Konkurrenz, überrascht.",
               "Überrascht vom höheren Preis, jetzt zu teuer."),
    },
    "friendly staff": {
        "en": ("Friendly and helpful staff, a supplier I trust.",
               "The staff were friendly and helpful, I trust them."),
        "fr": ("Personnel aimable et serviable, j'ai entièrement confiance.",
               "Le personnel était aimable et serviable, un fournisseur de confiance."),
        "nl": ("Vriendelijk personeel, behulpzaam en aardig, ik heb alle vertrouwen.",
               "Het personeel was vriendelijk en behulpzaam, een leverancier met vertrouwen."),
        "de": ("Freundliches Personal, hilfsbereit und nett, ich habe volles Vertrauen.",
               "Das Personal war freundlich und hilfsbereit, ein Lieferant mit Vertrauen."),
    },
    "easy app": {
        "en": ("The app is easy, ordering online is quick. Happy.",
               "Love the app, easy and quick ordering online. Happy."),
        "fr": ("L'application est facile, commander en ligne est simple, content.",
               "Application facile, commande en ligne rapide, très content."),
        "nl": ("De app is makkelijk, online bestellen is eenvoudig, blij.",
               "Makkelijke app, snel online bestellen, erg blij."),
        "de": ("Die App ist einfach, online bestellen ist leicht, froh.",
               "Einfache App, schnell online bestellen, sehr froh."),
    },
}
THEMES = tuple(SENTENCES)


def planted(seed: int, group: np.ndarray, touchpoint: np.ndarray, day: np.ndarray, has_text: np.ndarray,
            surge_from_day: int) -> dict[str, np.ndarray]:
    """Planted verbatims for the responses where ``has_text``: arrays ``verbatim`` (None without
    text), ``language``, ``theme`` (primary), ``theme2`` (second or None). ``group`` holds 0/1/2 for
    promoter/passive/detractor (the response's NPS group), ``touchpoint`` the response's touchpoint
    (None for relationship), ``day`` the response day (days from the demo's start)."""
    rng = np.random.default_rng([seed, STREAM])
    m = group.size
    names = np.array(["promoter", "passive", "detractor"])[group]
    langs = np.array(list(LANGUAGE_P))
    lang = langs[rng.choice(len(langs), m, p=list(LANGUAGE_P.values()))]
    u1, u2, u3, u4, u5 = (rng.random(m) for _ in range(5))
    theme = np.empty(m, dtype=object)
    theme2 = np.full(m, None, dtype=object)
    tp = np.array([t if isinstance(t, str) else "" for t in touchpoint], dtype=object)
    for (g, t), probs in THEME_BY.items():
        if t is None:
            specific = [k[1] for k in THEME_BY if k[0] == g and k[1] is not None]
            rows = (names == g) & ~np.isin(tp, specific)
        else:
            rows = (names == g) & (tp == t)
        keys, p = list(probs), np.cumsum(list(probs.values()))
        theme[rows] = np.array(keys, dtype=object)[np.minimum(np.searchsorted(p, u1[rows]), len(keys) - 1)]
        alt = np.array(keys, dtype=object)[np.minimum(np.searchsorted(p, u2[rows]), len(keys) - 1)]
        second = (u3[rows] < SECOND_THEME_P) & (alt != theme[rows])
        theme2[np.flatnonzero(rows)[second]] = alt[second]
    surge = (day >= surge_from_day) & (names != "promoter") & (u4 < SURGE_P)
    theme[surge] = "late delivery"
    theme2[surge & (theme2 == "late delivery")] = None
    text = np.full(m, None, dtype=object)
    for i in np.flatnonzero(has_text):
        options = SENTENCES[theme[i]][lang[i]]
        s = options[int(u5[i] * len(options))]
        if theme2[i] is not None:
            more = SENTENCES[theme2[i]][lang[i]]
            s = s + " " + more[int(u5[i] * 997) % len(more)]
        text[i] = s
    keep = has_text
    return {"verbatim": text, "language": np.where(keep, lang, None), "theme": np.where(keep, theme, None),
            "theme2": np.where(keep, theme2, None)}


def surge_day(start: dt.date, end: dt.date) -> int:
    """Day index (from ``start``) where the last quarter before ``end`` begins."""
    return (end - start).days - 91
