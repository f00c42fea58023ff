"""One sanitiser for every string a submission controls, before it is printed or written.

A student chooses file, folder and notebook names, exception messages, their Canvas login and
so their batch id. Each reaches a person: on the terminal, in ``results.json``, ``feedback.md``,
``summary.md``, the similarity reports and ``gradebook.csv``. Every writer passes such text
through one of these, and nothing else decides what is shown:

    visible(text)                      control characters and bidi overrides as escapes
    visible(text, newlines=True)       ... keeping newlines (and tabs with tabs=True)
    one_line(text, limit)              visible, on one line, at most ``limit`` characters
    md_code(text)                      a Markdown code span the text cannot leave
    md_fence(text)                     a fenced Markdown block the text cannot close
    csv_cell(text)                     a spreadsheet cell that is never a formula
    clip_utf8(text, n)                 at most ``n`` bytes of UTF-8, cut between characters

``visible`` turns C0 and C1 control characters (ESC starts the terminal's colour, cursor,
title, clipboard and hyperlink sequences; CR rewrites a line), DEL, the bidirectional
overrides and isolates (U+202A-U+202E, U+2066-U+2069, the marks U+200E/U+200F/U+061C, which
reorder what a reader sees), the line and paragraph separators, the byte-order mark and lone
surrogates (an undecodable file name) into ``\\x1b``, ``\\u202e``, ``\\udcff`` (``\\n``,
``\\t``, ``\\r`` for those three): printable, and what the character was. Everything else,
any script and emoji included, is kept. It is idempotent, and a printable ASCII text is
returned unchanged.
"""

from __future__ import annotations

import re

# the bidirectional formatting characters (Unicode's "Bidi_Control" property)
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_ALWAYS = ("\x00-\x08\x0b-\x1f\x7f-\x9f" + BIDI + "\u2028\u2029\ufeff\ud800-\udfff")
_UNSAFE = {  # (newlines kept, tabs kept) -> what is escaped
    (False, False): re.compile(f"[\t\n{_ALWAYS}]"),
    (True, False): re.compile(f"[\t{_ALWAYS}]"),
    (False, True): re.compile(f"[\n{_ALWAYS}]"),
    (True, True): re.compile(f"[{_ALWAYS}]"),
}
# a spreadsheet evaluates a cell that starts with one of these (OWASP, "CSV Injection"), also
# in their full-width forms, which some locales' spreadsheets read as the same operators
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object, *, newlines: bool = False, tabs: bool = False) -> str:
    """``text`` with every control character, bidi override and lone surrogate as a visible
    escape (``\\x1b``); newlines and tabs are escaped too unless kept."""
    return _UNSAFE[newlines, tabs].sub(_escape, str(text))


def one_line(text: object, limit: int | None = None) -> str:
    """``visible(text)`` with runs of whitespace as one space, cut to ``limit`` characters."""
    line = " ".join(visible(text, newlines=True, tabs=True).split())
    if limit is not None and len(line) > limit:
        line = line[: max(0, limit - 3)] + "..."
    return line


def md_code(text: object, limit: int | None = None, *, table: bool = False) -> str:
    """``text`` on one line as a Markdown (CommonMark) code span: its backticks are fenced by
    a longer run, so nothing in it is read as markup (links, HTML, emphasis). ``table``: a
    cell of a GitHub table, where ``|`` must be escaped even inside code."""
    line = one_line(text, limit)
    if table:
        line = line.replace("|", "\\|")
    if not line:
        return "` `"
    run = max((len(m) for m in re.findall("`+", line)), default=0)
    fence = "`" * (run + 1)
    pad = " " if line.startswith("`") or line.endswith("`") else ""
    return f"{fence}{pad}{line}{pad}{fence}"


def md_fence(text: object, info: str = "text") -> str:
    """``text`` as a fenced Markdown block (newlines and tabs kept): the fence is longer than
    any run of backticks in it, so no line of it can close the block."""
    body = visible(text, newlines=True, tabs=True).rstrip("\n")
    run = max((len(m) for m in re.findall("`+", body)), default=0)
    fence = "`" * max(3, run + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def csv_cell(text: object) -> str:
    """A CSV cell a spreadsheet shows as text: visible, and a leading ``= + - @`` (after any
    spaces) neutralised with a ``'`` in front, as OWASP's CSV-injection guidance says."""
    cell = visible(text)
    return "'" + cell if cell.lstrip(" ").startswith(FORMULA_START) else cell


def clip_utf8(text: str, limit: int) -> str:
    """The longest start of ``text`` whose UTF-8 takes at most ``limit`` bytes."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")
