//! The rolling upgrade's timeline as an SVG picture: answered requests per second (green),
//! failed ones (red bars), each node's replacement shaded and named, one panel per run.
//! Written by hand: a few dozen elements, and no font files needed on the machine (a plotting
//! crate would need fontconfig and a font package to lay out its text).

use std::fmt::Write;

use crate::load::Sample;

/// One node's replacement on the timeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Span {
    /// What is replaced (`m1 → m4`).
    pub label: String,
    /// Seconds from the start of the load.
    pub start: f64,
    /// Seconds from the start of the load.
    pub end: f64,
}

/// One run: its title, its requests and its replacements.
pub struct Panel<'a> {
    /// `with the processor`, `without the processor`.
    pub title: &'a str,
    /// Every request.
    pub samples: &'a [Sample],
    /// Every replacement.
    pub spans: &'a [Span],
    /// Moments to mark (`quorum lost`), seconds from the start.
    pub events: &'a [(f64, String)],
}

const WIDTH: f64 = 1000.0;
const PANEL: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 40.0;

/// The picture of `panels`, one above the other, on a shared time axis.
pub fn svg(panels: &[Panel<'_>]) -> String {
    let seconds = panels
        .iter()
        .flat_map(|p| {
            p.samples
                .iter()
                .map(|s| s.at)
                .chain(p.spans.iter().map(|s| s.end))
        })
        .fold(1.0_f64, f64::max)
        .ceil();
    let height = panels.len() as f64 * (PANEL + TOP + BOTTOM);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (index, panel) in panels.iter().enumerate() {
        draw(
            &mut out,
            panel,
            index as f64 * (PANEL + TOP + BOTTOM),
            seconds,
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn draw(out: &mut String, panel: &Panel<'_>, y0: f64, seconds: f64) {
    // The run's own length: a shorter run's line stops where it ended.
    let last = panel.samples.iter().map(|s| s.at).fold(0.0_f64, f64::max) as usize;
    let buckets = seconds as usize + 1;
    let mut ok = vec![0_u32; buckets];
    let mut failed = vec![0_u32; buckets];
    for sample in panel.samples {
        let bucket = (sample.at as usize).min(buckets - 1);
        if sample.error.is_none() {
            ok[bucket] += 1;
        } else {
            failed[bucket] += 1;
        }
    }
    let peak = ok
        .iter()
        .zip(&failed)
        .map(|(a, b)| a + b)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + t / seconds * plot_w;
    let base = y0 + TOP + PANEL;
    let y = |v: f64| base - v / peak * PANEL;
    let total_failed: u32 = failed.iter().sum();
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{}" font-size="15" font-weight="bold">{} — {} requests, {} failed</text>"#,
        y0 + 24.0,
        escape(panel.title),
        panel.samples.len(),
        total_failed
    );
    for (index, span) in panel.spans.iter().enumerate() {
        let (a, b) = (x(span.start), x(span.end));
        let fill = if index % 2 == 0 { "#dbe9f6" } else { "#c6dbef" };
        let _ = write!(
            out,
            r##"<rect x="{a:.1}" y="{}" width="{:.1}" height="{PANEL}" fill="{fill}"/><text x="{:.1}" y="{}" fill="#08519c" font-size="11">{}</text>"##,
            y0 + TOP,
            (b - a).max(1.0),
            a + 2.0,
            y0 + TOP + 12.0 + (index % 2) as f64 * 13.0,
            escape(&span.label)
        );
    }
    // Axes, with a tick every 10 s and the peak rate.
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="#333"/><line x1="{LEFT}" y1="{}" x2="{LEFT}" y2="{base}" stroke="#333"/>"##,
        WIDTH - RIGHT,
        y0 + TOP
    );
    let mut t = 0.0;
    while t <= seconds {
        let _ = write!(
            out,
            r##"<line x1="{0:.1}" y1="{base}" x2="{0:.1}" y2="{1}" stroke="#333"/><text x="{0:.1}" y="{2}" text-anchor="middle">{3}s</text>"##,
            x(t),
            base + 4.0,
            base + 18.0,
            t as u32
        );
        t += 10.0;
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end">{peak}/s</text><text x="{}" y="{}" text-anchor="end">0</text>"#,
        LEFT - 6.0,
        y(peak) + 4.0,
        LEFT - 6.0,
        base + 4.0
    );
    for (second, count) in failed.iter().enumerate() {
        if *count > 0 {
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#d62728"/>"##,
                x(second as f64),
                y(f64::from(*count)),
                (plot_w / seconds).max(1.5),
                base - y(f64::from(*count))
            );
        }
    }
    for (index, (at, what)) in panel.events.iter().enumerate() {
        // A mark in the right half is labelled to its left, so the words stay in the picture.
        let (label_x, anchor) = if x(*at) > WIDTH / 2.0 {
            (x(*at) - 4.0, "end")
        } else {
            (x(*at) + 4.0, "start")
        };
        let _ = write!(
            out,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{base}" stroke="#d62728" stroke-dasharray="5,3" stroke-width="2"/><text x="{2:.1}" y="{3}" fill="#d62728" font-weight="bold" text-anchor="{anchor}" stroke="white" stroke-width="3" paint-order="stroke">{4}</text>"##,
            x(*at),
            y0 + TOP,
            label_x,
            y0 + TOP + PANEL / 2.0 + index as f64 * 15.0,
            escape(what)
        );
    }
    // The last second is cut short by the end of the load: left out.
    let points: Vec<String> = ok
        .iter()
        .take(last)
        .enumerate()
        .map(|(second, count)| format!("{:.1},{:.1}", x(second as f64 + 0.5), y(f64::from(*count))))
        .collect();
    let _ = write!(
        out,
        r##"<polyline points="{}" fill="none" stroke="#2ca02c" stroke-width="2"/>"##,
        points.join(" ")
    );
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="end"><tspan fill="#2ca02c">— answered per second</tspan>  <tspan fill="#d62728">■ failed per second</tspan>  <tspan fill="#08519c">■ a node being replaced</tspan></text>"##,
        WIDTH - RIGHT,
        y0 + 24.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_shows_as_a_red_bar_and_a_replacement_as_a_named_span() {
        let samples = vec![
            Sample {
                at: 0.2,
                ms: 3.0,
                error: None,
            },
            Sample {
                at: 1.5,
                ms: 2000.0,
                error: Some("timeout".into()),
            },
        ];
        let spans = vec![Span {
            label: "m1 → m4".into(),
            start: 0.5,
            end: 1.8,
        }];
        let events = vec![(1.0, "quorum lost".to_owned())];
        let picture = svg(&[Panel {
            title: "with the processor",
            samples: &samples,
            spans: &spans,
            events: &events,
        }]);
        assert!(picture.starts_with("<svg"));
        assert!(picture.contains("#d62728\"/>"), "no failure bar");
        assert!(picture.contains("m1 → m4"));
        assert!(picture.contains("2 requests, 1 failed"));
        assert!(picture.contains("quorum lost"));
    }
}
