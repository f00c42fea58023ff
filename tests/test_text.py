"""grader/text.py, the one sanitiser of what a student chose (names, messages, ids): for any
text, what it gives holds no control character, no bidi override and no Markdown a reader's
renderer would obey, and a plain name comes out unchanged (hypothesis, then the attack strings
of issue 22 through every writer that uses it)."""

from __future__ import annotations

import csv
import io
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.batch.collect import MAX_ID_BYTES, RESERVED_IDS, safe_id
from grader.text import BIDI, clip_utf8, csv_cell, md_code, md_fence, one_line, visible

# every character the sanitiser must never let through, with newline and tab listed apart
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + BIDI + "\u2028\u2029\ufeff\ud800-\udfff]")
PLAIN = "".join(c for c in string.printable if c not in string.whitespace) + " "
# what Markdown reads as markup outside code (links, HTML, emphasis, tables, headings ...)
MARKUP = set("`<>[]()!*_#|\\&~")

# the attack strings of issue 22: a terminal's control sequences, bidi, HTML and links
ATTACKS = [
    "\x1b[2J\x1b[H\x1b[32mtotal 100 of 100 ok\x1b[0m",  # clear the screen, draw a fake total
    "\x1b]0;pwned\x07",  # window title
    "\x1b]52;c;cm0gLXJmIH4=\x07",  # OSC 52: write the clipboard
    "6 / 6\x1b[1A\x1b[2K",  # cursor up and erase the line: a fake score
    "\x1b[8mhidden\x1b[28m",  # concealed text
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x9b31m C1 CSI",  # the 8-bit form of ESC [
    "evil\u202egnp.py",  # right-to-left override: shows as "evilyp.png"
    "\u2066isolate\u2069 \u200e\u200f\u061c",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[click me](javascript:alert(1))",
    "<javascript:alert(1)>",
    "```\n# escaped the fence\n```",
    "a`b``c```d",
    "| table | break |",
    "line\r\noverwritten\rthe start",
    "nul\x00byte\x7fdel",
    "lone surrogate \udcff from an undecodable name",
]

texts = st.text(alphabet=st.characters(codec=None), max_size=80) | st.sampled_from(ATTACKS)
plain_names = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1,
                      max_size=40)
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def markdown():
    """markdown-it-py, CommonMark with GitHub's tables (installed with the [nbgrader] extra)."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable("table")


@SETTINGS
@given(texts)
def test_visible_leaves_no_control_character(text):
    assert not CONTROL.search(visible(text)) and "\n" not in visible(text)
    assert "\t" not in visible(text)
    kept = visible(text, newlines=True)
    assert not CONTROL.search(kept) and "\t" not in kept
    assert kept.count("\n") == text.count("\n")
    assert visible(visible(text)) == visible(text)  # idempotent: escaping twice changes nothing
    visible(text).encode("utf-8")  # every writer can encode it (no lone surrogate)


@SETTINGS
@given(texts, st.integers(min_value=4, max_value=200))
def test_one_line_is_one_visible_line_within_the_limit(text, limit):
    line = one_line(text, limit)
    assert not CONTROL.search(line) and "\n" not in line and "\t" not in line
    assert len(line) <= limit


@given(st.text(alphabet=PLAIN, max_size=60))
def test_printable_ascii_is_unchanged(text):
    assert visible(text) == text
    assert visible(text, newlines=True, tabs=True) == text


@SETTINGS
@given(texts)
def test_md_code_is_one_code_span_holding_the_visible_text(text):
    md = markdown()
    tokens = md.parse(md_code(text))
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    children = tokens[1].children
    assert [c.type for c in children] == ["code_inline"], md_code(text)
    assert children[0].content == (one_line(text) or " ")
    assert not CONTROL.search(md_code(text))


@SETTINGS
@given(texts)
def test_md_code_in_a_table_cell_stays_one_cell(text):
    md = markdown()
    row = f"| a | b |\n|---|---|\n| {md_code(text, table=True)} | x |\n"
    tokens = md.parse(row)
    cells = [t for t in tokens if t.type == "inline"][2:]  # the body row's two cells
    assert len(cells) == 2 and cells[1].content == "x"
    assert [c.type for c in cells[0].children] == ["code_inline"]
    assert cells[0].children[0].content == (one_line(text) or " ")


@SETTINGS
@given(texts)
def test_md_fence_is_one_block_it_cannot_close(text):
    md = markdown()
    tokens = md.parse(md_fence(text) + "\n\nafter")
    assert tokens[0].type == "fence" and tokens[0].info == "text"
    assert tokens[0].content == visible(text, newlines=True, tabs=True).rstrip("\n") + "\n"
    assert [t.type for t in tokens[1:]] == ["paragraph_open", "inline", "paragraph_close"]
    assert tokens[2].content == "after"


@given(plain_names)
def test_a_plain_name_is_a_plain_code_span(name):
    assert md_code(name) == f"`{name}`"
    assert csv_cell(name) == name


@SETTINGS
@given(texts)
def test_csv_cells_are_never_formulas(text):
    buf = io.StringIO()
    csv.writer(buf).writerow([csv_cell(text), "1"])
    cell = next(csv.reader(io.StringIO(buf.getvalue())))[0]
    assert not CONTROL.search(cell) and "\n" not in cell
    assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")) or \
        cell.startswith("'")


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-2+3", "@SUM(A1)", "=HYPERLINK(\"x\")",
                                  " =1", "\uff1d1+1"])
def test_formula_cells_are_quoted(cell):
    assert csv_cell(cell) == "'" + visible(cell)


@SETTINGS
@given(texts)
def test_safe_ids_are_usable_everywhere(name):
    sid = safe_id(name)
    assert sid and re.fullmatch(r"[\w.@+-]+", sid)
    assert len(sid.encode("utf-8")) <= MAX_ID_BYTES
    assert not sid.startswith((".", "-", "+", "@")) and sid.casefold() not in RESERVED_IDS
    assert not CONTROL.search(sid) and csv_cell(sid) == sid
    assert safe_id(sid) == sid  # stable: a batch rerun finds the same folders


@given(st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=60)
       .map(lambda s: s + "@uni.edu.example"[: 100 - len(s)]))
def test_a_plain_id_is_unchanged(name):
    assert safe_id(name) == name


def test_ids_from_hostile_names():
    assert safe_id("-2+3") == "_-2+3"  # never an option on a command line
    assert safe_id("@SUM(1)") == "_@SUM_1_"
    assert safe_id("similarity.md") == "similarity.md_"  # the batch's own files
    assert safe_id("Similarity.HTML") == "Similarity.HTML_"
    assert safe_id("..") == "_" and safe_id(".batch.lock") == "batch.lock"
    long = safe_id("\U0001d518" * 100)  # 400 bytes: the ENAMETOOLONG of issue 22
    assert len(long.encode()) <= MAX_ID_BYTES and long.startswith("\U0001d518" * 20)
    assert safe_id("\U0001d518" * 100) != safe_id("\U0001d518" * 99 + "x")  # still two ids
    assert safe_id("evil\u202egnp") == "evil_gnp"


def test_clip_utf8_cuts_between_characters():
    assert clip_utf8("\U0001d518" * 3, 9) == "\U0001d518" * 2
    assert clip_utf8("abc", 10) == "abc"


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_strings_through_each_form(attack):
    for shown in (visible(attack), one_line(attack), md_code(attack), csv_cell(attack)):
        assert not CONTROL.search(shown) and "\x1b" not in shown
    assert "\x1b" not in md_fence(attack) and "\r" not in md_fence(attack)


def test_markdown_renders_attacks_as_text():
    md = markdown()
    page = "\n\n".join([f"- {md_code(a)}" for a in ATTACKS] + [md_fence(a) for a in ATTACKS])
    html = md.render(page)
    for tag in ("<img", "<script", "<a ", "<a>", "href=", "<h1", "<table", "<em>", "<strong>"):
        assert tag not in html, tag
    outside = re.sub(r"<code[^>]*>.*?</code>", "", html, flags=re.S)
    assert "javascript:" not in outside and "[" not in outside
