"""Dockerfile word processing: variable substitution, quote removal, word and name=value splitting.

Docker expands ``$X``, ``${X}`` and the modifiers ``${X:-d} ${X-d} ${X:+a} ${X+a} ${X:?e} ${X?e}``
in the arguments of ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR ARG (never in
RUN CMD ENTRYPOINT, which the shell expands). Single quotes are literal, double quotes allow
expansion, the escape character (``\\`` or the ``# escape=`` directive's) protects the next
character. ``expand`` makes one string of a word; ``expand_words`` also splits on unquoted
whitespace (including whitespace that an unquoted expansion produced), as Docker's ProcessWords.
Errors raise ``LexError``; the executor adds the Dockerfile line.
"""

from __future__ import annotations

from collections.abc import Mapping

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_MODIFIERS = (":-", ":+", ":?", "-", "+", "?")


class LexError(ValueError):
    """A word that cannot be processed (unterminated quote, bad substitution)."""


class _Words:
    """Accumulates output characters into words; ``split`` decides if blanks separate words."""

    def __init__(self, *, split: bool) -> None:
        self.split = split
        self.words: list[str] = []
        self.current: list[str] = []
        self.started = False  # a word exists even if empty ("" quoted)

    def add(self, text: str, *, quoted: bool) -> None:
        if not self.split or quoted:
            self.current.append(text)
            self.started = True
            return
        for ch in text:
            if ch.isspace():
                self.end()
            else:
                self.current.append(ch)
                self.started = True

    def end(self) -> None:
        if self.started:
            self.words.append("".join(self.current))
        self.current = []
        self.started = False

    def result(self) -> list[str]:
        self.end()
        return self.words


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.env = env
        self.escape = escape
        self.pos = 0

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _next(self) -> str:
        ch = self._peek()
        self.pos += 1
        return ch

    def process(self, out: _Words, *, stop: str = "") -> None:
        """Consume text into ``out`` until the end (or an unquoted ``stop`` char, consumed)."""
        while self.pos < len(self.text):
            ch = self._next()
            if stop and ch == stop:
                return
            if ch == self.escape:
                nxt = self._next()
                out.add(nxt if nxt else ch, quoted=True)
            elif ch == "'":
                out.add(self._single_quoted(), quoted=True)
            elif ch == '"':
                out.add(self._double_quoted(), quoted=True)
            elif ch == "$":
                out.add(self._dollar(), quoted=False)
            else:
                out.add(ch, quoted=False)
        if stop:
            raise LexError(f"missing '{stop}' in {self.text!r}")

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise LexError(f"unexpected end of statement while looking for matching single-quote in {self.text!r}")
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def _double_quoted(self) -> str:
        parts: list[str] = []
        while True:
            ch = self._next()
            if ch == "":
                raise LexError(f"unexpected end of statement while looking for matching double-quote in {self.text!r}")
            if ch == '"':
                return "".join(parts)
            if ch == self.escape and self._peek() in ('"', "$", self.escape):
                parts.append(self._next())
            elif ch == "$":
                parts.append(self._dollar())
            else:
                parts.append(ch)

    def _name(self) -> str:
        start = self.pos
        while self._peek() and self._peek() in _NAME_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def _dollar(self) -> str:
        if self._peek() != "{":
            name = self._name()
            return self.env.get(name, "") if name else "$"
        self.pos += 1
        name = self._name()
        if not name:
            raise LexError(f"bad substitution in {self.text!r}")
        if self._peek() == "}":
            self.pos += 1
            return self.env.get(name, "")
        modifier = next((m for m in _MODIFIERS if self.text.startswith(m, self.pos)), None)
        if modifier is None:
            raise LexError(f"bad substitution: unsupported modifier in ${{{name}...}} of {self.text!r}")
        self.pos += len(modifier)
        inner = _Words(split=False)
        self.process(inner, stop="}")
        word = "".join(inner.result())
        return _apply(modifier, name=name, value=self.env.get(name), word=word)


def _apply(modifier: str, *, name: str, value: str | None, word: str) -> str:
    """Shell parameter-expansion semantics; a ':' also treats the empty string as unset."""
    unset = value is None or (modifier.startswith(":") and value == "")
    kind = modifier[-1]
    if kind == "-":
        return word if unset else value or ""
    if kind == "+":
        return "" if unset else word
    if unset:  # "?"
        raise LexError(f"{name}: {word or 'is not allowed to be unset'}")
    return value or ""


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """One word with variables expanded and quotes/escapes removed."""
    out = _Words(split=False)
    _Lexer(word, env, escape).process(out)
    return "".join(out.result())


def expand_words(text: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """``text`` expanded and split into words on unquoted whitespace."""
    out = _Words(split=True)
    _Lexer(text, env, escape).process(out)
    return out.result()


def split_raw_words(text: str, *, escape: str = "\\") -> list[str]:
    """Split on unquoted whitespace keeping quotes and escapes (Docker's parser ``parseWords``)."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and i + 1 < len(text):
            current += [ch, text[i + 1]]
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch.isspace():
            if current:
                words.append("".join(current))
                current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    if current:
        words.append("".join(current))
    return words


def name_values(
    text: str, *, keyword: str, escape: str = "\\", allow_bare: bool = False
) -> list[tuple[str, str | None]]:
    """``k=v k2="v 2"`` (or the legacy ``k value with spaces``) as raw (name, value) pairs.

    Values keep their quotes; ``expand`` them at dispatch. ``allow_bare`` (ARG) accepts names
    without a value, which come back as ``(name, None)``.
    """
    words = split_raw_words(text, escape=escape)
    if not words:
        raise LexError(f"{keyword} requires at least one argument")
    if "=" not in words[0] and not allow_bare:
        key, *rest_list = text.strip().split(None, 1)
        rest = rest_list[0].strip() if rest_list else ""
        if not rest:
            raise LexError(f"{keyword} must have two arguments")
        return [(key, rest)]
    pairs: list[tuple[str, str | None]] = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            if not allow_bare:
                raise LexError(f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
            pairs.append((word, None))
            continue
        if not key:
            raise LexError(f"{keyword} names can not be blank")
        pairs.append((key, value))
    return pairs
