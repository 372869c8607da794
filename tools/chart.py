#!/usr/bin/env python3
"""tools/chart.py: the chart at the top of doc/performance.md, drawn from
the tables further down that page.

usage: tools/chart.py doc/performance.md > doc/performance.svg

Reads the Markdown tables the benchmark scripts print, as committed in
doc/performance.md, and writes an SVG on stdout with three panels:

  - connections per second of the fork-per-connection servers, ours
    against s6 and ucspi-unix and against the fork+exec and vfork+exec
    limits (tools/bench.sh, "Latest run", handler without libc);
  - connections per second of the preforking servers (tools/bench_prefork.sh);
  - the latency of running /bin/true as root for an unprivileged caller,
    ours against the original, s6-sudo and sudo (tools/bench_exec.sh).

The SVG is plain (no script, no external font, no stylesheet) so that it
renders as an image on GitHub and elsewhere; its text is text. The output
depends only on the input, so that tests/docs.rs can regenerate it and
compare it with the committed file. It does not run any benchmark.

Exit codes: 0 written; 100 usage, or a table missing or not as expected
(the message names it); 111 the file cannot be read.
"""
import math
import re
import sys
from xml.sax.saxutils import escape

ME = "chart.py"

# Okabe-Ito colours (readable with the common colour-vision deficiencies),
# each with a light tint for one client at a time (c=1).
OURS = ("#9ccbe8", "#0072b2")
PEERS = ("#f5d27f", "#e69f00")
LIMITS = ("#8fd6bf", "#009e73")
BASELINE = "#c8c8c8"
INK = "#222222"
GRID = "#dddddd"
WARN = "#a03000"
FONT = "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"

WIDTH = 880
LABEL_W = 300  # the row labels, left of the bars
PLOT_W = 420  # the bars
LEFT = 20
PLOT_X = LEFT + LABEL_W
BAR_H = 13
ROW_GAP = 12


class Fatal(Exception):
    """A table that is missing or not as expected: exit 100."""


def fatal(message):
    raise Fatal(message)


def tables(text):
    """Every table of a Markdown text: (the nearest heading above it, its
    header cells, its rows of cells)."""
    found = []
    heading = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[i + 1]):
            header = cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            found.append((heading, header, rows))
            continue
        i += 1
    return found


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table(all_tables, heading, columns):
    """The first table under a heading that starts with `heading` and has
    all of `columns`, as a list of {column: cell} rows."""
    for h, header, rows in all_tables:
        if h.startswith(heading) and all(c in header for c in columns):
            if not rows:
                fatal(f"the table under '{h}' has no rows")
            return [dict(zip(header, r)) for r in rows]
    fatal(f"no table with the columns {', '.join(columns)} under a heading starting with '{heading}'")


def number(cell, what):
    """A figure, or None for a measurement that failed (FAILED, or empty)."""
    if cell in ("FAILED", ""):
        return None
    try:
        return float(cell.replace(",", ""))
    except ValueError:
        fatal(f"not a number in {what}: {cell}")


def date_in(text, heading):
    """The first 'YYYY-MM-DD HH:MM UTC' of the section under `heading`."""
    start = text.find("\n" + heading)
    if start < 0:
        return None
    level = len(heading) - len(heading.lstrip("#"))
    section = text[start + 1 :]
    end = re.search(r"\n#{1,%d} " % level, section)
    if end:
        section = section[: end.start()]
    m = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", section)
    return m.group(0) if m else None


def nice_axis(top):
    """Ticks from 0 to at least `top`: about five, at 1, 2, 2.5 or 5 times
    a power of ten."""
    raw = max(top, 1e-9) / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(s * power for s in (1, 2, 2.5, 5, 10) if s * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 9))
    return ticks


def fmt_tick(v):
    if v == int(v):
        return f"{int(v)}"
    return f"{v:g}"


def num(v):
    """A coordinate: one decimal, no trailing zero."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


class Svg:
    def __init__(self):
        self.parts = []

    def text(self, x, y, s, size=12, anchor="start", weight=None, fill=INK, italic=False):
        attrs = f'x="{num(x)}" y="{num(y)}" font-size="{size}"'
        if anchor != "start":
            attrs += f' text-anchor="{anchor}"'
        if weight:
            attrs += f' font-weight="{weight}"'
        if italic:
            attrs += ' font-style="italic"'
        if fill != INK:
            attrs += f' fill="{fill}"'
        self.parts.append(f"<text {attrs}>{escape(s)}</text>")

    def rect(self, x, y, w, h, fill, title=None):
        r = f'<rect x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}" fill="{fill}"'
        if title:
            self.parts.append(r + f"><title>{escape(title)}</title></rect>")
        else:
            self.parts.append(r + "/>")

    def line(self, x1, y1, x2, y2, stroke, width=1):
        self.parts.append(
            f'<line x1="{num(x1)}" y1="{num(y1)}" x2="{num(x2)}" y2="{num(y2)}" stroke="{stroke}" stroke-width="{width}"/>'
        )


class Bar:
    """One bar: its value (None for a measurement that failed), the figure
    written at its end as the table has it, its colour, its tooltip, and
    how much of it, from the start, is drawn grey (the baseline) or None."""

    def __init__(self, value, figure, colour, tip, grey=None):
        self.value, self.figure, self.colour, self.tip, self.grey = value, figure, colour, tip, grey


def panel(svg, y, title, note, rows, axis_title):
    """A horizontal bar chart, its grid drawn first so that the bars cover
    it. Each row: (label, a second line or None, [Bar...]). Returns the y
    below it."""
    svg.text(LEFT, y, title, size=15, weight="bold")
    y += 18
    svg.text(LEFT, y, note, size=11, fill="#555555")
    plot_top = y + 8
    values = [b.value for _, _, bars in rows for b in bars if b.value is not None]
    if not values:
        fatal(f"no figure to draw for '{title}'")
    ticks = nice_axis(max(values))
    scale = PLOT_W / ticks[-1]
    heights = [len(bars) * BAR_H + (len(bars) - 1) * 2 + ROW_GAP for _, _, bars in rows]
    plot_bottom = plot_top + sum(heights)
    for t in ticks[1:]:
        svg.line(PLOT_X + t * scale, plot_top, PLOT_X + t * scale, plot_bottom, GRID)
    y = plot_top
    for (label, sub, bars), height in zip(rows, heights):
        centre = y + height / 2
        if sub:
            svg.text(PLOT_X - 10, centre - 2, label, anchor="end")
            svg.text(PLOT_X - 10, centre + 11, sub, size=10, anchor="end", fill=WARN)
        else:
            svg.text(PLOT_X - 10, centre + 4, label, anchor="end")
        by = y + ROW_GAP / 2
        for b in bars:
            if b.value is None:
                svg.text(PLOT_X + 4, by + BAR_H - 3, "FAILED", size=10, fill=WARN)
            else:
                x = PLOT_X
                if b.grey is not None:
                    svg.rect(x, by, b.grey * scale, BAR_H, BASELINE, b.tip)
                    x += b.grey * scale
                svg.rect(x, by, PLOT_X + b.value * scale - x, BAR_H, b.colour, b.tip)
                svg.text(PLOT_X + b.value * scale + 4, by + BAR_H - 3, b.figure, size=10)
            by += BAR_H + 2
        y += height
    svg.line(PLOT_X, plot_top, PLOT_X, plot_bottom, INK)
    svg.line(PLOT_X, plot_bottom, PLOT_X + PLOT_W, plot_bottom, INK)
    for t in ticks:
        x = PLOT_X + t * scale
        svg.line(x, plot_bottom, x, plot_bottom + 4, INK)
        svg.text(x, plot_bottom + 16, fmt_tick(t), size=10, anchor="middle")
    svg.text(PLOT_X + PLOT_W / 2, plot_bottom + 32, axis_title, size=11, anchor="middle")
    return plot_bottom + 58


def legend(svg, y):
    x = LEFT
    for (light, dark), name in (
        (OURS, "ours"),
        (PEERS, "the others: s6, ucspi-unix, the original, sudo"),
        (LIMITS, "limits and references"),
    ):
        svg.rect(x, y - 10, 12, 12, light)
        svg.rect(x + 13, y - 10, 12, 12, dark)
        svg.text(x + 31, y, name, size=12)
        x += 31 + 7 * len(name) + 28
    y += 20
    x = LEFT
    for fill, name in (
        (OURS[0], "lighter bar: c=1, one client at a time"),
        (OURS[1], "darker bar: c=16, 16 clients at once"),
        (BASELINE, "grey: running /bin/true directly"),
    ):
        svg.rect(x, y - 10, 12, 12, fill)
        svg.text(x + 18, y, name, size=12)
        x += 18 + 7 * len(name) + 24
    return y + 26


def colours_of(server):
    """The colours of a server's bars, from its label in the tables."""
    if server.startswith("limit:") or "fork and exec" in server:
        return LIMITS
    if server.startswith("ipcserver") or server.startswith("ours") or "(ours)" in server:
        return OURS
    return PEERS


def conn_bars(server, by_c):
    """A server's bars at c=1 and c=16, from {concurrency: the table's cell}."""
    bars = []
    for c, colour in zip(("1", "16"), colours_of(server)):
        cell = by_c[c]
        value = number(cell, f"{server}, c={c}")
        bars.append(Bar(value, cell, colour, f"{server}, c={c}: {cell} connections per second"))
    return bars


def chart(text):
    all_tables = tables(text)
    svg = Svg()
    y = 34
    svg.text(LEFT, y, "ucspi-ipc in Rust: performance at a glance", size=18, weight="bold")
    y += 26
    y = legend(svg, y)

    # tools/bench.sh: fork-per-connection servers and the limits.
    rows = []
    columns = ["configuration", "conn/s c=1", "conn/s c=16", "errors"]
    for r in table(all_tables, "Connections, handler without libc", columns):
        server = r["configuration"]
        errors = number(r["errors"], f"the errors of {server}")
        sub = f"{r['errors']} failed connections (all rounds)" if errors else None
        rows.append((server, sub, conn_bars(server, {"1": r["conn/s c=1"], "16": r["conn/s c=16"]})))
    y = panel(
        svg,
        y,
        "A fork and an exec per connection: connections per second (higher is better)",
        "tools/bench.sh, every server running the same two-system-call handler; medians of interleaved rounds",
        rows,
        "connections per second",
    )

    # tools/bench_prefork.sh: one row per server and concurrency.
    servers = {}
    for r in table(all_tables, "Preforking servers", ["server", "c", "conn/s"]):
        servers.setdefault(r["server"], {})[r["c"]] = r["conn/s"]
    rows = []
    for server, by_c in servers.items():
        if set(by_c) != {"1", "16"}:
            fatal(f"the preforking servers' table should have the rows c=1 and c=16 for {server}")
        rows.append((server, None, conn_bars(server, by_c)))
    y = panel(
        svg,
        y,
        "Preforking servers: connections per second (higher is better)",
        "tools/bench_prefork.sh, 40 children each, the same 73-byte answer; medians of interleaved rounds",
        rows,
        "connections per second",
    )

    # tools/bench_exec.sh: the baseline, then each way on top of it.
    ways = table(all_tables, "/bin/true as root", ["way", "median ms", "above the baseline, ms"])
    baselines = [r["median ms"] for r in ways if r["way"] == "baseline"]
    if not baselines:
        fatal("no baseline row in the table of /bin/true as root")
    baseline = number(baselines[0], "the baseline")
    rows = []
    for r in ways:
        way, median, added = r["way"], r["median ms"], r["above the baseline, ms"]
        value = number(median, way)
        if way == "baseline":
            bar = Bar(value, f"{median} ms", BASELINE, f"/bin/true run directly: {median} ms")
            rows.append(("/bin/true run directly (baseline)", None, [bar]))
        else:
            number(added, f"what {way} adds")
            tip = f"{way}: {median} ms, {added} ms above the baseline"
            rows.append((way, None, [Bar(value, f"{median} ms ({added})", colours_of(way)[1], tip, baseline)]))
    y = panel(
        svg,
        y,
        "Running /bin/true as root for an unprivileged user: latency (lower is better)",
        "tools/bench_exec.sh, the caller uid 65534; each bar is the baseline (grey) and what the way adds to it",
        rows,
        "milliseconds per run",
    )

    runs = []
    for script, heading in (("tools/bench.sh", "## Latest run"), ("tools/bench_exec.sh", "## ipcexec")):
        when = date_in(text, heading)
        runs.append(f"{script} ({when})" if when else script)
    for i, line in enumerate(
        (
            f"Figures: the tables of doc/performance.md, from {runs[0]}, tools/bench_prefork.sh",
            f"and {runs[1]}, on a 2-core virtual machine.",
            "Drawn by tools/chart.py doc/performance.md > doc/performance.svg.",
        )
    ):
        svg.text(LEFT, y + 15 * i, line, size=11, fill="#555555")
    height = y + 44
    body = "\n".join(svg.parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{num(height)}" '
        f'viewBox="0 0 {WIDTH} {num(height)}" font-family="{FONT}" fill="{INK}">\n'
        "<title>ucspi-ipc in Rust: connections per second against s6, ucspi-unix and the limits; "
        "preforking servers; privileged-exec latency against the original, s6-sudo and sudo</title>\n"
        f'<rect x="0" y="0" width="{WIDTH}" height="{num(height)}" fill="#ffffff"/>\n'
        f"{body}\n</svg>\n"
    )


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        print(f"{ME}: usage: {ME} doc/performance.md > doc/performance.svg", file=sys.stderr)
        return 100
    try:
        with open(argv[1], encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        print(f"{ME}: fatal: unable to read {argv[1]}: {e.strerror.lower()}", file=sys.stderr)
        return 111
    try:
        out = chart(text)
    except Fatal as e:
        print(f"{ME}: fatal: {argv[1]}: {e}", file=sys.stderr)
        return 100
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
