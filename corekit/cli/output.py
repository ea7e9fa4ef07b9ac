"""Printing strings that others chose (task names, reasons, worker names,
results) without letting them drive the terminal."""
from __future__ import annotations

import re

#: What a terminal acts on instead of showing: C0 controls (ESC, BEL, CR,
#: backspace, ...), DEL and C1 controls (U+0080-U+009F, CSI among them),
#: the Unicode line and paragraph separators, and the bidirectional
#: overrides and isolates that reorder what is shown.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                                 "\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, newlines: bool = False) -> str:
    """``str(value)`` with every character a terminal would interpret
    written as its Python escape (``\\x1b``, ``\\n``, ``\\u202e``); the rest,
    backslashes included, unchanged.  With *newlines*, line breaks stay
    (for multi-line text such as a traceback)."""
    text = value if isinstance(value, str) else str(value)
    return (_UNSAFE_BUT_NEWLINE if newlines else _UNSAFE).sub(_escape, text)
