//! `rolling-upgrade [--compare] [--rate N] [--per-group N] [--keep]`: the demo. On a fresh
//! test bed (3 managers + 2 workers, formed by the bootstrap) it runs a web service behind
//! the load balancer, puts a steady load through it, and replaces every node one at a time
//! through the emulator's rolling update, the lifecycle processor draining each node first.
//! It shows its progress as it goes, then a summary, and writes
//! `target/bench/rolling-upgrade.json` and the timeline `target/bench/rolling-upgrade.svg`.
//!
//! `--compare` first does it on a fresh test bed without the processor (no hooks: nodes are
//! terminated as soon as they leave the load balancer), its figures under
//! `without_processor`. `--per-group N` replaces N nodes per group (the CI's short run);
//! `--keep` uses the running test bed. Two one-replica services run beside the web service,
//! their task healthy 5 s after it starts, under 50 requests a second each through the
//! routing mesh as the test bed stands it in: one surged before each drain
//! (`single_replica`), one opted out (`single_replica_without_surge`). Exits non-zero when
//! the run with the processor failed a request (the surged one-replica service's included),
//! lost quorum, left a Down node or did not replace every node.

use anyhow::{Result, bail};
use e2e::demo::{self, or_none, yes};
use e2e::rolling::{Options, Report, run};

/// A one-replica service's failed requests, of those sent.
fn single(load: Option<&e2e::rolling::PublishedLoad>) -> String {
    load.map_or("-".to_owned(), |l| {
        format!("{} of {}", l.requests_failed, l.requests_total)
    })
}

fn summary(report: &Report) -> Vec<(&'static str, String)> {
    let per_node = if report.seconds_per_node.is_empty() {
        "-".to_owned()
    } else {
        let mut sorted = report.seconds_per_node.clone();
        sorted.sort_by(f64::total_cmp);
        format!(
            "p50 {:.1} s, max {:.1} s",
            sorted[(sorted.len() - 1) / 2],
            sorted[sorted.len() - 1]
        )
    };
    vec![
        (
            "nodes replaced",
            format!("{} of {}", report.nodes_replaced, report.nodes_to_replace),
        ),
        ("rolling updates", report.outcomes.join("; ")),
        (
            "what went wrong",
            if report.events.is_empty() {
                "nothing".to_owned()
            } else {
                report
                    .events
                    .iter()
                    .map(|(at, what)| format!("{at:.0}s {what}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        ("requests sent", report.requests_total.to_string()),
        ("requests failed", report.requests_failed.to_string()),
        (
            "one replica, surged: failed",
            single(report.single_replica.as_ref()),
        ),
        (
            "one replica, no surge: failed",
            single(report.single_replica_without_surge.as_ref()),
        ),
        (
            "fewest replicas running",
            if report.samples_without_leader == 0 {
                format!("{} of 3", report.min_running_replicas)
            } else {
                format!(
                    "{} of 3 while a manager could tell",
                    report.min_running_replicas
                )
            },
        ),
        ("managers kept quorum", yes(report.quorum_kept).to_owned()),
        ("nodes left not Ready", or_none(report.down_nodes_left)),
        (
            "swarm at the end",
            match (report.managers_ready, report.workers_ready) {
                (Some(managers), Some(workers)) => {
                    format!("{managers} managers, {workers} workers Ready")
                }
                _ => "unmanageable: no manager answers".to_owned(),
            },
        ),
        ("total time", format!("{:.1} s", report.total_seconds)),
        ("time per node", per_node),
        (
            "processor overhead per drain",
            match (report.overhead_ms_p50, report.overhead_ms_max) {
                (Some(p50), Some(max)) => format!("p50 {p50} ms, max {max} ms"),
                _ => "-".to_owned(),
            },
        ),
    ]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = demo::Args::from_env("rolling-upgrade", true)?;
    let scenario = demo::Scenario {
        name: "rolling-upgrade",
        title: "Rolling upgrade under load",
        with: "with the processor",
        without: "without the processor",
        compare_key: "without_processor",
    };
    let (with, without) = demo::run_compared(
        &scenario,
        &args,
        "nodes",
        async |with_product, progress| {
            run(
                &Options {
                    with_processor: with_product,
                    per_group: args.per_group,
                    rate: args.rate,
                    replicas: 3,
                    published: Vec::new(),
                    single_replica: true,
                },
                progress,
            )
            .await
        },
        summary,
    )
    .await?;

    for report in std::iter::once(&with).chain(without.as_ref()) {
        if !report.failures.is_empty() {
            let label = if report.with_processor {
                "with"
            } else {
                "without"
            };
            let first: Vec<String> = report
                .failures
                .iter()
                .take(5)
                .map(|(at, what)| format!("{at:.1}s {what}"))
                .collect();
            println!(
                "  first failures {label} the processor: {}",
                first.join(", ")
            );
        }
    }

    let kept = with.requests_failed == 0
        && with
            .single_replica
            .as_ref()
            .is_none_or(|s| s.requests_failed == 0)
        && with.quorum_kept
        && with.down_nodes_left == Some(0)
        && with.nodes_replaced == with.nodes_to_replace
        && with.nodes_to_replace > 0;
    if !kept {
        bail!("the rolling upgrade with the processor did not keep its promise (see above)");
    }
    Ok(())
}
