"""The text tokeniser, with no dependency beyond the standard library: what the text source
encodes training text with and what a served text model tokenises a request with, so the two
can never drift apart (a served model's environment has no scikit-learn).

It is scikit-learn's word analyzer (``CountVectorizer(lowercase, token_pattern,
ngram_range).build_analyzer()``) written out: lowercase, ``re.findall`` of the token pattern
(its one group when it has one), then the n-grams of ``ngram_range`` joined by a space, shortest
first. ``tests/sequences/test_text_serving.py`` checks it against scikit-learn's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

PAD, UNK = 0, 1  # token ids: padding, a token outside the vocabulary
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's default


def analyzer(settings: dict[str, Any]) -> Callable[[str], list[str]]:
    """The tokeniser of a text source's settings (``lowercase``, ``token_pattern``, ``ngram_range``)."""
    pattern = re.compile(settings.get("token_pattern", TOKEN_PATTERN))
    if pattern.groups > 1:
        raise ValueError("more than one group in token_pattern: only one group (the token) may be captured")
    lo, hi = (int(v) for v in settings.get("ngram_range", (1, 1)))
    if not 1 <= lo <= hi:
        raise ValueError(f"ngram_range {lo, hi}: expected 1 <= min_n <= max_n")
    lower = bool(settings.get("lowercase", True))

    def tokenise(text: str) -> list[str]:
        words = pattern.findall(text.lower() if lower else text)
        if hi == 1:
            return words
        out = list(words) if lo == 1 else []
        for n in range(max(lo, 2), min(hi, len(words)) + 1):
            out.extend(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
        return out

    return tokenise
