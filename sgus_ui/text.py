"""Showing user text in markdown elements safely."""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """User text (a patient ID, a rater's or a round's name, a file name) for a markdown
    element: every markdown character escaped, so ``![x](https://...)`` shows as typed and makes
    no browser fetch anything."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
