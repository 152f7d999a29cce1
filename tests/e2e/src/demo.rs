//! What the demo's scenarios share (`rolling-upgrade`, `hard-failures`): a fresh test bed per
//! run, a progress display, and the summary side by side with the run it is compared to.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

/// Where a scenario's run is, for the progress display.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Steps done so far (nodes replaced, nodes lost).
    pub done: usize,
    /// Steps in all.
    pub total: usize,
    /// What happens now (`m2 → m5: waiting for ... to join`).
    pub phase: String,
    /// Requests sent and failed so far.
    pub requests: (usize, usize),
}

/// `testbed down` then `testbed up`: a fresh 3 + 2 swarm.
pub fn fresh_testbed() -> Result<()> {
    let testbed = crate::binary("testbed")?;
    for step in ["down", "up"] {
        let output = std::process::Command::new(&testbed).arg(step).output()?;
        if !output.status.success() {
            bail!(
                "testbed {step} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    Ok(())
}

/// One run of a scenario titled `title`, counting `unit`: on a fresh test bed unless `keep`,
/// its progress on a bar (on a terminal) or a line per change (in a log, which a CI can hold).
pub async fn one_run<R>(
    title: &str,
    unit: &str,
    keep: bool,
    run: impl AsyncFnOnce(&mut dyn FnMut(&Progress)) -> Result<R>,
) -> Result<R> {
    let bar = ProgressBar::new(0);
    let tty = std::io::stderr().is_terminal();
    if tty {
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {{prefix}} [{{elapsed_precise}}] [{{bar:25}}] {{pos}}/{{len}} {unit}  {{msg}}"
            ))?
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_prefix(title.to_owned());
    if !keep {
        bar.set_message("bringing a fresh test bed up (3 managers + 2 workers)");
        fresh_testbed()?;
    }
    let mut last_phase = String::new();
    let started = std::time::Instant::now();
    let mut show = |p: &Progress| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(format!(
            "{} | {} requests, {} failed",
            p.phase, p.requests.0, p.requests.1
        ));
        if !tty && p.phase != last_phase {
            eprintln!(
                "[{:>5.1}s] {title}: {}/{} {unit}, {}",
                started.elapsed().as_secs_f64(),
                p.done,
                p.total,
                p.phase
            );
            last_phase = p.phase.clone();
        }
    };
    let report = run(&mut show).await;
    bar.finish_and_clear();
    report
}

/// `yes`, or a loud `NO`.
pub fn yes(value: bool) -> &'static str {
    if value { "yes" } else { "NO" }
}

/// The value, or what its absence means.
pub fn or_none<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(
        || "unknown: no manager answers".to_owned(),
        |v| v.to_string(),
    )
}

/// Prints the summary `left` under `title`, beside `right` (the run it is compared to) when
/// there is one.
pub fn print_summary(
    title: &str,
    headings: (&str, &str),
    left: &[(&'static str, String)],
    right: Option<&[(&'static str, String)]>,
) {
    match right {
        None => {
            println!("{title}");
            for (what, value) in left {
                println!("  {what:<30} {value}");
            }
        }
        Some(right) => {
            let width = left
                .iter()
                .map(|(_, v)| v.chars().count())
                .max()
                .unwrap_or(0)
                + 2;
            let (with, without) = headings;
            println!("  {title:<30} {with:<width$} {without}");
            for ((what, value), (_, other)) in left.iter().zip(right) {
                println!("  {what:<30} {value:<width$} {other}");
            }
        }
    }
}

/// One run of a scenario, for its outputs: its title on the timeline, its report (the JSON)
/// and what the timeline draws.
pub struct Run<'a, R> {
    /// `with the processor`, `without the sweep`.
    pub title: &'a str,
    /// The report, as the JSON holds it.
    pub report: &'a R,
    /// Every request.
    pub samples: &'a [crate::load::Sample],
    /// The steps on the timeline.
    pub spans: &'a [crate::timeline::Span],
    /// Moments to mark.
    pub events: &'a [(f64, String)],
}

/// Writes `target/bench/NAME.json` (the compared run under `compare_key`) and the timeline
/// `target/bench/NAME.svg`, and says so.
pub fn write_outputs<R: serde::Serialize>(
    name: &str,
    compare_key: &str,
    with: &Run<'_, R>,
    without: Option<&Run<'_, R>>,
) -> Result<()> {
    std::fs::create_dir_all("target/bench")?;
    let mut json = serde_json::to_value(with.report)?;
    if let Some(without) = without {
        json[compare_key] = serde_json::to_value(without.report)?;
    }
    let (json_path, svg_path) = (
        format!("target/bench/{name}.json"),
        format!("target/bench/{name}.svg"),
    );
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)?;
    let panels: Vec<crate::timeline::Panel<'_>> = std::iter::once(with)
        .chain(without)
        .map(|run| crate::timeline::Panel {
            title: run.title,
            samples: run.samples,
            spans: run.spans,
            events: run.events,
        })
        .collect();
    std::fs::write(&svg_path, crate::timeline::svg(&panels))?;
    println!();
    println!("  written: {json_path}, {svg_path} (the timeline)");
    Ok(())
}
