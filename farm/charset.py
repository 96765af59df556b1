"""Charsets: which characters a glyph data set's classes are (``A-Z0-9``, ``ABC!?``).

It lives in the control plane because submission must refuse a render that names a character
outside its model's charset without importing ``workers``; the glyph data set parses the same
text with this same function, so the two can never disagree about what a charset means.
"""

from __future__ import annotations

DEFAULT_CHARSET = "A-Za-z0-9"
MAX_CHARSET = 4096  # characters; a range over all of Unicode is a typo, not a data set


class CharsetError(ValueError):
    """A charset that names no characters, or names them wrongly."""


def parse_charset(text: str) -> list[str]:
    """The characters a charset names, in order, each once.

    Ranges ``a-z`` and literal characters, freely mixed: ``A-Z0-9``, ``A-Za-z``, ``ABC!?``.
    A literal ``-`` is written first or last (``-A-Z``, ``+-``); anywhere else a ``-`` must
    join the two ends of a range. Raises :class:`CharsetError` for an empty charset, a
    reversed range (``z-a``), a dangling ``-`` and a charset of over :data:`MAX_CHARSET`
    characters.
    """
    if not text:
        raise CharsetError("empty charset: name characters (ABC) or ranges (A-Z)")
    out: list[str] = []
    body = text
    if body.startswith("-"):
        out.append("-")
        body = body[1:]
    tail = body.endswith("-")
    if tail:
        body = body[:-1]
    i = 0
    while i < len(body):
        start = body[i]
        if start == "-":
            raise CharsetError(
                f"charset {text!r}: a '-' joins nothing (write a literal '-' first or last)"
            )
        if body[i + 1 : i + 2] != "-":
            out.append(start)
            i += 1
            continue
        end = body[i + 2 : i + 3]
        if end in ("", "-"):
            raise CharsetError(f"charset {text!r}: the range from {start!r} has no end")
        if ord(end) < ord(start):
            raise CharsetError(f"charset {text!r}: the range {start}-{end} is reversed")
        if ord(end) - ord(start) >= MAX_CHARSET:
            raise CharsetError(f"charset {text!r}: over {MAX_CHARSET} characters")
        out.extend(chr(c) for c in range(ord(start), ord(end) + 1))
        i += 3
    if tail:
        out.append("-")
    unique = list(dict.fromkeys(out))
    if len(unique) > MAX_CHARSET:
        raise CharsetError(f"charset {text!r}: over {MAX_CHARSET} characters")
    return unique
