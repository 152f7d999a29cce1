//! `manager-count [--compare] [--rate N] [--keep]`: the demo's third scenario
//! (`scripts/demo.sh manager-count`). On a fresh test bed (3 managers + 2 workers, formed by
//! the bootstrap) it runs a web service behind the load balancer under a steady load, and
//! changes `ManagerSize` live, 3 → 5 → 3, as stack updates do: the group launches two
//! managers, then terminates two, the processor admitting and draining them. It shows its
//! progress, then a summary, and writes `target/bench/manager-count.json` and the timeline
//! `target/bench/manager-count.svg`.
//!
//! `--compare` first does the same on a fresh test bed without the processor (no hooks), its
//! figures under `without_processor`. `--keep` uses the running test bed. Exits non-zero when
//! the run with the processor lost the quorum, left a Down node, or ended with Raft members
//! other than the managers in service.

use anyhow::{Result, bail};
use e2e::demo::{self, or_none};
use e2e::manager_count::{Options, Report, run};

fn summary(report: &Report) -> Vec<(&'static str, String)> {
    let mut lines: Vec<(&'static str, String)> = report
        .changes
        .iter()
        .map(|change| {
            (
                "ManagerSize change",
                format!(
                    "{} → {}: {}, Raft {} ({} reachable), {} in service",
                    change.from,
                    change.to,
                    change
                        .settled_seconds
                        .map_or("did not settle".to_owned(), |s| format!("{s:.1} s")),
                    or_none(change.raft_members),
                    or_none(change.raft_reachable),
                    change.managers_in_service
                ),
            )
        })
        .collect();
    lines.extend(report.ending.summary(&report.events));
    lines.push(("total time", format!("{:.1} s", report.total_seconds)));
    lines
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = demo::Args::from_env("manager-count", false)?;
    let scenario = demo::Scenario {
        name: "manager-count",
        title: "ManagerSize 3 → 5 → 3, live",
        with: "with the processor",
        without: "without the processor",
        compare_key: "without_processor",
    };
    let (with, _) = demo::run_compared(
        &scenario,
        &args,
        "changes",
        async |with_product, progress| {
            run(
                &Options {
                    with_processor: with_product,
                    sizes: vec![5, 3],
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

    let kept = with.ending.whole();
    if !kept {
        bail!("the run with the processor did not keep the membership (see above)");
    }
    Ok(())
}
