"""Pieces shared by the notebook displays: tables as text and HTML, a graph as inline SVG.

Every piece of history data goes through :func:`html.escape`; nothing here adds random
ids or the current time, so notebook tests can compare the output.
"""

from __future__ import annotations

import base64
import html
from typing import Callable, Iterable, Mapping, Sequence

from kernel_ext._dot import STATUS_COLOURS
from kernel_ext.graphs import render_svg

MIME_TYPES = ("text/plain", "text/html")
NO_DOT = "Graph not shown: install graphviz (apt-get install graphviz) for the graph."
# JupyterLab and Notebook 7 right-align every cell of HTML output with a rule of specificity
# (0,2,1), which also pushes the lines of an indented attribute tree to the right edge. The
# alignment is an inline style on each cell: it beats any selector, and it survives the
# sanitizer that drops <style> from outputs of an untrusted notebook (stored outputs, before
# the notebook runs again). The stylesheet only adds what tables can do without.
LEFT = "text-align: left"
TABLE_CSS = (
    "<style>table.durable-lab-table.durable-lab-table :is(td, th) {text-align: left; vertical-align: top; "
    "padding: 2px 8px;} .durable-lab-table pre {margin: 0; white-space: pre-wrap;}</style>"
)


def wanted(include: Iterable[str] | None, exclude: Iterable[str] | None) -> set[str]:
    """The MIME types a front end asked for, of those the displays make."""
    chosen = set(MIME_TYPES) if include is None else set(include) & set(MIME_TYPES)
    return chosen - set(exclude or ())


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Aligned columns; the last column is left ragged (it holds free text)."""
    widths = [max([len(header[i])] + [len(row[i]) for row in rows]) for i in range(len(header) - 1)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts + [cells[-1]]).rstrip()

    return "\n".join([line(header)] + [line(row) for row in rows])


def html_table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    pre_column: int | None = None,
    status_column: int | None = None,
    status_colours: Mapping[str, str] | None = None,
) -> str:
    """An HTML table; every cell is escaped (``pre_column`` is wrapped in ``<pre>``; the
    words of ``status_column`` get their status colour, through ``status_colours`` for
    words that are not statuses themselves)."""
    out = [TABLE_CSS, '<table class="durable-lab-table">', "<thead><tr>"]
    out += [cell(html.escape(text), "th") for text in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for index, text in enumerate(row):
            markup = html.escape(text)
            if index == status_column:
                markup = badge(text, (status_colours or {}).get(text, text))
            out.append(cell(f"<pre>{markup}</pre>" if index == pre_column else markup))
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def cell(markup: str, tag: str = "td") -> str:
    """A table cell holding ``markup`` (already escaped), left-aligned in every front end."""
    return f'<{tag} style="{LEFT}">{markup}</{tag}>'


def badge(status: str, colour_key: str | None = None) -> str:
    """A status word on the step's colour."""
    fill, border = STATUS_COLOURS.get(colour_key or status, STATUS_COLOURS["info"])
    return (
        f'<span style="background:{fill}; border:1px solid {border}; border-radius:3px; padding:0 4px">'
        f"{html.escape(status)}</span>"
    )


# A notebook that JupyterLab does not trust (a tutorial just cloned, before it runs) has its
# HTML outputs sanitized: <svg> is dropped with its text left behind, and so are <style> and
# data-* attributes. So the graph comes twice: inline, where hovering shows each step's
# tooltip, hidden by its own style until the stylesheet shows it; and as an image, which the
# stylesheet hides. The rules apply only under data-durable-lab, which sanitizing removes:
# the stylesheet of a trusted output elsewhere on the page leaves sanitized graphs alone.
GRAPH_CSS = (
    "<style>.durable-lab-graph[data-durable-lab] .durable-lab-svg {display: block !important;} "
    ".durable-lab-graph[data-durable-lab] img.durable-lab-graph-image {display: none !important;}</style>"
)


def graph_html(dot: str, render: Callable[[str], str | None] = render_svg) -> str:
    """The graph as inline SVG (and as an image for sanitizing front ends), or a line
    saying why it is not shown."""
    try:
        svg = render(dot)
    except RuntimeError as exc:
        return f"<p><em>{html.escape(str(exc))}</em></p>"
    if svg is None:
        return f"<p><em>{html.escape(NO_DOT)}</em></p>"
    # Drop the XML prolog and Graphviz's version comment: the <svg> element suffices in HTML.
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    image = base64.b64encode(svg.encode()).decode("ascii")
    return (
        f'<div class="durable-lab-graph" data-durable-lab="graph">{GRAPH_CSS}'
        f'<div class="durable-lab-svg" style="display: none; overflow: auto; max-width: 100%">{svg}</div>'
        f'<img class="durable-lab-graph-image" style="max-width: 100%" alt="the graph" '
        f'src="data:image/svg+xml;base64,{image}"></div>'
    )
