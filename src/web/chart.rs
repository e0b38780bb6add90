//! Charts as server-rendered SVG, readable without JavaScript: grouped bars
//! over labelled columns, a value axis with round ticks, a legend, and each
//! bar's figure as its tooltip (`<title>`). Pure: text in, markup out, every
//! label escaped. Colours are presentation attributes, which the pages'
//! content security policy allows (inline `style` it does not).

use std::fmt::Write;

/// How a chart's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Whole things (tickets, replies).
    Count,
    /// Durations in milliseconds, shown in minutes, hours or days.
    Duration,
    /// 0 to 100.
    Percent,
}

/// One series of bars: a value (or none) per column.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// A colour the chart paints it with (`#2f6fdb`).
    pub colour: &'static str,
    pub values: Vec<Option<f64>>,
}

/// The colours series take in turn: distinguishable, and readable on white.
pub const COLOURS: [&str; 4] = ["#2f6fdb", "#1e8e5a", "#c77800", "#8a3fb8"];

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 64.0;
/// Column labels shown at most; with more columns every n-th is.
const MAX_LABELS: usize = 16;

/// Escapes text for SVG/XML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The scale a duration chart reads in, by its largest value.
fn duration_scale(max_ms: f64) -> (f64, &'static str) {
    if max_ms < 2.0 * 3_600_000.0 {
        (60_000.0, "minutes")
    } else if max_ms < 72.0 * 3_600_000.0 {
        (3_600_000.0, "hours")
    } else {
        (86_400_000.0, "days")
    }
}

/// A round step so that about five ticks cover `max`.
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(f64::MIN_POSITIVE)
}

fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A bar chart titled `title`: for each column a group of bars, one per
/// series. Columns without any value are left empty; no column, or no value
/// at all, draws the axes and says "No data".
///
/// Long because it lays out one SVG (axes, ticks, bars, legend) in drawing order.
pub fn bars(title: &str, unit: Unit, columns: &[String], series: &[Series]) -> String {
    let max_raw = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let (scale, unit_name) = match unit {
        Unit::Count => (1.0, ""),
        Unit::Duration => duration_scale(max_raw),
        Unit::Percent => (1.0, "%"),
    };
    let max = match unit {
        Unit::Percent => 100.0,
        _ => max_raw / scale,
    };
    let step = tick_step(max);
    let top_value = (max / step).ceil().max(1.0) * step;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = |v: f64| TOP + plot_h - (v / top_value).clamp(0.0, 1.0) * plot_h;
    let mut svg = String::new();
    let described = if unit_name.is_empty() {
        esc(title)
    } else {
        format!("{} ({unit_name})", esc(title))
    };
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         role=\"img\" aria-label=\"{described}\" font-family=\"sans-serif\" font-size=\"11\">\
         <title>{described}</title>\
         <text x=\"{LEFT}\" y=\"16\" font-size=\"13\" font-weight=\"bold\" fill=\"#222\">{described}</text>"
    );
    // Legend, right-aligned on the title's line.
    let mut lx = WIDTH - RIGHT;
    for s in series.iter().rev() {
        let w = 18.0 + 6.5 * s.name.chars().count() as f64;
        lx -= w;
        let _ = write!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"7\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"16\" fill=\"#333\">{}</text>",
            s.colour,
            lx + 14.0,
            esc(&s.name)
        );
    }
    // Value axis and grid.
    let mut tick = 0.0;
    while tick <= top_value + step / 2.0 {
        let ty = y(tick);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            ty + 4.0,
            number(tick)
        );
        tick += step;
    }
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\"/>",
        TOP + plot_h,
        WIDTH - RIGHT,
        TOP + plot_h
    );
    let any = max_raw > 0.0 || series.iter().any(|s| s.values.iter().any(Option::is_some));
    if columns.is_empty() || !any {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#777\">No data</text></svg>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
        return svg;
    }
    let slot = plot_w / columns.len() as f64;
    let bar_w = (slot * 0.8 / series.len().max(1) as f64).max(0.5);
    let every = columns.len().div_ceil(MAX_LABELS).max(1);
    for (c, label) in columns.iter().enumerate() {
        let x0 = LEFT + slot * c as f64 + slot * 0.1;
        for (i, s) in series.iter().enumerate() {
            let Some(v) = s.values.get(c).copied().flatten().filter(|v| v.is_finite()) else {
                continue;
            };
            let shown = v / scale;
            let (bx, by) = (x0 + bar_w * i as f64, y(shown));
            let _ = write!(
                svg,
                "<rect x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{}\">\
                 <title>{}: {} {}{}</title></rect>",
                (TOP + plot_h - by).max(0.0),
                s.colour,
                esc(label),
                esc(&s.name),
                number(shown),
                if unit_name.is_empty() {
                    String::new()
                } else if unit == Unit::Percent {
                    "%".into()
                } else {
                    format!(" {unit_name}")
                }
            );
        }
        if c % every == 0 {
            let short: String = label.chars().take(14).collect();
            let (lx, ly) = (x0 + slot * 0.4, TOP + plot_h + 14.0);
            let _ = write!(
                svg,
                "<text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"end\" fill=\"#444\" \
                 transform=\"rotate(-35 {lx:.1} {ly:.1})\">{}</text>",
                esc(&short)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: Vec<Option<f64>>) -> Vec<Series> {
        vec![Series {
            name: "Opened".into(),
            colour: COLOURS[0],
            values,
        }]
    }

    #[test]
    fn a_chart_has_a_bar_per_value_with_its_figure() {
        let cols = vec!["Mon".to_string(), "Tue".to_string(), "Wed".to_string()];
        let svg = bars(
            "Tickets",
            Unit::Count,
            &cols,
            &series(vec![Some(3.0), None, Some(7.0)]),
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect x=").count(), 1 + 2, "legend + two bars");
        assert!(svg.contains("<title>Mon: Opened 3</title>"));
        assert!(svg.contains("<title>Wed: Opened 7</title>"));
        assert!(svg.contains(">Tue</text>"));
    }

    #[test]
    fn labels_are_escaped() {
        let cols = vec!["<script>alert(1)</script>".to_string()];
        let svg = bars("A & B", Unit::Count, &cols, &series(vec![Some(1.0)]));
        assert!(!svg.contains("<script"));
        assert!(svg.contains("A &amp; B"));
    }

    #[test]
    fn durations_read_in_a_fitting_unit() {
        let cols = vec!["x".to_string()];
        let svg = bars(
            "Resolution",
            Unit::Duration,
            &cols,
            &series(vec![Some(5.0 * 3_600_000.0)]),
        );
        assert!(svg.contains("Resolution (hours)"));
        assert!(svg.contains("x: Opened 5 hours"));
        let svg = bars(
            "First reply",
            Unit::Duration,
            &cols,
            &series(vec![Some(90_000.0)]),
        );
        assert!(svg.contains("(minutes)") && svg.contains("1.5 minutes"));
    }

    #[test]
    fn nothing_to_draw_says_so() {
        assert!(bars("T", Unit::Count, &[], &[]).contains("No data"));
        let cols = vec!["x".to_string()];
        assert!(bars("T", Unit::Percent, &cols, &series(vec![None])).contains("No data"));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(100.0), 20.0);
        assert_eq!(tick_step(7.0), 2.0);
        assert_eq!(tick_step(0.0), 1.0);
        assert_eq!(tick_step(f64::NAN), 1.0);
    }

    #[test]
    fn many_columns_label_only_some() {
        let cols: Vec<String> = (0..90).map(|d| format!("d{d}")).collect();
        let values = (0..90).map(|d| Some(d as f64)).collect();
        let svg = bars("T", Unit::Count, &cols, &series(values));
        assert!(svg.matches("rotate(-35").count() <= MAX_LABELS);
    }
}
