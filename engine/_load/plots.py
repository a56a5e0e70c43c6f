"""A load test's plots (matplotlib) and its standalone HTML report.

matplotlib because it is the plotting library every notebook user has met, it is well kept,
and it draws to SVG or PNG without a browser: the same figure shows live in a notebook, in
a static export (nbconvert, GitHub), and in the HTML file the CLI writes, with no JavaScript.
The figure is made with ``matplotlib.figure.Figure`` (not pyplot), so nothing global changes
in the user's session and no GUI backend is needed.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import asdict
from string import Template
from typing import Any, Sequence

from matplotlib import rc_context
from matplotlib.figure import Figure

OFFERED, ACHIEVED, STARTED = "#7f7f7f", "#1f77b4", "#9ecae1"
P50, P95, P99 = "#2ca02c", "#ff7f0e", "#d62728"


class LoadFigure:
    """Four panels over the test's seconds: offered vs achieved rate, latency p50/p95/p99 of
    the runs that closed each second, the backlog (tasks waiting for a worker, runs waiting to
    start, runs in flight), and CPU per process with the write-lock wait.

    The figure and its lines are made once and ``update`` only sets their data: a live view
    redraws every second in the process that drives the test, and rebuilding four panels
    each time cost it 0.5-2.6 s of CPU a redraw on a busy 2-core machine (0.15-0.3 s this way).
    """

    def __init__(self, *, p99_limit: float = 1.0, title: str = "", seconds: int | None = None) -> None:
        # seconds: the test's planned length, so that a live figure's axis does not rescale each second.
        self.seconds = seconds
        self.fig = Figure(figsize=(10, 6.4))
        self.fig.subplots_adjust(left=0.06, right=0.98, top=0.91 if title else 0.95, bottom=0.08, hspace=0.28, wspace=0.14)
        self.rates, self.latency, self.backlog, self.cpu = self.fig.subplots(2, 2, sharex=True).flat
        self.lines: dict[str, Any] = {}
        line = self._line
        line("offered", self.rates, color=OFFERED, linestyle="--", drawstyle="steps-mid", label="offered")
        line("started", self.rates, color=STARTED, label="started")
        line("closed", self.rates, color=ACHIEVED, linewidth=2, label="achieved (closed)")
        for key, colour in (("latency_p50", P50), ("latency_p95", P95), ("latency_p99", P99)):
            line(key, self.latency, color=colour, marker=".", label=key.split("_")[1])
        self.latency.axhline(p99_limit, color=P99, linestyle=":", linewidth=1, label=f"p99 limit {p99_limit:g} s")
        line("backlog_workflow_tasks", self.backlog, label="workflow tasks waiting")
        line("backlog_activity_tasks", self.backlog, label="activity tasks waiting")
        line("waiting_to_start", self.backlog, linestyle="--", label="runs waiting to start")
        line("in_flight", self.backlog, color="#bbbbbb", label="runs in flight")
        line("lock_wait", self.cpu, color="black", linestyle=":", label="write-lock wait (s/s)")
        titles = ("Runs per second", "End-to-end latency (s) of runs closing", "Backlog", "CPU (cores) per process, write-lock wait")
        for ax, text in zip(self.axes, titles):
            ax.set_title(text, fontsize=10)
            ax.grid(alpha=0.3)
        for ax in (self.backlog, self.cpu):
            ax.set_xlabel("second of the test")
        if title:
            self.fig.suptitle(title)

    @property
    def axes(self) -> tuple[Any, ...]:
        return (self.rates, self.latency, self.backlog, self.cpu)

    def _line(self, key: str, ax: Any, **style: Any) -> None:
        (self.lines[key],) = ax.plot([], [], **style)

    def update(self, samples: Sequence[dict[str, Any]]) -> "LoadFigure":
        x = [int(s["second"]) for s in samples]
        for key, line in self.lines.items():
            if key == "lock_wait":
                line.set_data(x, [_nan(sum(s["lock_wait"].values()) if s.get("lock_wait") else None) for s in samples])
            elif key.startswith("cpu "):
                name = key[4:]
                line.set_data(x, [_nan((s.get("cpu") or {}).get(name)) for s in samples])
            else:
                line.set_data(x, [_nan(s.get(key)) for s in samples])
        for name in sorted({n for s in samples for n in (s.get("cpu") or {})}):
            if f"cpu {name}" not in self.lines:  # a process seen for the first time
                self._line(f"cpu {name}", self.cpu, label=f"CPU {name}")
                self.lines[f"cpu {name}"].set_data(x, [_nan((s.get("cpu") or {}).get(name)) for s in samples])
        if samples and all(s.get("lock_wait") is None for s in samples) and "lock_wait" in self.lines:
            # A Temporal server has no write lock: no line, no legend entry, and a title without it.
            self.lines.pop("lock_wait").remove()
            self.cpu.set_title("CPU (cores) per process", fontsize=10)
        for ax in self.axes:
            ax.relim()
            ax.autoscale_view()
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=7, loc="upper left")
        if self.seconds and x and max(x) < self.seconds:
            self.rates.set_xlim(-0.5, self.seconds - 0.5)  # shared by the four panels
        return self


def figure(samples: Sequence[dict[str, Any]], *, p99_limit: float = 1.0, title: str = "") -> Figure:
    """The four panels of ``LoadFigure`` for ``samples``."""
    return LoadFigure(p99_limit=p99_limit, title=title).update(samples).fig


def svg(fig: Figure) -> str:
    buffer = io.StringIO()
    # Text as text, not as paths: a third of the size, and the browser's sans-serif reads well.
    with rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # no XML prologue inside HTML


def png(fig: Figure, dpi: int = 80) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


_PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Load test $bench</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table.dlab-load{border-collapse:collapse;font-size:13px}
table.dlab-load th,table.dlab-load td{border:1px solid #ccc;padding:3px 8px;text-align:left}
table.dlab-load td.num{text-align:right}
.finding{font-size:16px;background:#f4f8fb;border-left:4px solid #1f77b4;padding:.6em 1em}
.no{color:#c00;font-weight:bold}
</style></head><body>
<h1>Load test $bench</h1>
$body
</body></html>
""")


def report_body(report: Any) -> str:
    """The report as an HTML fragment: the finding, the plots (inline SVG), the steps and the
    setting (a notebook shows this fragment; the file wraps it in a page)."""
    fig = figure(report.seconds, p99_limit=report.p99_limit)
    scenario = report.scenario
    environment = dict(report.environment or {})
    not_measured = environment.pop("not_measured", None)
    setting = ", ".join(f"{k}: {v}" for k, v in environment.items())
    parts = [
        f'<p class="finding">{html.escape(report.finding)}</p>',
        f"<p>Scenario: {html.escape(', '.join(scenario.get('steps', [])))}; workflow {html.escape(str(scenario.get('workflow')))}"
        + (f" ({html.escape(_target(scenario.get('target')))})" if scenario.get("target") else "")
        + f"; {len(report.runs)} runs.</p>",
        # An image of the SVG rather than inline <svg>: a notebook that JupyterLab does not
        # trust yet (a tutorial just opened) has <svg> stripped from HTML outputs, not <img>.
        f'<img alt="the load test over time: rates, latency, backlog, CPU" style="max-width:100%" '
        f'src="data:image/svg+xml;base64,{base64.b64encode(svg(fig).encode()).decode("ascii")}">',
        steps_table(report.steps),
    ]
    if setting:
        parts.append(f"<p>Setting: {html.escape(setting)}.</p>")
    if not_measured:
        parts.append(f"<p>Not measured on this target: {html.escape('; '.join(not_measured))}.</p>")
    return "\n".join(parts)


def report_html(report: Any) -> str:
    return _PAGE.substitute(bench=html.escape(report.bench_id), body=report_body(report))


COLUMNS = (
    ("description", "step"), ("offered_rate", "offered/s"), ("started_rate", "started/s"), ("achieved_rate", "achieved/s"),
    ("failed", "failed"), ("latency_p50", "p50 ms"), ("latency_p95", "p95 ms"),
    ("latency_p99", "p99 ms"), ("backlog_end", "backlog"), ("backlog_growth", "backlog/s"),
    ("waiting_to_start", "not started"), ("cpu_cores", "CPU cores"), ("lock_wait", "lock wait s/s"), ("keeps_up", "keeps up"),
)


def steps_table(steps: Sequence[Any]) -> str:
    # Inline alignment: JupyterLab right-aligns every td of HTML output with a rule that beats
    # a stylesheet's class selector, and a sanitized output has no stylesheet at all.
    head = "".join(f'<th style="text-align:{"left" if key == "description" else "right"}">{html.escape(label)}</th>' for key, label in COLUMNS)
    rows = []
    for step in steps:
        values = asdict(step)
        cells = []
        for key, _ in COLUMNS:
            value = values[key]
            if key == "keeps_up":
                cells.append('<td style="text-align:right">yes</td>' if value else '<td class="no" style="text-align:right;color:#c00;font-weight:bold">no</td>')
            elif key.startswith("latency_"):
                cells.append(f'<td class="num" style="text-align:right">{"-" if value is None else f"{value * 1000:.0f}"}</td>')
            elif value is None:
                cells.append('<td class="num" style="text-align:right" title="not measured">-</td>')
            elif key == "description":
                cells.append(f'<td style="text-align:left;white-space:nowrap">{html.escape(str(value))}</td>')
            else:
                cells.append(f'<td class="num" style="text-align:right">{html.escape(f"{value:g}" if isinstance(value, float) else str(value))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div style="overflow-x:auto"><table class="dlab-load"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _target(target: dict[str, Any] | None) -> str:
    if not target:
        return ""
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in target.items() if v)


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)
