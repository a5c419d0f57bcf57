"""CloudWatch Logs filter patterns: a pure parser and matcher.

The syntax is AWS's "Filter pattern syntax for metric filters, subscription filters, filter log
events, and Live Tail" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html):

* unstructured events: terms (``ERROR``), several terms, all required (``ERROR ARGUMENTS``), exact
  phrases (``"Internal Server Error"``), optional terms of which one is needed (``?ERROR ?WARN``),
  exclusions (``ERROR -ARGUMENTS``); the empty pattern and ``" "`` match every event;
  case-sensitive; a term matches where its text occurs in the message;
* regular expressions between ``%`` (``%ERROR [0-9]{3}%``), alone or as a value below; AWS does not
  accept ``(`` ``)`` groups in them, nor does this;
* JSON events: ``{ SELECTOR OP VALUE }`` with selectors ``$.a.b``, ``$.list[0]``, wildcards ``$.a[*]``
  and ``$.*``; ``=`` and ``!=`` for strings (``*`` wildcards, ``%regex%``) and numbers; ``<`` ``>``
  ``<=`` ``>=`` for numbers; ``IS NULL``, ``NOT EXISTS``, ``IS TRUE``, ``IS FALSE``; combined with
  ``&&``, ``||`` and parentheses (``&&`` binds tighter);
* space-delimited events: ``[ip, user, ..., status_code = 4*, bytes > 1000]``: one name per field,
  ``...`` for any number of fields, conditions with the same operators joined by ``&&`` / ``||``
  (``[w1 = ERROR || w1 = WARN, w2]``). Text in ``"..."`` or ``[...]`` is one field (without its
  quotes or brackets).

``compile(pattern)`` raises ``FilterPatternError`` for what AWS rejects (the emulator answers it
as InvalidParameterException); the result's ``matches(message)`` decides one event.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

MAX_PATTERN_LENGTH = 1024       # FilterLogEvents filterPattern: length 0..1024 (API reference)
MAX_REGEX = 5                   # AWS: at most five regular expressions in one filter pattern
MAX_ELLIPSES = 4                # bounds the backtracking of space-delimited matching


class FilterPatternError(ValueError):
    """A pattern AWS would reject."""


# -- lexer ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tok:
    kind: str   # STRING NUMBER WORD SELECTOR REGEX OP AND OR LPAREN RPAREN COMMA ELLIPSIS
    text: str


_OPS = ("!=", "<=", ">=", "=", "<", ">")
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_WORD_STOP = set(" \t\r\n\"(),=!<>&|%")


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    out, i = [], i + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterPatternError("a quoted string is not closed")


def _read_regex(text: str, i: int) -> tuple[str, int]:
    end = text.find("%", i + 1)
    if end < 0:
        raise FilterPatternError("a regular expression (%...%) is not closed")
    return text[i + 1:end], end + 1


def _lex(text: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == '"':
            value, i = _read_quoted(text, i)
            toks.append(Tok("STRING", value))
        elif ch == "%":
            value, i = _read_regex(text, i)
            toks.append(Tok("REGEX", value))
        elif text.startswith("&&", i) or text.startswith("||", i):
            toks.append(Tok("AND" if ch == "&" else "OR", text[i:i + 2]))
            i += 2
        elif ch in "(),":
            toks.append(Tok({"(": "LPAREN", ")": "RPAREN", ",": "COMMA"}[ch], ch))
            i += 1
        elif text.startswith("...", i):
            toks.append(Tok("ELLIPSIS", "..."))
            i += 3
        elif any(text.startswith(op, i) for op in _OPS):
            op = next(op for op in _OPS if text.startswith(op, i))
            toks.append(Tok("OP", op))
            i += len(op)
        elif ch in "!&|":
            raise FilterPatternError(f"unexpected {ch!r} at position {i + 1}")
        else:
            start = i
            while i < len(text) and text[i] not in _WORD_STOP:
                i += 1
            word = text[start:i]
            kind = "NUMBER" if _NUMBER.match(word) else "SELECTOR" if word.startswith("$") else "WORD"
            toks.append(Tok(kind, word))
    return toks


# -- values and comparisons ----------------------------------------------------------------------------------

def _regex(source: str) -> re.Pattern:
    if re.search(r"(?<!\\)[()]", source):
        raise FilterPatternError(f"regular expression %{source}% uses ( ), which filter patterns do not support")
    try:
        return re.compile(source)
    except re.error as exc:
        raise FilterPatternError(f"invalid regular expression %{source}%: {exc}") from None


def _glob(text: str) -> re.Pattern:
    return re.compile("^" + ".*".join(re.escape(part) for part in text.split("*")) + "$", re.DOTALL)


@dataclass(frozen=True)
class Value:
    """The right-hand side of a comparison."""

    kind: str                  # string, number, regex
    text: str
    number: float | None = None
    pattern: re.Pattern | None = None

    @staticmethod
    def of(tok: Tok) -> "Value":
        if tok.kind == "NUMBER":
            return Value("number", tok.text, float(tok.text))
        if tok.kind == "REGEX":
            return Value("regex", tok.text, pattern=_regex(tok.text))
        if tok.kind in ("STRING", "WORD", "SELECTOR"):
            return Value("string", tok.text, pattern=_glob(tok.text))
        raise FilterPatternError(f"expected a value, found {tok.text!r}")


def _as_number(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str) and _NUMBER.match(x.strip()):
        return float(x)
    return None


def _as_text(x: Any) -> str | None:
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, float)):
        return json.dumps(x)
    return None


def _equal(x: Any, v: Value, numeric_strings: bool) -> bool:
    if v.kind == "number":
        n = x if numeric_strings else (None if isinstance(x, str) else x)
        n = _as_number(n)
        assert v.number is not None            # a number value always has its number
        return n is not None and math.isclose(n, v.number, rel_tol=0.0, abs_tol=1e-12)
    text = _as_text(x)
    if text is None:
        return False
    assert v.pattern is not None               # string and regex values always have a pattern
    return bool(v.pattern.search(text)) if v.kind == "regex" else bool(v.pattern.match(text))


def compare(x: Any, op: str, v: Value, numeric_strings: bool = False) -> bool:
    """One comparison of a value found in the event (``x``) with the pattern's value."""
    if op == "=":
        return _equal(x, v, numeric_strings)
    if op == "!=":
        return _as_text(x) is not None and not _equal(x, v, numeric_strings)
    n = _as_number(x if numeric_strings or not isinstance(x, str) else None)
    if n is None or v.number is None:          # the parser admits only numbers after < > <= >=
        return False
    return {"<": n < v.number, ">": n > v.number, "<=": n <= v.number, ">=": n >= v.number}[op]


# -- a small boolean expression parser shared by JSON and space-delimited conditions ----------------------------

class _Parser:
    def __init__(self, toks: list[Tok], leaf: Callable[["_Parser"], Callable[[Any], bool]]):
        self.toks, self.i, self.leaf = toks, 0, leaf

    def peek(self, offset: int = 0) -> Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self, kind: str | None = None) -> Tok:
        tok = self.peek()
        if tok is None:
            raise FilterPatternError("the pattern ends too early")
        if kind and tok.kind != kind:
            raise FilterPatternError(f"expected {kind.lower()}, found {tok.text!r}")
        self.i += 1
        return tok

    def parse(self) -> Callable[[Any], bool]:
        expr = self.or_expr()
        extra = self.peek()
        if extra is not None:
            raise FilterPatternError(f"unexpected {extra.text!r}")
        return expr

    def or_expr(self):
        parts = [self.and_expr()]
        while self.peek() and self.peek().kind == "OR":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda ev: any(p(ev) for p in parts))

    def and_expr(self):
        parts = [self.unary()]
        while self.peek() and self.peek().kind == "AND":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda ev: all(p(ev) for p in parts))

    def unary(self):
        if self.peek() and self.peek().kind == "LPAREN":
            self.take()
            inner = self.or_expr()
            self.take("RPAREN")
            return inner
        return self.leaf(self)


# -- JSON patterns ---------------------------------------------------------------------------------------------

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+|\*)\]")


def parse_selector(text: str) -> tuple[str | int, ...]:
    """``$.a.b[0]`` -> ("a", "b", 0); ``*`` stands for every key or element."""
    if not text.startswith("$") or text == "$":
        raise FilterPatternError(f"a JSON selector starts with $. : {text!r}")
    steps: list[str | int] = []
    pos = 1
    for m in _STEP.finditer(text, 1):
        if m.start() != pos:
            break
        steps.append(m.group(1) if m.group(1) is not None else ("*" if m.group(2) == "*" else int(m.group(2))))
        pos = m.end()
    if pos != len(text) or not steps:
        raise FilterPatternError(f"invalid JSON selector {text!r}")
    return tuple(steps)


def resolve(doc: Any, steps: tuple[str | int, ...]) -> list[Any]:
    """Every value the selector reaches (none when the path does not exist)."""
    found = [doc]
    for step in steps:
        nxt: list[Any] = []
        for node in found:
            if step == "*":
                nxt.extend(node.values() if isinstance(node, dict) else node if isinstance(node, list) else [])
            elif isinstance(step, int):
                if isinstance(node, list) and step < len(node):
                    nxt.append(node[step])
            elif isinstance(node, dict) and step in node:
                nxt.append(node[step])
        found = nxt
    return found


def _json_leaf(p: _Parser) -> Callable[[Any], bool]:
    sel = p.take()
    if sel.kind != "SELECTOR":
        raise FilterPatternError(f"expected a JSON selector ($.field), found {sel.text!r}")
    steps = parse_selector(sel.text)
    nxt = p.take()
    if nxt.kind == "WORD" and nxt.text.upper() in ("IS", "NOT"):
        word = p.take().text.upper()
        test = {("IS", "NULL"): lambda xs: any(x is None for x in xs),
                ("NOT", "EXISTS"): lambda xs: not xs,
                ("IS", "TRUE"): lambda xs: any(x is True for x in xs),
                ("IS", "FALSE"): lambda xs: any(x is False for x in xs)}.get((nxt.text.upper(), word))
        if test is None:
            raise FilterPatternError(f"expected IS NULL, NOT EXISTS, IS TRUE or IS FALSE after {sel.text}")
        return lambda doc: test(resolve(doc, steps))
    if nxt.kind != "OP":
        raise FilterPatternError(f"expected an operator after {sel.text}, found {nxt.text!r}")
    value = Value.of(p.take())
    if nxt.text in ("<", ">", "<=", ">=") and value.kind != "number":
        raise FilterPatternError(f"{nxt.text} compares numbers: {value.text!r} is not a number")
    op = nxt.text
    return lambda doc: any(compare(x, op, value) for x in resolve(doc, steps))


class JsonPattern:
    def __init__(self, body: str):
        toks = _lex(body)
        if not toks:
            raise FilterPatternError("an empty JSON pattern { }")
        self._test = _Parser(toks, _json_leaf).parse()

    def matches(self, message: str) -> bool:
        try:
            doc = json.loads(message)
        except ValueError:
            return False
        if not isinstance(doc, (dict, list)):
            return False
        return bool(self._test(doc))

    def extract(self, message: str) -> dict[str, str]:
        return {}


# -- space-delimited patterns --------------------------------------------------------------------------------

_EVENT_FIELD = re.compile(r'"((?:[^"\\]|\\.)*)"|\[([^\]]*)\]|(\S+)')


def event_fields(message: str) -> list[str]:
    """The fields of a space-delimited event: "..." and [...] are one field each, without quotes/brackets."""
    out = []
    for m in _EVENT_FIELD.finditer(message):
        if m.group(1) is not None:
            out.append(m.group(1).replace('\\"', '"'))
        elif m.group(2) is not None:
            out.append(m.group(2))
        else:
            out.append(m.group(3))
    return out


def _split_commas(toks: list[Tok]) -> list[list[Tok]]:
    fields: list[list[Tok]] = [[]]
    depth = 0
    for tok in toks:
        depth += tok.kind == "LPAREN"
        depth -= tok.kind == "RPAREN"
        if tok.kind == "COMMA" and depth == 0:
            fields.append([])
        else:
            fields[-1].append(tok)
    return fields


@dataclass(frozen=True)
class _Field:
    name: str | None                                   # None for "..."
    test: Callable[[dict[str, str]], bool] | None = None


def _field_spec(toks: list[Tok], names: set[str]) -> _Field:
    if not toks:
        raise FilterPatternError("an empty field between commas in [...]")
    if toks[0].kind == "ELLIPSIS":
        if len(toks) > 1:
            raise FilterPatternError("... stands alone between commas")
        return _Field(None)
    if toks[0].kind not in ("WORD", "NUMBER"):
        raise FilterPatternError(f"a field of [...] starts with its name, found {toks[0].text!r}")
    name = toks[0].text
    if len(toks) == 1:
        return _Field(name)

    def leaf(p: _Parser) -> Callable[[dict[str, str]], bool]:
        subject = name
        first, second = p.peek(), p.peek(1)
        if first and first.kind in ("WORD", "NUMBER") and second and second.kind == "OP":
            subject = p.take().text
            if subject not in names:
                raise FilterPatternError(f"condition on {subject!r}, which is not a field of the pattern")
        op = p.take("OP").text
        value = Value.of(p.take())
        if op in ("<", ">", "<=", ">=") and value.kind != "number":
            raise FilterPatternError(f"{op} compares numbers: {value.text!r} is not a number")
        return lambda bound: subject in bound and compare(bound[subject], op, value, numeric_strings=True)

    # "status_code = 4* || status_code = 5*": the first comparison may name the field again
    return _Field(name, _Parser(toks[1:], leaf).parse() if toks[1].kind == "OP" else _Parser(toks, leaf).parse())


class DelimitedPattern:
    def __init__(self, body: str):
        raw = _split_commas(_lex(body))
        names = {f[0].text for f in raw if f and f[0].kind in ("WORD", "NUMBER")}
        self.fields = [_field_spec(f, names) for f in raw]
        if sum(f.name is None for f in self.fields) > MAX_ELLIPSES:
            raise FilterPatternError(f"at most {MAX_ELLIPSES} ... in one pattern")
        self.tests = [f.test for f in self.fields if f.test is not None]

    def _bindings(self, values: list[str], fi: int = 0, vi: int = 0,
                  bound: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
        bound = bound if bound is not None else {}
        if fi == len(self.fields):
            if vi == len(values):
                yield bound
            return
        field = self.fields[fi]
        if field.name is None:
            for skip in range(len(values) - vi + 1):
                yield from self._bindings(values, fi + 1, vi + skip, bound)
            return
        if vi < len(values):
            yield from self._bindings(values, fi + 1, vi + 1, {**bound, field.name: values[vi]})

    def _match(self, message: str) -> dict[str, str] | None:
        for bound in self._bindings(event_fields(message)):
            if all(test(bound) for test in self.tests):
                return bound
        return None

    def matches(self, message: str) -> bool:
        return self._match(message) is not None

    def extract(self, message: str) -> dict[str, str]:
        bound = self._match(message) or {}
        return {f"${k}": v for k, v in bound.items()}


# -- unstructured events: terms ------------------------------------------------------------------------------

_TERM = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|%([^%]*)%|([^\s"]+))')


@dataclass(frozen=True)
class _Term:
    text: str
    regex: re.Pattern | None = None

    def found_in(self, message: str) -> bool:
        return bool(self.regex.search(message)) if self.regex else self.text in message


class TermPattern:
    def __init__(self, pattern: str):
        self.required: list[_Term] = []
        self.optional: list[_Term] = []
        self.excluded: list[_Term] = []
        pos = 0
        for m in _TERM.finditer(pattern):
            if pattern[pos:m.start()].strip():
                raise FilterPatternError(f"unexpected {pattern[pos:m.start()].strip()!r}")
            pos = m.end()
            prefix, quoted, regex, bare = m.groups()
            if bare is not None and re.search(r"[{}\[\]]", bare):
                raise FilterPatternError(f"{bare!r}: put terms with {{ }} [ ] in double quotes")
            term = (_Term(regex, _regex(regex)) if regex is not None
                    else _Term(quoted.replace('\\"', '"') if quoted is not None else bare))
            {"": self.required, "?": self.optional, "-": self.excluded}[prefix].append(term)
        if pattern[pos:].strip():
            raise FilterPatternError(f"unexpected {pattern[pos:].strip()!r} (a quoted phrase is not closed?)")

    def matches(self, message: str) -> bool:
        return (all(t.found_in(message) for t in self.required)
                and not any(t.found_in(message) for t in self.excluded)
                and (not self.optional or any(t.found_in(message) for t in self.optional)))

    def extract(self, message: str) -> dict[str, str]:
        return {}


class MatchAll:
    def matches(self, message: str) -> bool:
        return True

    def extract(self, message: str) -> dict[str, str]:
        return {}


@functools.lru_cache(maxsize=256)
def compile(pattern: str | None):  # noqa: A001 - the name says what it does, like re.compile
    """The matcher of a filter pattern; ``FilterPatternError`` when AWS would reject it."""
    text = (pattern or "").strip()
    if len(pattern or "") > MAX_PATTERN_LENGTH:
        raise FilterPatternError(f"a filter pattern has at most {MAX_PATTERN_LENGTH} characters")
    if text.count("%") // 2 > MAX_REGEX:
        raise FilterPatternError(f"at most {MAX_REGEX} regular expressions in one filter pattern")
    if text in ("", '""', '" "'):
        return MatchAll()
    if text.startswith("{"):
        if not text.endswith("}"):
            raise FilterPatternError("a JSON pattern ends with }")
        return JsonPattern(text[1:-1])
    if text.startswith("["):
        if not text.endswith("]"):
            raise FilterPatternError("a space-delimited pattern ends with ]")
        return DelimitedPattern(text[1:-1])
    return TermPattern(text)


def matches(pattern: str | None, message: str) -> bool:
    return compile(pattern).matches(message)
