"""docs/EMBEDDING.md runs as written: its ```python blocks, in order, in one namespace, from
the repository root (as the document says), using only ``ogevm``'s public names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ogevm

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "EMBEDDING.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
SECTION = re.compile(r"^## ", re.M)


def snippets(text: str) -> list[tuple[int, str]]:
    """Each ```python block with the line its code starts on."""
    return [(text.count("\n", 0, match.start(1)) + 1, match.group(1)) for match in BLOCK.finditer(text)]


def test_snippets_run_in_order_in_one_namespace(monkeypatch):
    monkeypatch.chdir(ROOT)
    namespace: dict = {"__name__": "embedding_doc"}
    for line, code in snippets(DOC.read_text(encoding="utf-8")):
        # padded so a traceback names the document's own line numbers
        exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), namespace)
    assert namespace["replica"].get_canonical_head() == namespace["chain"].get_canonical_head()


def test_every_section_has_a_short_snippet():
    text = DOC.read_text(encoding="utf-8")
    sections = SECTION.split(text)[1:]
    assert len(sections) == 4
    for section in sections:
        blocks = snippets(section)
        assert blocks, section.splitlines()[0]
        for _, code in blocks:
            assert len(code.splitlines()) <= 30, section.splitlines()[0]


def test_snippets_use_only_public_names():
    code = "\n".join(block for _, block in snippets(DOC.read_text(encoding="utf-8")))
    assert not re.search(r"\bfrom ogevm\.|\bimport ogevm\.", code), "a private module is imported"
    used = set(re.findall(r"\bogevm\.(\w+)", code))
    assert used and used <= set(ogevm.__all__), used - set(ogevm.__all__)


@pytest.mark.parametrize("text, expected", [
    ("```python\na = 1\n```\n", [(2, "a = 1\n")]),
    ("x\n```python\n```\n```py\nb\n```\n", [(3, "")]),
    ("```python\nunclosed\n", []),
])
def test_snippet_extraction(text, expected):
    assert snippets(text) == expected
