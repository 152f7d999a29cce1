//! What the demo's scenarios share (`rolling-upgrade`, `hard-failures`): a fresh test bed per
//! run, a progress display, and the summary side by side with the run it is compared to.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

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

/// A progress bar titled `title`, counting `unit`, drawn on a terminal only.
pub fn progress_bar(title: &str, unit: &str) -> Result<ProgressBar> {
    let bar = ProgressBar::new(0);
    if std::io::stderr().is_terminal() {
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
    Ok(bar)
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
