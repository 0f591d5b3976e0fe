"""Showing user text in markdown elements safely, and counts in words."""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """User text (a patient ID, a rater's or a round's name, a file name) for a markdown
    element: every markdown character escaped, so ``![x](https://...)`` shows as typed and makes
    no browser fetch anything."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def count(n: int, noun: str) -> str:
    """``"1 image"``, ``"3 images"``: a count with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
