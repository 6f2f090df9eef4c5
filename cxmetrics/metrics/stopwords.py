"""Compact stop-word lists for English, French, Dutch and German (written for cxmetrics).

Each list holds the function words (articles, pronouns, auxiliaries, prepositions, conjunctions,
common adverbs) that carry no theme. They serve two purposes: language detection (the share of a
verbatim's words that are function words of each language, :func:`cxmetrics.text.detect_language`)
and tokenisation for the topic model (:func:`cxmetrics.text.tokens`). Negations ("not", "pas",
"niet", "nicht") are kept out of the lists on purpose: they matter to sentiment.
"""

from __future__ import annotations

_EN = """a about above after again all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just me more
most my myself of off on once only or other our ours ourselves out over own same she should so some
such than that the their theirs them themselves then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your
yours yourself yourselves i'm it's we've they're get got one two again still even much many really
would've us"""

_FR = """a à au aux avec ce ces cet cette dans de des du elle elles en et eu eux il ils je la le les
leur leurs lui ma mais me même mes moi mon nos notre nous on ou où par pour qu que qui sa se ses son
sur ta te tes toi ton tu un une vos votre vous c d j l m n s t y été étée étées étés étant suis es est
sommes êtes sont serai sera serons seront ai as avons avez ont avais avait avions aviez avaient eut
fut était étaient très aussi encore déjà puis alors donc car comme si bien tout tous toute toutes
fois chez cela ça ceci celle celui ceux trop peu plus moins"""

_NL = """aan al als bij dan dat de der deze die dit doch door du een en er ge geen had heb hebben
heeft hem het hier hij hoe hun ik in is ja je kan kon maar me meer men met mij mijn moet na naar nog
nu of om omdat ons ook op over reeds te tegen toch toen tot u uit uw van veel voor want waren was wat
we wel werd wezen wie wij wil worden wordt zal ze zei zelf zich zij zijn zo zonder zou al alles
altijd ben bent jullie hun haar daar dus echter iets iemand ooit weer steeds onze ons"""

_DE = """aber alle allem allen aller alles als also am an ander andere anderem anderen anderer
anderes auch auf aus bei bin bis bist da damit dann das dass dasselbe dazu dein deine dem den denn
der des dessen dich die dies diese dieselbe diesem diesen dieser dieses dir doch dort du durch ein
eine einem einen einer eines er es etwas euer eure für hat habe haben hatte hatten hier hin hinter
ich ihm ihn ihnen ihr ihre im in ist ja jede jedem jeden jeder jedes jetzt kann können könnte man
manche mein meine mich mir mit muss musste nach noch nun nur ob oder ohne sehr sein seine sich sie
sind so solche soll sollte sondern sonst über um und uns unser unter vom von vor war waren warum was
weil welche wenn werde werden wie wieder will wir wird wo wollen wurde würde zu zum zur zwar schon
immer wurden"""

#: Language code -> stop words. Codes are ISO 639-1.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(_EN.split()),
    "fr": frozenset(_FR.split()),
    "nl": frozenset(_NL.split()),
    "de": frozenset(_DE.split()),
}
