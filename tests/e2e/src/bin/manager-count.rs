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

use anyhow::{Context, Result, bail};
use e2e::demo::{self, or_none, print_summary, yes};
use e2e::manager_count::{Options, Report, run};

struct Args {
    compare: bool,
    keep: bool,
    rate: u32,
}

fn args() -> Result<Args> {
    let mut args = Args {
        compare: false,
        keep: false,
        rate: 20,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--compare" => args.compare = true,
            "--keep" => args.keep = true,
            "--rate" => args.rate = given.next().context("--rate N")?.parse()?,
            other => {
                bail!("unknown argument {other}: manager-count [--compare] [--rate N] [--keep]")
            }
        }
    }
    Ok(args)
}

async fn one_run(args: &Args, with_processor: bool) -> Result<Report> {
    let title = if with_processor {
        "with the processor"
    } else {
        "without the processor"
    };
    let options = Options {
        with_processor,
        sizes: vec![5, 3],
        rate: args.rate,
        replicas: 3,
    };
    demo::one_run(title, "changes", args.keep, async |progress| {
        run(&options, progress).await
    })
    .await
}

fn summary(report: &Report) -> Vec<(&'static str, String)> {
    let mut lines = vec![(
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
    )];
    for change in &report.changes {
        lines.push((
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
        ));
    }
    lines.extend([
        ("managers kept quorum", yes(report.quorum_kept).to_owned()),
        (
            "most Raft members unreachable",
            report.max_unreachable_members.to_string(),
        ),
        (
            "longest without a leader",
            format!("{:.1} s", report.longest_without_leader_seconds),
        ),
        ("Raft members at the end", or_none(report.raft_members_end)),
        (
            "managers in service at the end",
            report.managers_in_service_end.to_string(),
        ),
        ("nodes left not Ready", or_none(report.down_nodes_left)),
        ("requests sent", report.requests_total.to_string()),
        ("requests failed", report.requests_failed.to_string()),
        (
            "fewest replicas running",
            format!("{} of 3", report.min_running_replicas),
        ),
        ("total time", format!("{:.1} s", report.total_seconds)),
    ]);
    lines
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    // Without the processor first: the test bed left for you to explore is the healthy one.
    let without = if args.compare {
        Some(one_run(&args, false).await?)
    } else {
        None
    };
    let with = one_run(&args, true).await?;

    println!();
    let left = summary(&with);
    let right = without.as_ref().map(summary);
    print_summary(
        if right.is_some() {
            "ManagerSize 3 → 5 → 3, live"
        } else {
            "ManagerSize 3 → 5 → 3, live, with the processor"
        },
        ("WITH the processor", "WITHOUT"),
        &left,
        right.as_deref(),
    );

    let runs: Vec<demo::Run<'_, Report>> = [
        ("with the processor", Some(&with)),
        ("without the processor", without.as_ref()),
    ]
    .into_iter()
    .filter_map(|(title, report)| {
        report.map(|report| demo::Run {
            title,
            report,
            samples: &report.samples,
            spans: &report.spans,
            events: &report.events,
        })
    })
    .collect();
    demo::write_outputs("manager-count", "without_processor", &runs[0], runs.get(1))?;

    let kept = with.quorum_kept
        && with.down_nodes_left == Some(0)
        && with.raft_members_end == Some(with.managers_in_service_end);
    if !kept {
        bail!("the run with the processor did not keep the membership (see above)");
    }
    Ok(())
}
