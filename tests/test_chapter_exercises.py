"""The exercises at the end of each chapter, as an instructor plans with them.

Every exercise states its kind and level on its first line, the exercises of
a chapter are ordered by level, every chapter has one exercise of each kind,
and the table on the instructors' page lists exactly these exercises, in the
same order, with the same kind and level.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("0[1-9]_*.ipynb"))
KINDS = {"Conceptual": "homework", "Derivation": "homework", "Computational": "lab", "Investigate": "lab"}
EXERCISE = re.compile(r"^```\{exercise\} (?P<title>[^\n]*)\n:label: (?P<label>\S+)\n\n(?P<tag>[^\n]*)\n", re.M)
SLIDER_SUFFIX = re.compile(r" \(investigate with the sliders?\)$")  # the table's kind column says it
SOLUTION = re.compile(r"^(?:````\{solution\}|```\{solution-start\}) (\S+)", re.M)  # gated or fenced
TAG = re.compile(r"\*\*(?P<kind>\w+)\*\* · (?P<stars>★{1,3}☆{0,2})")


def chapter_exercises(path):
    """[(label, title, kind, level)] of a chapter's exercises, in order, and the solution labels."""
    exercises, solutions = [], []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        for m in EXERCISE.finditer(cell.source):
            tag = TAG.fullmatch(m["tag"])
            assert tag and len(tag["stars"]) == 3, f"{path.name}, {m['label']}: first line {m['tag']!r} is not a tag"
            exercises.append((m["label"], m["title"], tag["kind"], tag["stars"].count("★")))
        solutions += SOLUTION.findall(cell.source)
    return exercises, solutions


def instructors_table():
    """[(label, title, kind, level, suits)] from the table on the instructors' page."""
    rows = []
    for line in (ROOT / "chapters" / "instructors.md").read_text().splitlines():
        m = re.fullmatch(r"\| \{ref\}`(\S+)` \| (.+) \| (\w+) \| ([★☆]{3}) \| (\w+) \|", line)
        if m:
            rows.append((m[1], m[2], m[3], m[4].count("★"), m[5]))
    return rows


def test_there_are_seven_chapters():
    assert [p.name[:2] for p in CHAPTERS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_are_tagged_ordered_and_of_every_kind(path):
    exercises, solutions = chapter_exercises(path)
    assert len(exercises) >= 4, path.name
    labels = [label for label, *_ in exercises]
    assert solutions == labels, "every exercise has one solution, right after it"
    assert all(kind in KINDS for _, _, kind, _ in exercises), exercises
    levels = [level for *_, level in exercises]
    assert levels == sorted(levels), f"{path.name}: exercises not ordered by level: {exercises}"
    assert {kind for _, _, kind, _ in exercises} == set(KINDS), f"{path.name} lacks a kind: {exercises}"


def test_instructors_table_lists_every_exercise():
    expected = []
    for path in CHAPTERS:
        for label, title, kind, level in chapter_exercises(path)[0]:
            expected.append((label, SLIDER_SUFFIX.sub("", title), kind.lower(), level, KINDS[kind]))
    assert instructors_table() == expected


def test_the_checks_can_fail():
    # A tag line that is not a tag, and a table row that does not parse, are caught.
    assert TAG.fullmatch("**Conceptual** · ★★★★") is None
    assert TAG.fullmatch("Conceptual, easy") is None
    assert EXERCISE.search("```{exercise} T\n:label: ex-a\n\n**Derivation** · ★★☆\n")["label"] == "ex-a"
    assert SLIDER_SUFFIX.sub("", "Which clock? (investigate with the slider)") == "Which clock?"
    # Both forms of a solution are found: a gated block and a fenced one.
    assert SOLUTION.findall("```{solution-start} ex-a\n:class: dropdown\n```\n````{solution} ex-b\n") == ["ex-a", "ex-b"]


def exercise_texts():
    """{label: the exercise's own text (without its solution)} over all chapters."""
    texts = {}
    for path in CHAPTERS:
        for cell in nbformat.read(path, as_version=4).cells:
            for m in re.finditer(r"^```\{exercise\}.*?\n:label: (\S+)\n(.*?)\n```(?:\n|\Z)", cell.source, re.S | re.M):
                texts[m[1]] = m[2]
    return texts


def test_self_checks_are_named_where_the_instructors_table_says():
    import eoslab.exercises

    rows = re.findall(r"^\| `(check_\w+)\(.*?\| \{ref\}`(\S+)` \|$",
                      (ROOT / "chapters" / "instructors.md").read_text(), re.M)
    checkers = [name for name in eoslab.exercises.__all__ if name.startswith("check_")]
    assert sorted(name for name, _ in rows) == sorted(checkers), "every self-check is listed once"
    texts = exercise_texts()
    assert len(texts) == sum(len(chapter_exercises(p)[0]) for p in CHAPTERS)
    for name, label in rows:
        assert f"{name}(" in texts[label], f"{label} does not name {name}"
