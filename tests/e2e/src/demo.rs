//! What the demo's scenarios share (`rolling-upgrade`, `hard-failures`): a fresh test bed per
//! run, a progress display, and the summary side by side with the run it is compared to.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result, bail};
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

/// A scenario's command line: `NAME [--compare] [--rate N] [--keep]`, and `[--per-group N]`
/// where the scenario takes it.
#[derive(Debug, Clone)]
pub struct Args {
    /// Run without the product first, for the comparison.
    pub compare: bool,
    /// Use the running test bed instead of a fresh one.
    pub keep: bool,
    /// Requests a second (20).
    pub rate: u32,
    /// Nodes replaced per group (all).
    pub per_group: Option<usize>,
}

impl Args {
    /// Reads the command line of scenario `name`; `per_group`: whether it takes `--per-group`.
    pub fn from_env(name: &str, per_group: bool) -> Result<Self> {
        let mut args = Self {
            compare: false,
            keep: false,
            rate: 20,
            per_group: None,
        };
        let mut given = std::env::args().skip(1);
        while let Some(arg) = given.next() {
            match arg.as_str() {
                "--compare" => args.compare = true,
                "--keep" => args.keep = true,
                "--rate" => args.rate = given.next().context("--rate N")?.parse()?,
                "--per-group" if per_group => {
                    args.per_group = Some(given.next().context("--per-group N")?.parse()?);
                }
                other => bail!(
                    "unknown argument {other}: {name} [--compare] [--rate N]{} [--keep]",
                    if per_group { " [--per-group N]" } else { "" }
                ),
            }
        }
        Ok(args)
    }
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

/// A scenario's outputs: its name (of the JSON and the picture), its title, and what its two
/// runs are called.
#[derive(Debug, Clone, Copy)]
pub struct Scenario<'a> {
    /// `manager-count`: `target/bench/manager-count.json` and `.svg`.
    pub name: &'a str,
    /// The summary's title (`ManagerSize 3 → 5 → 3, live`).
    pub title: &'a str,
    /// The run that shows the product (`with the processor`).
    pub with: &'a str,
    /// The run it is compared to (`without the processor`).
    pub without: &'a str,
    /// Where the compared run goes in the JSON (`without_processor`).
    pub compare_key: &'a str,
}

/// Runs a scenario as its command does: with `--compare`, first the run without the product
/// (so the test bed left to explore is the healthy one), then the run with it, each on a fresh
/// test bed unless `--keep`; prints the summary and writes the outputs. `run` makes one run
/// (`true`: with the product), counting `unit`; `summary` makes the lines of one run. Returns
/// both reports, for the command's verdict.
pub async fn run_compared<R: serde::Serialize + Timeline>(
    scenario: &Scenario<'_>,
    args: &Args,
    unit: &str,
    run: impl AsyncFn(bool, &mut dyn FnMut(&Progress)) -> Result<R>,
    summary: impl Fn(&R) -> Vec<(&'static str, String)>,
) -> Result<(R, Option<R>)> {
    let without = if args.compare {
        Some(
            one_run(scenario.without, unit, args.keep, async |progress| {
                run(false, progress).await
            })
            .await?,
        )
    } else {
        None
    };
    let with = one_run(scenario.with, unit, args.keep, async |progress| {
        run(true, progress).await
    })
    .await?;
    print_summary(scenario, &with, without.as_ref(), summary);
    write_outputs(scenario, &with, without.as_ref())?;
    Ok((with, without))
}

/// What the timeline draws of a run.
pub trait Timeline {
    /// Every request.
    fn samples(&self) -> &[crate::load::Sample];
    /// The steps on the timeline.
    fn spans(&self) -> &[crate::timeline::Span];
    /// Moments to mark: seconds from the start, and what.
    fn events(&self) -> &[(f64, String)];
}

/// Prints the summary of `with`, beside `without` (the run it is compared to) when there is
/// one; `summary` makes the lines of one run.
pub fn print_summary<R>(
    scenario: &Scenario<'_>,
    with: &R,
    without: Option<&R>,
    summary: impl Fn(&R) -> Vec<(&'static str, String)>,
) {
    println!();
    let left = summary(with);
    match without.map(summary) {
        None => {
            println!("{}, {}", scenario.title, scenario.with);
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
            let heading = format!(
                "WITH{}",
                scenario.with.strip_prefix("with").unwrap_or(scenario.with)
            );
            println!("  {:<30} {heading:<width$} WITHOUT", scenario.title);
            for ((what, value), (_, other)) in left.iter().zip(&right) {
                println!("  {what:<30} {value:<width$} {other}");
            }
        }
    }
}

/// Writes `target/bench/NAME.json` (the compared run under its key) and the timeline
/// `target/bench/NAME.svg`, and says so.
pub fn write_outputs<R: serde::Serialize + Timeline>(
    scenario: &Scenario<'_>,
    with: &R,
    without: Option<&R>,
) -> Result<()> {
    std::fs::create_dir_all("target/bench")?;
    let mut json = serde_json::to_value(with)?;
    if let Some(without) = without {
        json[scenario.compare_key] = serde_json::to_value(without)?;
    }
    let (json_path, svg_path) = (
        format!("target/bench/{}.json", scenario.name),
        format!("target/bench/{}.svg", scenario.name),
    );
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)?;
    let panels: Vec<crate::timeline::Panel<'_>> =
        [(scenario.with, Some(with)), (scenario.without, without)]
            .into_iter()
            .filter_map(|(title, run)| {
                run.map(|run| crate::timeline::Panel {
                    title,
                    samples: run.samples(),
                    spans: run.spans(),
                    events: run.events(),
                })
            })
            .collect();
    std::fs::write(&svg_path, crate::timeline::svg(&panels))?;
    println!();
    println!("  written: {json_path}, {svg_path} (the timeline)");
    Ok(())
}

/// Implements [`Timeline`] for a report with `samples`, `spans` and `events` fields.
#[macro_export]
macro_rules! timeline_of {
    ($report:ty) => {
        impl $crate::demo::Timeline for $report {
            fn samples(&self) -> &[$crate::load::Sample] {
                &self.samples
            }
            fn spans(&self) -> &[$crate::timeline::Span] {
                &self.spans
            }
            fn events(&self) -> &[(f64, String)] {
                &self.events
            }
        }
    };
}
