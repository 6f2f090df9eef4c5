"""Imported text made inert for Streamlit's markdown (no Streamlit import: usable and testable
anywhere). Plotly's markup is handled by :func:`cxmetrics.charts.escape_labels`."""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!<>$~|])")
#: What Streamlit's markdown turns into a link without any markup (GitHub-flavoured autolink
#: literals, matched on the text *after* backslash escapes are resolved): ``http://``,
#: ``https://``, ``www.`` and e-mail addresses. A word joiner (U+2060, invisible) breaks each.
_AUTOLINK = re.compile(r"(?i)(?:https?(?=://)|www(?=\.))|@(?=[-\w])")
WORD_JOINER = "\u2060"


def md_escape(text: object) -> str:
    r"""Text made inert for ``st.markdown`` and every widget label that reads markdown (expanders,
    metrics, tabs, headers): markdown, links, images and LaTeX (``$``) characters are escaped,
    line breaks become spaces (so a label cannot start a list or a heading), and the URLs and
    addresses that Streamlit would autolink are broken with an invisible word joiner. Imported
    labels stay plain text on screen.

    >>> md_escape("![x](http://evil) costs $5") == '\\!\\[x\\]\\(http' + WORD_JOINER + '://evil\\) costs \\$5'
    True
    >>> md_escape("mail a@b.example") == 'mail a@' + WORD_JOINER + 'b.example'
    True
    >>> md_escape("www.evil.example") == 'www' + WORD_JOINER + '.evil.example'
    True
    """
    flat = re.sub(r"[\r\n\u2028\u2029]+", " ", str(text))
    escaped = _MD_SPECIAL.sub(r"\\\1", flat)
    return _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, escaped)
