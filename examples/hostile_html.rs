//! Times the gateway's preparation of one mail whose HTML part has a
//! hostile shape, at a given size, in this process alone (so that the peak
//! RSS `/usr/bin/time -v` reports is this mail's):
//!
//!     cargo build --release --example hostile_html
//!     /usr/bin/time -v target/release/examples/hostile_html divs 40000
//!
//! Shapes: `divs N` (N nested `<div>`s), `unclosed BYTES` (unclosed `<b><i>`
//! tags up to BYTES), `tables N` (N nested tables), `flat BYTES` (ordinary
//! paragraphs, the bound's worst legitimate case). `scripts/bench-html`
//! runs them all.

use std::time::Instant;

fn html(shape: &str, n: usize) -> String {
    match shape {
        "divs" => format!("{}words{}", "<div>".repeat(n), "</div>".repeat(n)),
        "unclosed" => format!("<p>words{}", "<b><i>".repeat(n / 6)),
        "tables" => format!(
            "{}words{}",
            "<table><tr><td>".repeat(n),
            "</td></tr></table>".repeat(n)
        ),
        "flat" => "<p>Some ordinary words of a newsletter, <b>bold</b> and <a href=\"https://example.org\">a link</a>.</p>\n"
            .repeat(n / 110 + 1),
        other => panic!("unknown shape {other}: divs, unclosed, tables, flat"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let shape = args.next().unwrap_or_else(|| "divs".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(40_000);
    let body = html(&shape, n);
    let mail = format!(
        "From: eve@example.org\r\nTo: support@example.test\r\nSubject: {shape} {n}\r\nMessage-ID: <bomb@example.org>\r\nContent-Type: text/html\r\n\r\n{body}\r\n"
    );
    let started = Instant::now();
    let out = postdesk::gateway::processor::prepare_bytes(mail.as_bytes());
    let took = started.elapsed();
    println!(
        "{shape} {n}: {} bytes of HTML, prepared in {:.1} ms ({})",
        body.len(),
        took.as_secs_f64() * 1000.0,
        match out {
            Ok(len) => format!("{len} bytes out"),
            Err(e) => e,
        }
    );
}
