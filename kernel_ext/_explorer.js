// The run explorer's view (anywidget ES module, no build step). Python computes everything
// (kernel_ext/_explorer_model.py); this draws it and sends clicks back as trait changes.
// Every piece of run data goes in as text (textContent), never as markup; the one markup
// inserted is the graph's SVG, which Graphviz wrote from escaped labels.

const PING_EVERY = 2000; // ms between pings to the kernel
const GONE_AFTER = 6000; // ms without an answer before the view says the kernel is gone
const SVG_NS = "http://www.w3.org/2000/svg";
const COLOURS = {
  ok: ["#d9f2dc", "#2e7d32"], retried: ["#ffe0b2", "#e65100"], failed: ["#f9d6d5", "#c62828"],
  cancelled: ["#e4e4e4", "#757575"], running: ["#d6e4fb", "#1565c0"], info: ["#f7f7f7", "#616161"],
};
const COMPENSATION = ["#ece0f7", "#6a1b9a"];

function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "on") for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
    else if (key === "style") Object.assign(node.style, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function cell(tag, text) {
  // JupyterLab right-aligns output cells with a (0,2,1) rule: an inline style wins.
  return h(tag, { text: String(text ?? ""), style: { textAlign: "left" } });
}

function table(header, rows, onRow) {
  const body = h("tbody");
  for (const row of rows) {
    const tr = h("tr", {}, ...row.cells.map((text) => cell("td", text)));
    if (onRow) { tr.classList.add("dlab-clickable"); tr.addEventListener("click", () => onRow(row)); }
    if (row.className) tr.classList.add(row.className);
    body.append(tr);
  }
  return h("table", { class: "dlab-table" }, h("thead", {}, h("tr", {}, ...header.map((t) => cell("th", t)))), body);
}

const STATUS_OF = { COMPLETED: "ok", FAILED: "failed", TIMED_OUT: "failed", TERMINATED: "failed", CANCELED: "cancelled",
  CONTINUED_AS_NEW: "ok", RUNNING: "running" };

function badge(status, text) {
  const [fill, border] = COLOURS[status] || COLOURS.info;
  return h("span", { class: "dlab-badge", text: text || status, style: { background: fill, borderColor: border } });
}

function niceStep(span, target) {
  const raw = span / Math.max(target, 1);
  const power = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function seconds(value) {
  if (value >= 86400) return (value / 86400).toFixed(1).replace(/\.0$/, "") + "d";
  if (value >= 3600) return (value / 3600).toFixed(1).replace(/\.0$/, "") + "h";
  if (value >= 60) return (value / 60).toFixed(1).replace(/\.0$/, "") + "m";
  if (value >= 1 || value === 0) return (+value.toFixed(2)) + "s";
  return (+(value * 1000).toFixed(1)) + "ms";
}

function render({ model, el }) {
  const root = h("div", { class: "dlab-explorer" });
  el.append(root);
  let tab = "graph";
  let lastPong = Date.now();
  let pings = 0;

  const select = (key) => { model.set("selected", key); model.save_changes(); };
  const goto = (key) => { if (key) { model.set("goto", key); model.save_changes(); } };

  const title = h("div", { class: "dlab-title" });
  const live = h("div", { class: "dlab-live" });
  const gone = h("div", { class: "dlab-gone", style: { display: "none" } });
  const message = h("div", { class: "dlab-message" });
  const tabs = h("div", { class: "dlab-tabs" });
  const panel = h("div", { class: "dlab-panel" });
  const details = h("div", { class: "dlab-details" });
  root.append(title, live, gone, message, tabs, h("div", { class: "dlab-body" }, panel, details));

  const TABS = [["graph", "Graph"], ["timeline", "Timeline"], ["events", "Events"], ["runs", "Runs"]];

  function drawHeader() {
    const head = model.get("header") || {};
    title.replaceChildren(
      h("strong", { text: `${head.type || "?"} · ${head.workflow_id || "?"}` }),
      document.createTextNode(` · run ${head.run_id || "?"} · `), badge(STATUS_OF[head.status] || "info", (head.status || "?").toLowerCase().replace(/_/g, " ")),
      document.createTextNode(` · ${head.events || 0} events` + (head.outcome ? ` · ${head.outcome}` : "")),
    );
    live.textContent = head.closed
      ? "The run has closed: this view is final. Click a node, a bar or an event to see its details."
      : "● live: following the run while it runs. Click a node, a bar or an event to see its details.";
    message.textContent = model.get("message") || "";
    message.style.display = message.textContent ? "" : "none";
  }

  function drawTabs() {
    tabs.replaceChildren(...TABS.map(([name, label]) => {
      const button = h("button", { class: "dlab-tab" + (name === tab ? " dlab-active" : ""), text: label, "data-tab": name });
      button.addEventListener("click", () => { tab = name; drawTabs(); drawPanel(); });
      return button;
    }));
  }

  function drawGraph() {
    const box = h("div", { class: "dlab-graph" });
    box.innerHTML = model.get("svg") || "";
    const chosen = (model.get("selected") || "").replace(/^node:/, "");
    for (const node of box.querySelectorAll("g.node")) {
      const name = node.querySelector("title")?.textContent || "";
      node.classList.add("dlab-node");
      node.setAttribute("data-node", name);
      if (name === chosen) node.classList.add("dlab-selected");
    }
    box.addEventListener("click", (event) => {
      const node = event.target.closest("g.node");
      if (!node) return;
      event.preventDefault();
      select("node:" + node.getAttribute("data-node"));
    });
    panel.replaceChildren(box);
  }

  function drawTimeline() {
    const data = model.get("timeline") || { bars: [], lanes: [] };
    const lanes = data.lanes || [];
    const width = Math.max(panel.clientWidth || 800, 500) - 10;
    const labelWidth = Math.min(220, Math.round(width * 0.3));
    const laneHeight = 20, top = 24;
    const plot = width - labelWidth - 16;
    const end = Math.max(data.end || 0, 1e-3);
    const x = (t) => labelWidth + (t / end) * plot;
    const chart = svg("svg", { width, height: top + lanes.length * laneHeight + 8, class: "dlab-timeline" });
    const step = niceStep(end, 8);
    for (let t = 0; t <= end + 1e-9; t += step) {
      chart.append(svg("line", { x1: x(t), x2: x(t), y1: top - 4, y2: top + lanes.length * laneHeight, stroke: "#e6e6e6" }));
      const label = svg("text", { x: x(t), y: 12, "font-size": 10, "text-anchor": "middle", fill: "#555" });
      label.textContent = seconds(t);
      chart.append(label);
    }
    lanes.forEach((lane, i) => {
      const label = svg("text", { x: 4, y: top + i * laneHeight + 14, "font-size": 11, fill: "#333" });
      label.textContent = lane.length > 34 ? lane.slice(0, 33) + "…" : lane;
      chart.append(label);
    });
    const laneOf = new Map(lanes.map((lane, i) => [lane, i]));
    for (const bar of data.bars || []) {
      const i = laneOf.get(bar.lane);
      const instant = bar.end <= bar.start;
      const [fill, border] = bar.kind === "compensation" && bar.status === "ok" ? COMPENSATION : (COLOURS[bar.status] || COLOURS.info);
      const left = x(bar.start);
      const rect = svg("rect", {
        x: instant ? left - 3 : left, y: top + i * laneHeight + 3, width: instant ? 6 : Math.max(x(bar.end) - left, 2),
        height: laneHeight - 6, rx: 2, fill: bar.kind === "backoff" ? "#ffffff" : fill, stroke: bar.kind === "backoff" ? "#9e9e9e" : border,
        "stroke-dasharray": bar.kind === "backoff" || bar.status === "running" ? "3,2" : "none",
        class: "dlab-bar", "data-kind": bar.kind, "data-start": bar.start, "data-end": bar.end,
      });
      const tip = svg("title");
      tip.textContent = `${bar.tip || bar.label} (${seconds(bar.start)} → ${seconds(bar.end)})`;
      rect.append(tip);
      rect.addEventListener("click", () => select(bar.key));
      chart.append(rect);
    }
    const note = data.note ? h("p", { class: "dlab-note", text: data.note }) : null;
    const legend = h("p", { class: "dlab-note", text: "Bars: workflow tasks, each activity attempt (dashed grey: the backoff before the next attempt), timers, child runs; purple: saga compensations; diamonds: signals and updates. Time from the run's start." });
    panel.replaceChildren(h("div", { class: "dlab-scroll" }, chart), legend, note || "");
  }

  function drawEvents() {
    const data = model.get("table") || { rows: [] };
    const kinds = model.get("kinds") || [];
    const chosen = model.get("kind_filter") || "";
    const filter = h("select", { class: "dlab-kind" }, h("option", { value: "", text: `all types (${data.all || 0})` }),
      ...kinds.map((k) => { const o = h("option", { value: k.kind, text: `${k.kind} (${k.count})` }); if (k.kind === chosen) o.selected = true; return o; }));
    filter.addEventListener("change", () => { model.set("kind_filter", filter.value); model.save_changes(); });
    const search = h("input", { class: "dlab-search", type: "search", placeholder: "search the events" });
    search.value = model.get("search") || "";
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { model.set("search", search.value); model.save_changes(); }, 250);
    });
    const page = data.page || 0, pages = data.pages || 1;
    const move = (to) => { model.set("page", to); model.save_changes(); };
    const prev = h("button", { text: "‹ previous", on: { click: () => move(page - 1) } });
    const next = h("button", { text: "next ›", on: { click: () => move(page + 1) } });
    prev.disabled = page <= 0; next.disabled = page >= pages - 1;
    const count = h("span", { class: "dlab-note", text: ` page ${page + 1} of ${pages} · ${data.total || 0} of ${data.all || 0} events ` });
    const rows = (data.rows || []).map((r) => ({ cells: [r.id, r.time, r.type, r.detail], id: r.id,
      className: model.get("selected") === "event:" + r.id ? "dlab-selected" : "" }));
    const list = table(["ID", "Time", "Type", "Details"], rows, (row) => select("event:" + row.id));
    list.classList.add("dlab-events");
    const focused = document.activeElement === el.querySelector(".dlab-search");
    panel.replaceChildren(h("div", { class: "dlab-controls" }, filter, search, prev, count, next), h("div", { class: "dlab-scroll" }, list));
    if (focused) { search.focus(); search.setSelectionRange(search.value.length, search.value.length); }
  }

  function runButton(text, key, current) {
    const button = h("button", { class: "dlab-run" + (current ? " dlab-active" : ""), text, "data-key": key });
    button.disabled = !key || current;
    button.addEventListener("click", () => goto(key));
    return button;
  }

  function drawRuns() {
    const runs = model.get("runs") || { chain: [], children: [] };
    const parts = [];
    if (runs.parent && runs.parent.workflow_id) {
      parts.push(h("h4", { text: "Parent" }), runButton(`parent ${runs.parent.workflow_id}`, runs.parent.key, false));
    }
    parts.push(h("h4", { text: `Continue-as-new chain (${runs.chain.length} run${runs.chain.length === 1 ? "" : "s"})` }));
    parts.push(h("div", { class: "dlab-chain" }, ...runs.chain.map((r) =>
      runButton(`run ${r.number} · ${r.run_id.slice(-8)} · ${r.status} · ${r.events} events${r.current ? " (this run)" : ""}`, r.key, r.current))));
    const nested = runs.children.some((c) => c.depth) ? ", their own children indented below each" : "";
    parts.push(h("h4", { text: `Child runs (${runs.children.filter((c) => !c.depth).length}${nested})` }));
    if (!runs.children.length) parts.push(h("p", { class: "dlab-note", text: "This run started no child workflow." }));
    parts.push(h("div", { class: "dlab-children" }, ...runs.children.map((c) => {
      const button = runButton(`${c.depth ? "└ " : ""}${c.type} · ${c.workflow_id} · ${c.status} (event ${c.event})`, c.key, false);
      button.style.marginLeft = `${(c.depth || 0) * 1.5}em`;
      return button;
    })));
    panel.replaceChildren(...parts);
  }

  function drawPanel() {
    ({ graph: drawGraph, timeline: drawTimeline, events: drawEvents, runs: drawRuns })[tab]();
  }

  function drawDetails() {
    const d = model.get("details") || {};
    if (!d.key) {
      details.replaceChildren(h("p", { class: "dlab-note", text: "Click a node of the graph, a bar of the timeline or a row of the events to see everything behind it here." }));
      return;
    }
    if (d.missing) { details.replaceChildren(h("p", { class: "dlab-note", text: d.missing })); return; }
    const parts = [h("div", { class: "dlab-details-title" }, badge(d.status), h("strong", { text: " " + d.title }))];
    if (d.detail) parts.push(h("p", { text: d.detail }));
    for (const link of d.links || []) parts.push(runButton(`open the ${link.relation} run ${link.workflow_id || ""} ${link.run_id.slice(-8)}`, link.key, false));
    if (d.attempts && d.attempts.length) {
      parts.push(h("h4", { text: `Attempts (${d.attempts.length + (d.more_attempts || 0)})` }));
      // A collapsed loop's node stands for many activities: name each attempt's activity too.
      const many = new Set(d.attempts.map((a) => a.scheduled_event_id)).size > 1;
      parts.push(table([...(many ? ["Activity"] : []), "#", "Started", "Took", "Outcome"],
        d.attempts.map((a) => ({ cells: [...(many ? [`event ${a.scheduled_event_id}`] : []), a.attempt, "+" + a.started, a.took,
          a.failure ? `${a.outcome}: ${a.failure}` : a.outcome] }))));
      if (d.more_attempts) parts.push(h("p", { class: "dlab-note", text: `and ${d.more_attempts} more attempts, not listed here.` }));
      for (const a of d.attempts) {
        if (a.stack_trace) parts.push(h("details", {}, h("summary", { text: `stack trace of attempt ${a.attempt}` }), h("pre", { text: a.stack_trace })));
      }
    }
    if (d.notes) parts.push(h("details", {}, h("summary", { text: "summary" }), h("pre", { text: d.notes })));
    parts.push(h("h4", { text: `Events (${(d.events || []).length + (d.more_events || 0)})` }));
    (d.events || []).forEach((e, i) => {
      const block = h("details", { class: "dlab-event" }, h("summary", { text: `${e.id} · ${e.type} · +${e.offset}` }), h("pre", { text: e.attributes }));
      if (i < 3) block.open = true;
      parts.push(block);
    });
    if (d.more_events) parts.push(h("p", { class: "dlab-note", text: `and ${d.more_events} more: filter the Events tab to see them.` }));
    details.replaceChildren(...parts);
  }

  // The kernel answers every ping; silence means it is gone (or stuck in a long cell).
  function checkKernel() {
    const silent = Date.now() - lastPong;
    const isGone = silent > GONE_AFTER;
    gone.style.display = isGone ? "" : "none";
    if (isGone) {
      gone.textContent = `The kernel behind this explorer is not answering (for ${Math.round(silent / 1000)} s): it was restarted or shut down, or it is busy running a long cell. Clicks get no answer and the view no longer follows the run. Run the cell again to explore the run as it is now.`;
      live.style.display = "none";
    } else {
      live.style.display = "";
    }
  }
  const onMessage = (content) => { if (content && "pong" in content) { lastPong = Date.now(); checkKernel(); } };
  model.on("msg:custom", onMessage);
  const pinger = setInterval(() => { model.send({ ping: ++pings }); checkKernel(); }, PING_EVERY);
  model.send({ ping: ++pings });

  const redrawPanel = () => drawPanel();
  const onDetails = () => { drawDetails(); if (tab !== "timeline") drawPanel(); };
  const handlers = [["change:header", drawHeader], ["change:message", drawHeader], ["change:details", onDetails],
    ...["svg", "timeline", "table", "kinds", "runs"].map((name) => ["change:" + name, redrawPanel])];
  for (const [name, fn] of handlers) model.on(name, fn);

  drawHeader(); drawTabs(); drawPanel(); drawDetails();
  return () => {
    clearInterval(pinger);
    model.off("msg:custom", onMessage);
    for (const [name, fn] of handlers) model.off(name, fn);
  };
}

export default { render };
