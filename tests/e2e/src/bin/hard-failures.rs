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

use anyhow::{Context, Result, bail};
use e2e::demo::{self, or_none, print_summary, yes};
use e2e::hard_failures::{Options, Report, run};

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
                bail!("unknown argument {other}: hard-failures [--compare] [--rate N] [--keep]")
            }
        }
    }
    Ok(args)
}

async fn one_run(args: &Args, with_sweep: bool) -> Result<Report> {
    let title = if with_sweep {
        "with the sweep"
    } else {
        "without the sweep"
    };
    let options = Options {
        with_sweep,
        rate: args.rate,
        replicas: 3,
    };
    demo::one_run(title, "losses", args.keep, async |progress| {
        run(&options, progress).await
    })
    .await
}

fn summary(report: &Report) -> Vec<(&'static str, String)> {
    let removed: Vec<f64> = report
        .seconds_gone_to_removed
        .iter()
        .flatten()
        .copied()
        .collect();
    let mut sorted = removed.clone();
    sorted.sort_by(f64::total_cmp);
    vec![
        ("nodes lost (no hook)", report.lost.join(", ")),
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
        ("managers kept quorum", yes(report.quorum_kept).to_owned()),
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
        ("requests sent", report.requests_total.to_string()),
        ("requests failed", report.requests_failed.to_string()),
        (
            "fewest replicas running",
            if report.longest_without_leader_seconds > 0.0 {
                format!(
                    "{} of 3 while a manager could tell",
                    report.min_running_replicas
                )
            } else {
                format!("{} of 3", report.min_running_replicas)
            },
        ),
        ("total time", format!("{:.1} s", report.total_seconds)),
    ]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    // Without the sweep first: the test bed left for you to explore is the healthy one.
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
            "Losses no hook announces"
        } else {
            "Losses no hook announces, with the membership sweep"
        },
        ("WITH the sweep", "WITHOUT"),
        &left,
        right.as_deref(),
    );

    let runs: Vec<demo::Run<'_, Report>> = [
        ("with the sweep", Some(&with)),
        ("without the sweep", without.as_ref()),
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
    demo::write_outputs("hard-failures", "without_sweep", &runs[0], runs.get(1))?;

    let healed = with.quorum_kept
        && with.down_nodes_left == Some(0)
        && with.raft_members_end == Some(with.managers_in_service_end);
    if !healed {
        bail!("the run with the sweep did not heal the membership (see above)");
    }
    Ok(())
}
