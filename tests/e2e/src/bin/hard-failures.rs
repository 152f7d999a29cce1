//! `hard-failures [--compare] [--rate N] [--keep]`: the demo's second scenario
//! (`scripts/demo.sh hard-failures`). On a fresh test bed (3 managers + 2 workers, formed by
//! the bootstrap) it runs a web service behind the load balancer under a steady load, and
//! loses three managers and then a worker one after another through EC2, with no hook, each
//! replaced by its group, the processor sweeping the membership. It shows its progress, then
//! a summary, and writes `target/bench/hard-failures.json` and the timeline
//! `target/bench/hard-failures.svg`.
//!
//! `--compare` first does the same on a fresh test bed with the sweep off (the processor
//! still drains and admits through the hooks), its figures under `without_sweep`. `--keep`
//! uses the running test bed. Exits non-zero when the run with the sweep lost the quorum,
//! left a Down node, or ended with Raft members other than the managers in service.

use anyhow::{Result, bail};
use e2e::demo;
use e2e::hard_failures::{Options, Report, run};

fn summary(report: &Report) -> Vec<(&'static str, String)> {
    let mut sorted: Vec<f64> = report
        .seconds_gone_to_removed
        .iter()
        .flatten()
        .copied()
        .collect();
    sorted.sort_by(f64::total_cmp);
    let mut lines = vec![("nodes lost (no hook)", report.lost.join(", "))];
    lines.extend(report.ending.summary(&report.events));
    lines.extend([
        (
            "lost node removed after",
            if sorted.is_empty() {
                "never".to_owned()
            } else {
                format!(
                    "p50 {:.1} s, max {:.1} s ({} of {})",
                    sorted[(sorted.len() - 1) / 2],
                    sorted[sorted.len() - 1],
                    sorted.len(),
                    report.lost.len()
                )
            },
        ),
        (
            "calls per sweep (p50, max)",
            if report.calls_per_sweep.sweeps == 0 {
                "no sweep".to_owned()
            } else {
                let c = &report.calls_per_sweep;
                format!(
                    "Docker {}, {}; AWS {}, {} ({} sweeps)",
                    c.docker_p50, c.docker_max, c.aws_p50, c.aws_max, c.sweeps
                )
            },
        ),
        ("total time", format!("{:.1} s", report.total_seconds)),
    ]);
    lines
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = demo::Args::from_env("hard-failures", false)?;
    let scenario = demo::Scenario {
        name: "hard-failures",
        title: "Losses no hook announces",
        with: "with the sweep",
        without: "without the sweep",
        compare_key: "without_sweep",
    };
    let (with, _) = demo::run_compared(
        &scenario,
        &args,
        "losses",
        async |with_product, progress| {
            run(
                &Options {
                    with_sweep: with_product,
                    rate: args.rate,
                    replicas: 3,
                },
                progress,
            )
            .await
        },
        summary,
    )
    .await?;

    let healed = with.ending.whole();
    if !healed {
        bail!("the run with the sweep did not heal the membership (see above)");
    }
    Ok(())
}
