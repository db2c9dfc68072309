"""The query language: one parser for every command that takes QUERY or --where.

    audio.noise.level_average < -60
    media_info.audio.channels = 2 and not media_info.audio.codec = mp3
    (loudness < -30 or true_peak > -1) and duration > 10m
    path ~ "*afs04*"                 text match: * and ? wildcards, no wildcard = substring
    audio.hum.frequency?             present (not null; for lists: not empty)
    not audio.hum.frequency?         absent
    codec in (mp3, aac, opus)
    media_info.has_video             a bool field alone means "is true"

Operators: = (==), !=, <, <=, >, >=, ~, !~, in; logic: and (&&), or (||), not (!), parentheses.
Values: numbers, numbers with a unit that fits the field (10m, 1h30m, 1:30, 500ms, 8kHz, 128k,
20MB, -23LUFS, -1dBTP, 5%), words (mp3, pcm_s16le), "quoted strings", true/false, null.
Fields: dotted names, aliases and unique dotted suffixes (see catalog/fields.py).

A comparison with a missing value is false (so `not x < 3` includes files where x is missing);
`x != v` is true where x is missing. Text `=` is exact; `~` is case-insensitive (ASCII).

The text is parsed to an AST (`parse`), then compiled to parameterised SQL (`to_sql`): values
always travel as parameters, column expressions come from the caller. The same AST compiles for
SQLite and DuckDB. Errors are `QueryError`s that name the position and the nearest fields.

Limits (a query past one is a QueryError, exit status 2, never a crash): at most MAX_NESTING
levels of parentheses and `not`, MAX_CONDITIONS comparisons, MAX_PATTERN_CHARS characters in a
`~` pattern. An `in (...)` list may be of any length: past IN_LIST_PARAMS values it travels as one
JSON parameter (SQLite's json_each; a list parameter for DuckDB) instead of one per value.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Union

from .fields import ALL_UNIT_WORDS, NUMBER_PATTERN, Field, FieldSet, UnknownFieldError, parse_quantity, registry

# --------------------------------------------------------------------------------------------
# errors


class QueryError(ValueError):
    """A query that cannot be parsed or does not fit the fields; str() shows where."""

    def __init__(self, message: str, *, query: str = "", position: int = 0, length: int = 1,
                 suggestions: list[str] | None = None):
        self.message = message
        self.query = query
        self.position = position  # 0-based offset into the query text
        self.length = max(1, length)
        self.suggestions = list(suggestions or [])
        super().__init__(message)

    def __str__(self) -> str:
        if not self.query:
            return self.message
        text = f"{self.message} (at position {self.position + 1})\n  {self.query}\n  " \
               f"{' ' * self.position}{'^' * min(self.length, max(1, len(self.query) - self.position))}"
        return text


MAX_NESTING = 50  # levels of parentheses and `not` (each one a level)
MAX_CONDITIONS = 250  # comparisons, presence tests and `in` lists in one query
MAX_PATTERN_CHARS = 4096  # a `~` pattern (SQLite refuses LIKE patterns past 50 kB)
IN_LIST_PARAMS = 500  # longer `in` lists go as one parameter


# --------------------------------------------------------------------------------------------
# the AST


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # = != < <= > >= ~ !~
    value: object  # float | int | str | bool | None (already in the field's unit)
    pos: int = 0


@dataclass(frozen=True)
class InList:
    field: Field
    values: tuple
    pos: int = 0


@dataclass(frozen=True)
class Present:
    field: Field
    pos: int = 0


@dataclass(frozen=True)
class Truthy:
    field: Field  # a bool field used alone
    pos: int = 0


@dataclass(frozen=True)
class And:
    parts: tuple


@dataclass(frozen=True)
class Or:
    parts: tuple


@dataclass(frozen=True)
class Not:
    part: object


Node = Union[Compare, InList, Present, Truthy, And, Or, Not]


def fields_of(node: Node) -> list[Field]:
    """Every field a query mentions (in order, once)."""
    out: list[Field] = []

    def walk(n) -> None:
        if isinstance(n, (And, Or)):
            for p in n.parts:
                walk(p)
        elif isinstance(n, Not):
            walk(n.part)
        elif n.field not in out:
            out.append(n.field)

    walk(node)
    return out


# --------------------------------------------------------------------------------------------
# the parser (recursive descent over the text; lexing is driven by the grammar so that a value
# like *afs?4* or 1:30 is read as a value, and a name as a name)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_OPS = re.compile(r"==|!=|<=|>=|!~|=|<|>|~")
_BARE_VALUE = re.compile(r"[^\s()'\",]+")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
_NULL = {"null", "none"}
_KEYWORDS = {"and", "or", "not", "in"}
_UNIT_WORD = re.compile(r"[A-Za-z%/]+")


class _Parser:
    def __init__(self, text: str, fields: FieldSet):
        self.text = text
        self.fields = fields
        self.pos = 0
        self.depth = 0
        self.conditions = 0

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"the query nests more than {MAX_NESTING} levels of parentheses and "
                             "'not': write it flatter")

    # --- helpers
    def error(self, message: str, pos: int | None = None, length: int = 1, suggestions=None):
        return QueryError(message, query=self.text, position=self.pos if pos is None else pos,
                          length=length, suggestions=suggestions)

    def ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.ws()
        return self.pos >= len(self.text)

    def keyword(self, *words: str) -> bool:
        """Consume one of the keywords (case-insensitive, whole word) or symbols."""
        self.ws()
        for w in words:
            end = self.pos + len(w)
            chunk = self.text[self.pos:end]
            if w.isalpha():
                if chunk.lower() == w and (end >= len(self.text) or not (self.text[end].isalnum()
                                                                          or self.text[end] in "_.")):
                    self.pos = end
                    return True
            elif chunk == w:
                if w == "!" and end < len(self.text) and self.text[end] in "=~":
                    continue
                self.pos = end
                return True
        return False

    def describe_here(self) -> str:
        if self.pos >= len(self.text):
            return "the end of the query"
        m = _BARE_VALUE.match(self.text, self.pos)
        return repr(m.group(0)) if m else repr(self.text[self.pos])

    # --- grammar
    def parse(self) -> Node:
        if self.at_end():
            raise self.error("empty query")
        node = self.parse_or()
        if not self.at_end():
            if self.text[self.pos] == ")":
                raise self.error("unbalanced ')'")
            raise self.error(f"expected 'and', 'or' or the end of the query, found {self.describe_here()}",
                             length=len(self.describe_here()) - 2)
        return node

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.keyword("or", "||", "|"):
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def parse_and(self) -> Node:
        parts = [self.parse_not()]
        while self.keyword("and", "&&", "&"):
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def parse_not(self) -> Node:
        if self.keyword("not", "!"):
            self.enter()
            node = Not(self.parse_not())
            self.depth -= 1
            return node
        return self.parse_primary()

    def parse_primary(self) -> Node:
        self.ws()
        if self.pos >= len(self.text):
            raise self.error("the query ends too early: expected a field name or '('")
        if self.text[self.pos] == "(":
            open_pos = self.pos
            self.pos += 1
            self.enter()
            node = self.parse_or()
            self.depth -= 1
            self.ws()
            if self.pos >= len(self.text) or self.text[self.pos] != ")":
                raise self.error("missing ')' for the '(' here", pos=open_pos)
            self.pos += 1
            return node
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.error(f"the query has more than {MAX_CONDITIONS} conditions: use "
                             "'field in (a, b, ...)' for long lists of values")
        return self.parse_predicate()

    def parse_field(self) -> tuple[Field, int]:
        self.ws()
        start = self.pos
        m = _NAME.match(self.text, self.pos)
        if not m:
            raise self.error(f"expected a field name, found {self.describe_here()}")
        name = m.group(0)
        if name.lower() in _KEYWORDS:
            raise self.error(f"expected a field name, found the keyword {name!r}", length=len(name))
        self.pos = m.end()
        try:
            return self.fields.resolve(name), start
        except UnknownFieldError as exc:
            msg = str(exc)
            if not exc.ambiguous:
                msg += " (`audiotrove fields` lists them all)"
            raise self.error(msg, pos=start, length=len(name), suggestions=exc.suggestions) from None

    def parse_predicate(self) -> Node:
        field, start = self.parse_field()
        self.ws()
        if self.text.startswith("?", self.pos):
            self.pos += 1
            return Present(field, start)
        if self.keyword("in"):
            return self.parse_in(field, start)
        m = _OPS.match(self.text, self.pos)
        if not m:
            if field.kind == "bool":
                return Truthy(field, start)
            hint = " (or '?' to test presence)"
            raise self.error(f"expected an operator (=, !=, <, <=, >, >=, ~, in) after {field.name}"
                             f"{hint}, found {self.describe_here()}")
        op = "=" if m.group(0) == "==" else m.group(0)
        op_pos = self.pos
        self.pos = m.end()
        raw, quoted, vpos = self.read_value()
        if field.kind == "number" and not quoted:
            raw = self.read_spaced_unit(raw)
        return self.make_compare(field, op, raw, quoted, vpos, op_pos, start)

    def parse_in(self, field: Field, start: int) -> Node:
        self.ws()
        if not self.text.startswith("(", self.pos):
            raise self.error("expected '(' after 'in': codec in (mp3, aac)")
        self.pos += 1
        values = []
        while True:
            raw, quoted, vpos = self.read_value()
            values.append(self.convert(field, "=", raw, quoted, vpos))
            self.ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith(")", self.pos):
                self.pos += 1
                break
            raise self.error("expected ',' or ')' in the list of values")
        if field.kind == "list":
            raise self.error(f"{field.name} is a list: test it with '?' instead", pos=start)
        return InList(field, tuple(values), start)

    def read_value(self) -> tuple[str, bool, int]:
        self.ws()
        start = self.pos
        if self.pos >= len(self.text):
            raise self.error("the query ends too early: expected a value")
        quote = self.text[self.pos]
        if quote in "\"'":
            out = []
            i = self.pos + 1
            while i < len(self.text):
                ch = self.text[i]
                if ch == "\\" and i + 1 < len(self.text):
                    out.append(self.text[i + 1])
                    i += 2
                    continue
                if ch == quote:
                    self.pos = i + 1
                    return "".join(out), True, start
                out.append(ch)
                i += 1
            raise self.error("unterminated string: missing closing " + quote, pos=start)
        m = _BARE_VALUE.match(self.text, self.pos)
        if not m:
            raise self.error(f"expected a value, found {self.describe_here()}")
        self.pos = m.end()
        return m.group(0), False, start

    def read_spaced_unit(self, raw: str) -> str:
        """`loudness < -23 LUFS`, `duration > 10 min`: a unit word after a number joins it."""
        save = self.pos
        self.ws()
        m = _UNIT_WORD.match(self.text, self.pos)
        if (m and m.group(0).lower() in ALL_UNIT_WORDS and re.fullmatch(NUMBER_PATTERN, raw)
                and (m.end() >= len(self.text) or not (self.text[m.end()].isalnum()
                                                        or self.text[m.end()] in "._"))):
            self.pos = m.end()
            return raw + m.group(0)
        self.pos = save
        return raw

    def make_compare(self, field: Field, op: str, raw: str, quoted: bool, vpos: int, op_pos: int,
                     start: int) -> Node:
        if field.kind == "list":
            raise self.error(f"{field.name} is a list: test it with '?' (present and not empty), "
                             "or compare its count field", pos=start, length=len(field.name))
        if op in ("~", "!~") and field.kind != "text":
            raise self.error(f"'{op}' matches text, and {field.name} is a {field.kind}", pos=op_pos,
                             length=len(op))
        if op in ("~", "!~") and len(raw) > MAX_PATTERN_CHARS:
            raise self.error(f"a '{op}' pattern is longer than {MAX_PATTERN_CHARS} characters",
                             pos=vpos, length=len(raw))
        value = self.convert(field, op, raw, quoted, vpos)
        if value is None and op not in ("=", "!="):
            raise self.error(f"null can only be compared with = or != (or use '{field.name}?')",
                             pos=vpos, length=len(raw))
        if field.kind == "bool" and op not in ("=", "!="):
            raise self.error(f"{field.name} is true/false: use = or !=", pos=op_pos, length=len(op))
        return Compare(field, op, value, start)

    def convert(self, field: Field, op: str, raw: str, quoted: bool, vpos: int):
        if not quoted and raw.lower() in _NULL:
            return None
        if field.kind == "text":
            return raw
        if field.kind == "bool":
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise self.error(f"{field.name} is true/false, not {raw!r}", pos=vpos, length=len(raw))
        if field.kind == "number":
            try:
                value = field.parse(raw)
            except ValueError as exc:
                raise self.error(str(exc), pos=vpos, length=len(raw) + (2 if quoted else 0)) from None
            return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value
        return raw


def parse(text: str, fields: FieldSet | None = None) -> Node:
    """Parse a query into an AST whose fields are resolved against `fields` (QueryError if not)."""
    return _Parser(text, registry() if fields is None else fields).parse()


# --------------------------------------------------------------------------------------------
# compiling to SQL

Column = Callable[[Field], str]


def glob_to_like(pattern: str) -> str:
    r"""A shell-style pattern (* any run, ? one char) as a LIKE pattern with \ as escape.
    Without a wildcard the pattern matches anywhere (substring)."""
    out = []
    for ch in pattern:
        if ch in "\\%_":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    like = "".join(out)
    if "*" not in pattern and "?" not in pattern:
        like = f"%{like}%"
    return like


def _param(field: Field, value):
    if isinstance(value, bool):
        return int(value)
    return value


def to_sql(node: Node, column: Column, *, dialect: str = "sqlite") -> tuple[str, list]:
    """Compile an AST to a SQL boolean expression and its parameters.

    `column(field)` returns the SQL expression of a field (a quoted column name, json_extract...);
    it is the only text pasted into the SQL, and it comes from the caller, never from the query.
    Every predicate yields true or false, never NULL (missing values compare false).
    `dialect` (sqlite | duckdb) only changes how a long `in` list travels.
    """
    params: list = []

    def emit(n) -> str:
        if isinstance(n, And):
            return "(" + " AND ".join(emit(p) for p in n.parts) + ")"
        if isinstance(n, Or):
            return "(" + " OR ".join(emit(p) for p in n.parts) + ")"
        if isinstance(n, Not):
            return f"(NOT {emit(n.part)})"
        col = column(n.field)
        if isinstance(n, Present):
            if n.field.kind == "list":
                return f"({col} IS NOT NULL AND {col} NOT IN ('[]', ''))"
            return f"({col} IS NOT NULL)"
        if isinstance(n, Truthy):
            return f"({col} IS NOT NULL AND {col} <> 0)"
        if isinstance(n, InList):
            present = [v for v in n.values if v is not None]
            parts = []
            if len(present) > IN_LIST_PARAMS:
                values = [_param(n.field, v) for v in present]
                if dialect == "duckdb":
                    params.append(values)
                    parts.append(f"({col} IS NOT NULL AND {col} IN (SELECT unnest(?)))")
                else:
                    params.append(json.dumps(values))
                    parts.append(f"({col} IS NOT NULL AND {col} IN (SELECT value FROM json_each(?)))")
            elif present:
                params.extend(_param(n.field, v) for v in present)
                parts.append(f"({col} IS NOT NULL AND {col} IN ({', '.join('?' * len(present))}))")
            if len(present) < len(n.values):
                parts.append(f"({col} IS NULL)")
            return "(" + " OR ".join(parts) + ")"
        assert isinstance(n, Compare)
        if n.value is None:
            return f"({col} IS NULL)" if n.op == "=" else f"({col} IS NOT NULL)"
        if n.op in ("~", "!~"):
            params.append(glob_to_like(str(n.value)))
            if n.op == "~":
                return f"({col} IS NOT NULL AND {col} LIKE ? ESCAPE '\\')"
            return f"({col} IS NULL OR {col} NOT LIKE ? ESCAPE '\\')"
        params.append(_param(n.field, n.value))
        if n.op == "!=":
            return f"({col} IS NULL OR {col} <> ?)"
        return f"({col} IS NOT NULL AND {col} {n.op} ?)"

    return emit(node), params


def compile_query(text: str | None, fields: FieldSet, column: Column) -> tuple[str, list]:
    """Parse and compile; an empty or None query selects everything ('1', [])."""
    if text is None or not str(text).strip():
        return "1", []
    return to_sql(parse(text, fields), column)


# --------------------------------------------------------------------------------------------
# field lists and sort keys (--fields a,b  --sort field[:desc],other)


def parse_field_list(text: str | list[str], fields: FieldSet | None = None) -> list[Field]:
    """'a,b c' or ['a', 'b'] -> resolved fields (QueryError naming the bad one)."""
    fields = registry() if fields is None else fields
    names = _split_names(text)
    out = []
    for name, pos, whole in names:
        try:
            f = fields.resolve(name)
        except UnknownFieldError as exc:
            raise QueryError(str(exc), query=whole, position=pos, length=len(name),
                             suggestions=exc.suggestions) from None
        if f not in out:
            out.append(f)
    return out


def parse_sort(text: str, fields: FieldSet | None = None) -> list[tuple[Field, bool]]:
    """'loudness:desc,path' -> [(field, descending), ...]."""
    fields = registry() if fields is None else fields
    keys = []
    for item, pos, whole in _split_names(text):
        name, _, direction = item.partition(":")
        direction = direction.lower()
        if direction not in ("", "asc", "desc"):
            raise QueryError(f"sort direction must be asc or desc, not {direction!r}", query=whole,
                             position=pos + len(name) + 1, length=len(direction))
        try:
            f = fields.resolve(name)
        except UnknownFieldError as exc:
            raise QueryError(str(exc), query=whole, position=pos, length=len(name),
                             suggestions=exc.suggestions) from None
        if f.kind == "list":
            raise QueryError(f"cannot sort by {f.name}: it is a list", query=whole, position=pos,
                             length=len(name))
        keys.append((f, direction == "desc"))
    return keys


def _split_names(text) -> list[tuple[str, int, str]]:
    whole = text if isinstance(text, str) else ",".join(text)
    out = []
    for m in re.finditer(r"[^,\s]+", whole):
        out.append((m.group(0), m.start(), whole))
    if not out:
        raise QueryError("no field names given", query=whole, position=0)
    return out


__all__ = [
    "QueryError", "Compare", "InList", "Present", "Truthy", "And", "Or", "Not", "Node",
    "parse", "to_sql", "compile_query", "parse_quantity", "glob_to_like", "fields_of",
    "parse_field_list", "parse_sort",
]
