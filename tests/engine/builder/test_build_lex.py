"""Variable substitution, quoting and word splitting of Dockerfile arguments (engine.build.lex)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.build.lex import LexError, expand, expand_words, name_values, split_raw_words

ENV = {"X": "ex", "EMPTY": "", "SPACED": "a b", "PATH": "/bin"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$X", "ex"),
        ("${X}", "ex"),
        ("pre${X}post", "preexpost"),
        ("$X/$UNSET/", "ex//"),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${UNSET-dflt}", "dflt"),
        ("${X:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-$X}", "ex"),
        ("${UNSET:-${X}-more}", "ex-more"),
        ("'$X'", "$X"),
        ('"$X"', "ex"),
        ('"a \\"q\\" \\$X"', 'a "q" $X'),
        ("\\$X", "$X"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("cost $5", "cost "),  # $5 is a (unset) name: digits are name characters, as in Docker
        ("100%", "100%"),
        ("${PATH}:/usr/bin", "/bin:/usr/bin"),
    ],
)
def test_expand(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


def test_backtick_escape_directive() -> None:
    assert expand("`$X", ENV, escape="`") == "$X"
    assert expand("C:\\dir\\$X", ENV, escape="`") == "C:\\dir\\ex"


@pytest.mark.parametrize("word", ["${X", "'open", '"open', "${}", "${X%%y}"])
def test_expand_errors(word: str) -> None:
    with pytest.raises(LexError):
        expand(word, ENV)


def test_required_variable_modifier() -> None:
    assert expand("${X:?unset}", ENV) == "ex"
    with pytest.raises(LexError, match="EMPTY: nope"):
        expand("${EMPTY:?nope}", ENV)
    assert expand("${EMPTY?nope}", ENV) == ""
    with pytest.raises(LexError, match="UNSET"):
        expand("${UNSET?}", ENV)


def test_expand_words_splits_unquoted_expansions_only() -> None:
    assert expand_words("80 $SPACED", ENV) == ["80", "a", "b"]
    assert expand_words('"$SPACED" c', ENV) == ["a b", "c"]
    assert expand_words("x$SPACED", ENV) == ["xa", "b"]
    assert expand_words('"" x', ENV) == ["", "x"]
    assert expand_words("   ", ENV) == []


def test_split_raw_words_keeps_quotes() -> None:
    assert split_raw_words('a="b c" d=e\\ f g') == ['a="b c"', "d=e\\ f", "g"]


def test_name_values_forms() -> None:
    assert name_values('A=1 B="two words"', keyword="ENV") == [("A", "1"), ("B", '"two words"')]
    assert name_values("A value with spaces", keyword="ENV") == [("A", "value with spaces")]
    assert name_values("A B=2", keyword="ARG", allow_bare=True) == [("A", None), ("B", "2")]
    with pytest.raises(LexError, match="must have two arguments"):
        name_values("A", keyword="ENV")
    with pytest.raises(LexError, match="can't find ="):
        name_values("A=1 B", keyword="ENV")
    with pytest.raises(LexError, match="names can not be blank"):
        name_values("=1", keyword="LABEL")


@given(st.text(alphabet=st.characters(blacklist_characters="$'\"\\`", blacklist_categories=("Cs",))))
def test_plain_text_is_unchanged(text: str) -> None:
    assert expand(text, ENV) == text
