"""Temporal's list filter ("visibility query"), the subset this engine understands, as SQL.

``WorkflowType = 'Hello' AND (ExecutionStatus = 'Running' OR StartTime > '2024-05-01T00:00:00Z')``
becomes a ``WHERE`` fragment over the ``executions`` table (aliased ``e``) with ``?``
parameters, so user text never becomes SQL text.

Grammar (keywords are case-insensitive, attribute names are not, as in Temporal)::

    filter     := or_expr
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := term ("AND" term)*
    term       := "(" or_expr ")" | condition
    condition  := NAME op VALUE | NAME "BETWEEN" VALUE "AND" VALUE
                | NAME ["NOT"] "IN" "(" VALUE ("," VALUE)* ")" | NAME "STARTS_WITH" VALUE
                | NAME "IS" ["NOT"] "NULL"
    op         := "=" | "!=" | "<>" | "<" | ">" | "<=" | ">="

Values are quoted strings (``'...'`` or ``"..."``; a doubled quote or a backslash escapes
one). Times are RFC 3339 (``2024-05-01T12:00:00Z``, ``+02:00`` offsets) or plain dates.

Custom search attributes (``CustomKeywordField = 'x'``) are those the database has seen, by
the type they were first given: Int and Double values may be bare numbers and compare as
numbers, Bool takes ``true``/``false``, Datetime an RFC 3339 time, and a KeywordList matches
when one of its keywords does (``=``, ``IN``). Each condition on one is a look-up in the
``search_attributes`` index; ``!=`` and ``NOT IN`` match runs without that value (or
without the attribute), as in Temporal's Elasticsearch visibility.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from engine.errors import ListFilterError

__all__ = ["compile_list_filter", "FIELDS", "STATUSES"]

# Search attribute -> (column, kind). Kinds decide which values and operators make sense.
FIELDS: dict[str, tuple[str, str]] = {
    "WorkflowId": ("e.workflow_id", "keyword"),
    "RunId": ("e.run_id", "keyword"),
    "WorkflowType": ("e.workflow_type", "keyword"),
    "TaskQueue": ("e.task_queue", "keyword"),
    "ExecutionStatus": ("e.status", "status"),
    "StartTime": ("e.start_time", "time"),
    "CloseTime": ("e.close_time", "time"),
}
STATUSES = ("Running", "Completed", "Failed", "Canceled", "Terminated", "ContinuedAsNew", "TimedOut")
_STATUS_BY_LOWER = {s.lower(): s for s in STATUSES}
_COMPARE = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
_EXAMPLE = "WorkflowType='Hello' AND ExecutionStatus='Running'"
# The parser recurses once per bracket, and SQLite refuses expressions more than 1000 deep
# (an OR chain is as deep as it is long) or with more than 32766 parameters: stop well
# before either with a message rather than a RecursionError or a database error.
_MAX_NESTING = 50
_MAX_CONDITIONS = 500
_MAX_VALUES = 10_000
# Every condition has exactly one of these: an operator token or one of these keywords.
_CONDITION_KEYWORDS = frozenset({"BETWEEN", "IN", "IS", "STARTS_WITH"})

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "BETWEEN", "IN", "NOT", "IS", "NULL", "STARTS_WITH"}
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class _Token:
    kind: str  # string, op, punct, word, keyword, number, end
    text: str
    position: int  # 1-based column, as a user counts

    def shown(self) -> str:
        return "the end of the filter" if self.kind == "end" else f"{self.text!r} (column {self.position})"


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    at = 0
    while at < len(query):
        match = _TOKEN.match(query, at)
        if match is None or match.lastgroup is None:  # only trailing blanks are left
            break
        kind, text = match.lastgroup, match.group(match.lastgroup)
        position = match.start(kind) + 1
        if kind == "bad":
            if text in "'\"":
                raise ListFilterError(f"Unclosed quote at column {position} of the list filter: close the string with {text}.")
            raise ListFilterError(f"Unexpected character {text!r} at column {position} of the list filter; example of a filter: {_EXAMPLE}")
        if kind == "word" and text.upper() in _KEYWORDS:
            kind, text = "keyword", text.upper()
        tokens.append(_Token(kind, text, position))
        at = match.end()
    tokens.append(_Token("end", "", len(query) + 1))
    return tokens


def _unquote(text: str) -> str:
    quote, body = text[0], text[1:-1]
    return re.sub(r"\\(.)|" + quote * 2, lambda m: m.group(1) or quote, body)


# A custom attribute's type -> the kind its values are read as.
_CUSTOM_KINDS = {
    "Keyword": "keyword", "Text": "keyword", "KeywordList": "keyword", "Int": "int", "Double": "double",
    "Bool": "bool", "Datetime": "time",
}
_CUSTOM_SQL = "e.run_id {negation}IN (SELECT run_id FROM search_attributes WHERE name = ?{condition})"


class _Parser:
    def __init__(self, query: str, custom: Mapping[str, str]) -> None:
        self.tokens = _tokenize(query)
        self.index = 0
        self.params: list[Any] = []
        self.custom = custom

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, kind: str, text: str) -> bool:
        token = self.peek()
        if token.kind == kind and token.text == text:
            self.index += 1
            return True
        return False

    def expect(self, kind: str, text: str, what: str) -> None:
        if not self.accept(kind, text):
            raise ListFilterError(f"Expected {what} at {self.peek().shown()} in the list filter.")

    def parse(self) -> str:
        if self.peek().kind == "end":
            raise ListFilterError(f"The list filter is empty: give a condition such as {_EXAMPLE}, or no --query at all.")
        self.check_size()
        sql = self.or_expr()
        token = self.peek()
        if token.kind != "end":
            raise ListFilterError(f"Unexpected {token.shown()} in the list filter: join conditions with AND or OR.")
        return sql

    def check_size(self) -> None:
        """Refuse, before parsing, what the parser's recursion or SQLite could not take."""
        conditions = values = 0
        groups: list[bool] = []  # per open bracket: does it group conditions (not an IN list)?
        previous = self.tokens[0]
        for token in self.tokens:
            if token.kind == "punct" and token.text == "(":
                groups.append(not (previous.kind == "keyword" and previous.text == "IN"))
                if sum(groups) > _MAX_NESTING:
                    raise ListFilterError(
                        f"The list filter nests brackets more than {_MAX_NESTING} deep (at column "
                        f"{token.position}): remove the brackets that group a single condition."
                    )
            elif token.kind == "punct" and token.text == ")" and groups:
                groups.pop()
            elif token.kind == "op" or (token.kind == "keyword" and token.text in _CONDITION_KEYWORDS):
                conditions += 1
            elif token.kind in ("string", "number"):
                values += 1
            previous = token
        if conditions > _MAX_CONDITIONS:
            raise ListFilterError(
                f"The list filter has more than {_MAX_CONDITIONS} conditions: list several values "
                "of one attribute with IN ('a', 'b', ...), or split the list into several."
            )
        if values > _MAX_VALUES:
            raise ListFilterError(f"The list filter has more than {_MAX_VALUES} values: split the list into several.")

    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while self.accept("keyword", "OR"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.term()]
        while self.accept("keyword", "AND"):
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def term(self) -> str:
        if self.accept("punct", "("):
            inner = self.or_expr()
            self.expect("punct", ")", "')' closing the parenthesis")
            return inner
        return self.condition()

    def condition(self) -> str:
        token = self.take()
        if token.kind == "word" and token.text in self.custom and token.text not in FIELDS:
            return self.custom_condition(token.text, self.custom[token.text])
        if token.kind != "word" or token.text not in FIELDS:
            known = ", ".join(FIELDS)
            if token.kind == "word":
                custom = ", ".join(sorted(self.custom)) or "none yet"
                raise ListFilterError(
                    f"Unknown search attribute {token.shown()} in the list filter: use one of {known}, or a custom "
                    f"search attribute some run of this database has (known: {custom}); names are case-sensitive."
                )
            raise ListFilterError(f"Expected a search attribute ({known}) at {token.shown()} in the list filter.")
        column, kind = FIELDS[token.text]
        name = token.text
        if self.accept("keyword", "BETWEEN"):
            self._no_order_on_status(name, kind, "BETWEEN")
            low = self.value(name, kind)
            self.expect("keyword", "AND", f"AND between the two bounds of {name} BETWEEN")
            high = self.value(name, kind)
            self.params += [low, high]
            return f"{column} BETWEEN ? AND ?"
        negated = self.accept("keyword", "NOT")
        if negated or (self.peek().kind == "keyword" and self.peek().text == "IN"):
            values = self.in_list(name, kind)
            self.params += values
            return f"{column} {'NOT IN' if negated else 'IN'} ({', '.join('?' * len(values))})"
        if self.accept("keyword", "IS"):
            negated = self.accept("keyword", "NOT")
            self.expect("keyword", "NULL", "NULL after IS")
            return f"{column} IS {'NOT ' if negated else ''}NULL"
        if self.accept("keyword", "STARTS_WITH"):
            if kind != "keyword":
                raise ListFilterError(f"STARTS_WITH works on WorkflowId, RunId, WorkflowType and TaskQueue, not on {name}.")
            prefix = self.value(name, kind)
            self.params.append(re.sub(r"([\\%_])", r"\\\1", prefix) + "%")
            return f"{column} LIKE ? ESCAPE '\\'"
        op = self.take()
        if op.kind != "op":
            raise ListFilterError(f"Expected an operator (=, !=, <, >, <=, >=, BETWEEN, IN, STARTS_WITH) after {name}, found {op.shown()} in the list filter.")
        if op.text not in ("=", "!=", "<>"):
            self._no_order_on_status(name, kind, op.text)
        self.params.append(self.value(name, kind))
        return f"{column} {_COMPARE[op.text]} ?"

    def in_list(self, name: str, kind: str) -> list[Any]:
        """``IN (v1, v2, ...)`` after a name (and an optional NOT, already read)."""
        self.expect("keyword", "IN", "IN after NOT")
        self.expect("punct", "(", f"'(' opening the list of {name} IN")
        values = [self.value(name, kind)]
        while self.accept("punct", ","):
            values.append(self.value(name, kind))
        self.expect("punct", ")", f"')' closing the list of {name} IN")
        return values

    def custom_condition(self, name: str, type_name: str) -> str:
        """A condition on a custom search attribute: a look-up in its index."""
        kind = _CUSTOM_KINDS.get(type_name, "keyword")

        def lookup(condition: str, values: list[Any], negated: bool = False) -> str:
            self.params += [name, *values]
            return _CUSTOM_SQL.format(negation="NOT " if negated else "", condition=condition)

        if self.accept("keyword", "BETWEEN"):
            low = self.value(name, kind)
            self.expect("keyword", "AND", f"AND between the two bounds of {name} BETWEEN")
            high = self.value(name, kind)
            return lookup(" AND value BETWEEN ? AND ?", [low, high])
        negated = self.accept("keyword", "NOT")
        if negated or (self.peek().kind == "keyword" and self.peek().text == "IN"):
            values = self.in_list(name, kind)
            return lookup(f" AND value IN ({', '.join('?' * len(values))})", values, negated)
        if self.accept("keyword", "IS"):
            negated = self.accept("keyword", "NOT")
            self.expect("keyword", "NULL", "NULL after IS")
            return lookup("", [], not negated)
        if self.accept("keyword", "STARTS_WITH"):
            if kind != "keyword":
                raise ListFilterError(f"STARTS_WITH works on text and keyword attributes, not on {name} ({type_name}).")
            prefix = self.value(name, kind)
            return lookup(" AND value LIKE ? ESCAPE '\\'", [re.sub(r"([\\%_])", r"\\\1", prefix) + "%"])
        op = self.take()
        if op.kind != "op":
            raise ListFilterError(f"Expected an operator (=, !=, <, >, <=, >=, BETWEEN, IN, STARTS_WITH) after {name}, found {op.shown()} in the list filter.")
        if kind == "bool" and op.text not in ("=", "!=", "<>"):
            raise ListFilterError(f"{name} is a Bool: it takes = or !=, not {op.text}, e.g. {name} = true.")
        value = self.value(name, kind)
        if op.text in ("!=", "<>"):
            return lookup(" AND value = ?", [value], negated=True)
        return lookup(f" AND value {_COMPARE[op.text]} ?", [value])

    def value(self, name: str, kind: str) -> Any:
        if kind in ("int", "double", "bool"):
            return self.scalar(name, kind)
        token = self.take()
        if token.kind != "string":
            hint = f"{name}='...'" if kind != "time" else f"{name} > '2024-05-01T00:00:00Z'"
            raise ListFilterError(f"Expected a quoted value for {name} at {token.shown()} in the list filter, e.g. {hint}.")
        text = _unquote(token.text)
        if kind == "status":
            status = _STATUS_BY_LOWER.get(text.lower())
            if status is None:
                raise ListFilterError(f"Unknown ExecutionStatus {text!r} at column {token.position} of the list filter: use one of {', '.join(STATUSES)}.")
            return status
        if kind == "time":
            return _timestamp(text, name, token)
        return text

    def scalar(self, name: str, kind: str) -> Any:
        token = self.take()
        text = _unquote(token.text) if token.kind == "string" else token.text
        try:
            if kind == "bool" and token.kind in ("string", "word") and text.lower() in ("true", "false"):
                return int(text.lower() == "true")
            if kind == "int" and token.kind in ("string", "number"):
                return int(text)
            if kind == "double" and token.kind in ("string", "number"):
                return float(text)
        except ValueError:
            pass
        example = {"int": "42", "double": "1.5", "bool": "true"}[kind]
        what = {"int": "an integer", "double": "a number", "bool": "true or false"}[kind]
        raise ListFilterError(f"{name} takes {what}, not {token.shown()} in the list filter, e.g. {name} = {example}.")

    @staticmethod
    def _no_order_on_status(name: str, kind: str, op: str) -> None:
        if kind == "status":
            raise ListFilterError(f"ExecutionStatus takes =, != or IN, not {op}: e.g. ExecutionStatus IN ('Failed', 'TimedOut').")


def _timestamp(text: str, name: str, token: _Token) -> float:
    try:
        if _DATE.fullmatch(text):
            return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()
        match = _TIME.fullmatch(text)
        if match is not None:
            # fromisoformat in 3.11 takes at most 6 fraction digits; Temporal writes 9.
            fraction = (match.group(7) or "")[:7]
            zone = "+00:00" if match.group(8) in ("Z", "z") else match.group(8)
            moment = datetime.fromisoformat(f"{text[:10]}T{text[11:19]}{fraction}{zone}")
            return moment.timestamp()
    except ValueError:
        pass
    raise ListFilterError(
        f"{name} value {text!r} at column {token.position} of the list filter is not a time: "
        "write RFC 3339 such as '2024-05-01T12:00:00Z' (or a date, '2024-05-01')."
    )


def compile_list_filter(query: str, custom: Mapping[str, str] | None = None) -> tuple[str, list[Any]]:
    """Translate a Temporal list filter into ``(sql, params)`` for a ``WHERE`` clause.

    ``custom`` maps the custom search attributes the database knows to their type names
    (``{"CustomKeywordField": "Keyword"}``).

    Raises:
        ListFilterError: the filter cannot be read; the message names the token and column.
    """
    parser = _Parser(query, custom or {})
    sql = parser.parse()
    return sql, parser.params
