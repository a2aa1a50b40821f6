"""Escaping every value printed by ``mfstore`` (docs/cli.md, "Values are data") and every
value from the file that the flow command prints (``production list``/``show`` ...).

C0/C1 controls, DEL, lone surrogates and bidi overrides are shown escaped (``\\x1b``,
``\\u202e``), never sent to the terminal; each format keeps what it needs as data (CSV
quotes newlines and tabs, JSON keeps values exact as ``\\uXXXX``).
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 and C1 controls, DEL, lone surrogates and bidi overrides: shown escaped, never sent.
_TERMINAL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
# In CSV, newlines and tabs are data (quoted by the csv module).
_CSV = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_LOG = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_TSV = re.compile("[\\\\\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_JSON = re.compile("[\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def _sub(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_terminal(text: str) -> str:
    """Control characters (ESC, newline, ...) as ``\\x1b``, ``\\n``: safe on a terminal."""
    return _TERMINAL.sub(_sub, text)


def escape_tsv(text: str) -> str:
    """A TSV field: backslash, tab, newline and other control characters escaped."""
    return _TSV.sub(_sub, text)


def escape_csv(text: str) -> str:
    """A CSV field: control characters other than tab and newlines escaped."""
    return _CSV.sub(_sub, text)


def escape_log(text: str) -> str:
    """A log line: control characters other than tab escaped."""
    return _LOG.sub(_sub, text)


def _json_sub(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dumps(value: Any, **kw: Any) -> str:
    """JSON text; C1 controls, lone surrogates and bidi overrides as ``\\uXXXX``."""
    return _JSON.sub(_json_sub, json.dumps(value, ensure_ascii=False, default=str, **kw))


def escape_json_text(text: str) -> str:
    """JSON text made with ``ensure_ascii=False`` -> the same text with C1 controls, lone
    surrogates and bidi overrides as ``\\uXXXX`` (they only occur inside strings)."""
    return _JSON.sub(_json_sub, text)


#: A character ``escape_csv`` changes.
CSV_UNSAFE = _CSV
