//! The documents' figures: the chart at the top of doc/performance.md is
//! drawn by tools/chart.py from the tables of that page and committed as
//! doc/performance.svg; these tests redraw it and compare, so that the
//! chart cannot drift from the figures, and check that it stays an image
//! GitHub can show (plain SVG, text labels, nothing external).
use crate::common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn performance_page() -> String {
    std::fs::read_to_string(top().join("doc/performance.md")).unwrap()
}

fn committed_chart() -> String {
    std::fs::read_to_string(top().join("doc/performance.svg")).unwrap()
}

/// tools/chart.py run on `page`.
fn chart(page: &Path) -> Output {
    run(Command::new("python3").arg(top().join("tools/chart.py")).arg(page), 60)
}

/// `page` with the cell of column `column`, row `row`, of the first table
/// under the heading `heading` replaced by `figure`.
fn with_figure(page: &str, heading: &str, column: &str, row: &str, figure: &str) -> String {
    let mut lines: Vec<String> = page.lines().map(String::from).collect();
    let from = lines.iter().position(|l| l.starts_with('#') && l.contains(heading)).expect("the heading");
    let header = from + lines[from..].iter().position(|l| l.starts_with('|')).expect("the table");
    let index = lines[header].split('|').position(|c| c.trim() == column).expect("the column");
    let at = header + lines[header..].iter().position(|l| l.starts_with(&format!("| {row} |"))).expect("the row");
    let mut cells: Vec<String> = lines[at].split('|').map(String::from).collect();
    cells[index] = format!(" {figure} ");
    lines[at] = cells.join("|");
    lines.join("\n") + "\n"
}

#[test]
fn performance_chart_is_drawn_from_the_committed_figures() {
    if !have("python3") {
        return;
    }
    let o = chart(&top().join("doc/performance.md"));
    assert!(o.status.success(), "tools/chart.py: {}", stderr(&o));
    assert!(
        stdout(&o) == committed_chart(),
        "doc/performance.svg does not show the tables of doc/performance.md: redraw it with\n    \
         tools/chart.py doc/performance.md > doc/performance.svg"
    );
}

#[test]
fn performance_chart_follows_each_table() {
    if !have("python3") {
        return;
    }
    let d = TempDir::new();
    let committed = committed_chart();
    // One figure of each table the chart draws, changed in a copy of the
    // page: the redrawn chart shows the new figure, as written.
    for (heading, column, row, figure, shown) in [
        ("Connections, handler without libc", "conn/s c=16", "ipcserver (no access)", "4321", ">4321</text>"),
        ("Preforking servers", "conn/s", "ipcprint (original)", "8765", ">8765</text>"),
        ("/bin/true as root", "median ms", "sudo -n", "9.876", ">9.876 ms ("),
    ] {
        assert!(!committed.contains(shown), "pick another figure than {figure}: the chart already shows it");
        let page = d.join("performance.md");
        std::fs::write(&page, with_figure(&performance_page(), heading, column, row, figure)).unwrap();
        let o = chart(&page);
        assert!(o.status.success(), "tools/chart.py: {}", stderr(&o));
        assert!(stdout(&o).contains(shown), "{row} = {figure} under {heading} is not drawn:\n{}", stdout(&o));
    }
}

#[test]
fn performance_chart_refuses_a_page_without_its_tables() {
    if !have("python3") {
        return;
    }
    let d = TempDir::new();
    let page = d.join("performance.md");
    std::fs::write(&page, performance_page().replace("#### /bin/true as root", "#### something else")).unwrap();
    let o = chart(&page);
    assert_eq!(o.status.code(), Some(100), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "a chart was written: {}", stdout(&o));
    let message = stderr(&o);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.starts_with("chart.py: fatal: ") && message.contains("'/bin/true as root'"),
        "the message does not name the missing table: {message}"
    );
}

#[test]
fn performance_chart_is_plain_svg_with_labelled_axes() {
    let svg = committed_chart();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{}", &svg[..80.min(svg.len())]);
    assert!(svg.ends_with("</svg>\n"));
    // Nothing that a sanitised image would drop or that needs the network.
    for banned in ["<script", "javascript:", "href", "<style", "@import", "@font-face", "<foreignObject", "<image"] {
        assert!(!svg.contains(banned), "doc/performance.svg contains {banned}");
    }
    let handlers: Vec<&str> =
        svg.split(|c: char| c.is_whitespace() || c == '<').filter(|w| w.starts_with("on") && w.contains('=')).collect();
    assert!(handlers.is_empty(), "event handlers in doc/performance.svg: {handlers:?}");
    // An opaque background, so that dark themes keep the text readable.
    let background = svg.lines().find(|l| l.starts_with("<rect x=\"0\" y=\"0\" ")).unwrap_or("");
    assert!(background.contains("fill=\"#ffffff\""), "no white background: {background:?}");
    // Axes with their units, and the legend.
    for label in ["connections per second", "milliseconds per run", "c=1", "c=16", "baseline", "ours"] {
        assert!(svg.contains(label), "doc/performance.svg has no label {label:?}");
    }
}
