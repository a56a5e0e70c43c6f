"""Reading the DOT text of kernel_ext.graphs in tests: nodes with their attributes, edges,
clusters. Every statement the builders write is one line, which keeps this simple."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_STATEMENT = re.compile(r'^\s*(\w+) \[(.*)\];$')
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?;$")
_ATTRIBUTE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\s]+)')


def attributes(text: str) -> dict[str, str]:
    found = {}
    for key, value in _ATTRIBUTE.findall(text):
        found[key] = value[1:-1] if value.startswith('"') else value
    return found


@dataclass
class Node:
    name: str
    attrs: dict[str, str]
    cluster: str | None

    @property
    def lines(self) -> list[str]:
        return self.attrs.get("label", "").split("\\n")

    @property
    def title(self) -> str:
        return self.lines[0]

    @property
    def fill(self) -> str:
        return self.attrs.get("fillcolor", "")

    @property
    def border(self) -> str:
        return self.attrs.get("color", "")


@dataclass
class Edge:
    tail: str
    head: str
    attrs: dict[str, str]


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    clusters: dict[str, dict[str, str]] = field(default_factory=dict)
    same_rank: list[set[str]] = field(default_factory=list)
    label: str = ""

    def titled(self, title: str) -> Node:
        matching = [n for n in self.nodes.values() if n.title == title]
        assert len(matching) == 1, (title, [n.title for n in self.nodes.values()])
        return matching[0]

    def starting(self, prefix: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.title.startswith(prefix)]

    def edge(self, tail: str, head: str) -> Edge:
        matching = [e for e in self.edges if e.tail == tail and e.head == head]
        assert len(matching) == 1, (tail, head, [(e.tail, e.head) for e in self.edges])
        return matching[0]

    def pairs(self, **wanted: str) -> set[tuple[str, str]]:
        """(tail, head) of the edges whose attributes include ``wanted``."""
        return {(e.tail, e.head) for e in self.edges if all(e.attrs.get(k) == v for k, v in wanted.items())}


def read(dot: str) -> Graph:
    graph = Graph()
    clusters: list[str] = []
    for line in dot.splitlines():
        stripped = line.strip()
        if stripped.startswith("subgraph cluster_"):
            clusters.append(stripped.split()[1])
            continue
        if stripped == "}" and clusters:
            clusters.pop()
            continue
        if stripped.startswith("{rank=same;"):
            graph.same_rank.append({n.strip() for n in stripped[len("{rank=same;"):-1].split(";") if n.strip()})
            continue
        edge = _EDGE.match(line)
        if edge:
            graph.edges.append(Edge(edge.group(1), edge.group(2), attributes(edge.group(3) or "")))
            continue
        statement = _STATEMENT.match(line)
        if statement is None:
            continue
        name, attrs = statement.group(1), attributes(statement.group(2))
        if name == "graph":
            if clusters:
                graph.clusters[clusters[-1]] = attrs
            else:
                graph.label = attrs.get("label", "")
        elif name not in ("node", "edge"):
            graph.nodes[name] = Node(name, attrs, clusters[-1] if clusters else None)
    return graph
