//! A small Prometheus registry: counters and histograms with labels,
//! rendered as Prometheus text at `/metrics`. Kept in-house because the
//! daemon needs a dozen series, not an exporter with its own HTTP stack.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds of the latency histograms, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Registry {
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
    counters: BTreeMap<(&'static str, String), f64>,
    gauges: BTreeMap<(&'static str, String), f64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

/// The process's metrics. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Registry>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// `{labels}`, or nothing for a series without labels.
fn braces(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

impl Metrics {
    /// Declares a series' help text and type (`counter` or `histogram`).
    pub fn describe(&self, name: &'static str, kind: &'static str, help: &'static str) {
        if let Ok(mut r) = self.inner.lock() {
            r.help.insert(name, (kind, help));
        }
    }

    /// Adds `by` to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)], by: f64) {
        if let Ok(mut r) = self.inner.lock() {
            *r.counters.entry((name, label_text(labels))).or_default() += by;
        }
    }

    /// Sets a gauge (a value that goes up and down, like lease ownership).
    pub fn set(&self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        if let Ok(mut r) = self.inner.lock() {
            r.gauges.insert((name, label_text(labels)), value);
        }
    }

    /// Records one observation in a histogram.
    pub fn observe(&self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        if let Ok(mut r) = self.inner.lock() {
            let h = r.histograms.entry((name, label_text(labels))).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if value <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum += value;
            h.count += 1;
        }
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let Ok(r) = self.inner.lock() else {
            return String::new();
        };
        let mut out = String::new();
        let header = |out: &mut String, name: &str, fallback: &str| {
            let (kind, help) = r.help.get(name).copied().unwrap_or((fallback, ""));
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let mut last = "";
        for (series, fallback) in [(&r.counters, "counter"), (&r.gauges, "gauge")] {
            for ((name, labels), v) in series {
                if *name != last {
                    header(&mut out, name, fallback);
                    last = name;
                }
                let _ = writeln!(out, "{name}{} {v}", braces(labels));
            }
        }
        last = "";
        for ((name, labels), h) in &r.histograms {
            if *name != last {
                header(&mut out, name, "histogram");
                last = name;
            }
            let sep = if labels.is_empty() { "" } else { "," };
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
            let braces = braces(labels);
            let _ = writeln!(
                out,
                "{name}_sum{braces} {}\n{name}_count{braces} {}",
                h.sum, h.count
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.describe("postdesk_http_requests_total", "counter", "HTTP requests.");
        m.inc(
            "postdesk_http_requests_total",
            &[("route", "/healthz"), ("status", "200")],
            1.0,
        );
        m.inc(
            "postdesk_http_requests_total",
            &[("route", "/healthz"), ("status", "200")],
            1.0,
        );
        m.observe(
            "postdesk_http_request_duration_seconds",
            &[("route", "/x\"y")],
            0.02,
        );
        let text = m.render();
        assert!(
            text.contains("# TYPE postdesk_http_requests_total counter"),
            "{text}"
        );
        assert!(
            text.contains("postdesk_http_requests_total{route=\"/healthz\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains("le=\"0.01\"} 0"), "{text}");
        assert!(text.contains("le=\"0.025\"} 1"), "{text}");
        assert!(text.contains("route=\"/x\\\"y\""), "{text}");
        assert!(
            text.contains("postdesk_http_request_duration_seconds_count{route=\"/x\\\"y\"} 1"),
            "{text}"
        );
    }
}
