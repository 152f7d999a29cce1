//! `listeners [--rate N] [--keep]`: the demo's listener scenario (`scripts/demo.sh
//! listeners`). On a fresh test bed, a processor keeps the network load balancer in step with
//! the swarm's published ports: two services published from the start take a steady load
//! through it while five more are published and unpublished one after another, each timed
//! from its service created to its first answer, and from its service removed to its listener
//! gone. It shows its progress, then a summary, and writes `target/bench/listeners.json` and
//! the timeline `target/bench/listeners.svg`. Exits non-zero when a request to the steady
//! services failed.

use anyhow::{Result, bail};
use e2e::demo;
use e2e::listeners::{Options, Report, run};

fn summary(report: &Report) -> Vec<(&'static str, String)> {
    let list = |values: &[u64]| {
        values
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        (
            "publish → listener (ms)",
            list(&report.publish_to_listener_ms),
        ),
        (
            "publish → first answer (ms)",
            format!(
                "{} (p50 {}, max {})",
                list(&report.publish_to_first_answer_ms),
                report.publish_to_first_answer_ms_p50,
                report.publish_to_first_answer_ms_max
            ),
        ),
        (
            "unpublish → listener gone (ms)",
            format!(
                "{} (max {})",
                list(&report.unpublish_to_gone_ms),
                report.unpublish_to_gone_ms_max
            ),
        ),
        (
            "unpublish → no answer (ms)",
            list(&report.unpublish_to_silent_ms),
        ),
        (
            "requests to the steady ports",
            format!(
                "{} sent, {} failed",
                report.requests_total, report.requests_failed
            ),
        ),
        ("total time", format!("{:.1} s", report.total_seconds)),
    ]
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = demo::Args::from_env("listeners", false)?;
    // Nothing to compare with: without the sync no published port is reachable at all.
    args.compare = false;
    let scenario = demo::Scenario {
        name: "listeners",
        title: "Published ports through the load balancer",
        with: "with the listener sync",
        without: "",
        compare_key: "",
    };
    let (with, _) = demo::run_compared(
        &scenario,
        &args,
        "ports",
        async |_, progress| {
            run(
                &Options {
                    rate: args.rate,
                    rounds: 5,
                },
                progress,
            )
            .await
        },
        summary,
    )
    .await?;
    if with.requests_failed > 0 {
        bail!("requests to the steady ports failed (see above)");
    }
    Ok(())
}
