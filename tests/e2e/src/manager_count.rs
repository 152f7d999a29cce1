//! The manager count changed live, under load, on the running test bed: `ManagerSize` 3 → 5
//! → 3 as a stack update makes it (CloudFormation updates the managers' group's sizes; no node
//! is replaced), while a web service of 3 replicas behind the load balancer takes a steady
//! load. The group launches two managers, which join through the bootstrap, then terminates
//! two, which the processor demotes (one at a time), drains and removes through their hooks.
//! Without the processor the two terminated managers stay in Raft as dead members. What it
//! measures: the quorum at every sample, Raft members against managers in service after each
//! change and at the end, nodes left not Ready, the time each change took, failed requests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use serde::Serialize;
use testbed::autoscaling::state as emulator_state;
use testbed::{Testbed, balancer, layout};

use crate::demo::Progress;
use crate::ending::Ending;
use crate::load::{Load, Sample};
use crate::rolling::{
    GROUPS, Watched, ensure_service, remove_hooks, seconds_since, start_processor, watch,
};
use crate::timeline::Span;

/// Where the processor's log goes (JSON lines).
pub const PROCESSOR_LOG: &str = "target/bench/manager-count-processor.log";
/// The most a change is given to settle (the group at its new size, every instance in
/// service, Raft members equal to it).
const PER_CHANGE: Duration = Duration::from_secs(300);
/// Without the processor nothing ever makes Raft equal the group: a change counts as settled
/// this long after the group is (time enough for Swarm to mark the lost managers Down).
const SETTLE_WITHOUT_PROCESSOR: Duration = Duration::from_secs(20);

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Drain through the lifecycle processor (hooks on both groups), or without hooks.
    pub with_processor: bool,
    /// The manager counts to go through, one stack update each (from the test bed's 3).
    pub sizes: Vec<u32>,
    /// Requests a second.
    pub rate: u32,
    /// Replicas of the web service.
    pub replicas: u64,
}

/// One stack update of `ManagerSize`, as it ended.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The count before.
    pub from: u32,
    /// The count asked for.
    pub to: u32,
    /// Seconds from the update to the group at its size with Raft equal to it (`None`: not
    /// within the time given to a change).
    pub settled_seconds: Option<f64>,
    /// Raft members when the change ended (`None`: no manager answers).
    pub raft_members: Option<usize>,
    /// Reachable Raft members when the change ended.
    pub raft_reachable: Option<usize>,
    /// Instances in service in the managers' group when the change ended.
    pub managers_in_service: usize,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether the processor drained and admitted the managers.
    pub with_processor: bool,
    /// Each change, in order.
    pub changes: Vec<Change>,
    /// The quorum over the run, the membership at the end, the requests.
    #[serde(flatten)]
    pub ending: Ending,
    /// From the first request to the end of the last change.
    pub total_seconds: f64,
    /// Each change on the timeline: update → settled (or → the end of its wait).
    pub spans: Vec<Span>,
    /// What went wrong, and when (seconds from the start).
    pub events: Vec<(f64, String)>,
    /// Every request (for the timeline; not in the JSON).
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

crate::timeline_of!(Report);

/// The managers' group's sizes for `ManagerSize`, as the template sets them: the minimum and
/// the desired capacity are the count, the maximum one more (the `ManagerMax` mapping: room
/// for the rolling update's new node before an old one goes).
pub fn group_sizes(manager_size: u32) -> (i32, i32, i32) {
    let size = manager_size as i32;
    (size, size + 1, size)
}

/// Runs the changes under load; `progress` hears each change.
pub async fn run(options: &Options, progress: &mut dyn FnMut(&Progress)) -> Result<Report> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    if !balancer::answers() {
        bail!("the test bed's load balancer does not answer: `testbed up` starts it");
    }
    ensure_service(&manager, options.replicas).await?;
    let config = crate::sdk_config().await?;
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    // The processor as the stack runs it: its own sweep timer at the stack's minute.
    let processor = if options.with_processor {
        Some(start_processor(&config, &autoscaling, PROCESSOR_LOG, &[]).await?)
    } else {
        remove_hooks(&autoscaling).await;
        None
    };

    let started_at = Utc::now();
    let load = Load::start((layout::gateway(), balancer::PORT).into(), options.rate);
    let watched: Arc<Mutex<Watched>> = Arc::default();
    let watching = tokio::spawn(watch(Arc::clone(&watched)));

    let mut from = in_service(&emulator_state()?, GROUPS[0]) as u32;
    let mut changes = Vec::new();
    let mut spans = Vec::new();
    for (index, &to) in options.sizes.iter().enumerate() {
        // The stack update: CloudFormation sets the group's sizes from the new parameter.
        let (min, max, desired) = group_sizes(to);
        let updated_at = Utc::now();
        autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(GROUPS[0])
            .min_size(min)
            .max_size(max)
            .desired_capacity(desired)
            .send()
            .await
            .with_context(|| format!("the update of ManagerSize to {to} was refused"))?;
        // Settled: the group at its size, nothing launching or terminating, and Raft equal to
        // it with every member reachable (without the processor, Raft never gets there).
        let deadline = Instant::now() + PER_CHANGE;
        let mut group_settled_at = None;
        let (settled, raft) = loop {
            let state = emulator_state()?;
            let group_settled =
                in_service(&state, GROUPS[0]) == to as usize && in_flight(&state, GROUPS[0]) == 0;
            if group_settled {
                group_settled_at.get_or_insert_with(Instant::now);
            } else {
                group_settled_at = None;
            }
            let raft = raft().await;
            let samples = load.samples();
            progress(&Progress {
                done: index,
                total: options.sizes.len(),
                phase: format!(
                    "ManagerSize {from} → {to}: {} in service, {} launching or terminating, Raft {}",
                    in_service(&state, GROUPS[0]),
                    in_flight(&state, GROUPS[0]),
                    raft.map_or(
                        "unknown (no manager answers)".to_owned(),
                        |(members, up)| { format!("{members} members ({up} reachable)") }
                    )
                ),
                requests: (
                    samples.len(),
                    samples.iter().filter(|s| s.error.is_some()).count(),
                ),
            });
            let raft_settled = raft == Some((to as usize, to as usize));
            let waited_enough = !options.with_processor
                && group_settled_at.is_some_and(|at| at.elapsed() >= SETTLE_WITHOUT_PROCESSOR);
            if (group_settled && raft_settled) || waited_enough {
                break (Some(seconds_since(updated_at, Utc::now())), raft);
            }
            if Instant::now() > deadline {
                break (None, raft);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let start = seconds_since(started_at, updated_at);
        spans.push(Span {
            label: format!("ManagerSize {from} → {to}"),
            start,
            end: start + settled.unwrap_or(PER_CHANGE.as_secs_f64()),
        });
        changes.push(Change {
            from,
            to,
            settled_seconds: settled,
            raft_members: raft.map(|r| r.0),
            raft_reachable: raft.map(|r| r.1),
            managers_in_service: in_service(&emulator_state()?, GROUPS[0]),
        });
        from = to;
    }
    let finished_at = Utc::now();
    let (ending, events, samples) = Ending::measure(load, watching, &watched, started_at).await?;
    drop(processor);
    Ok(Report {
        with_processor: options.with_processor,
        changes,
        ending,
        total_seconds: seconds_since(started_at, finished_at),
        spans,
        events,
        samples,
    })
}

/// Raft members and reachable members now (`None`: no manager answers).
pub(crate) async fn raft() -> Option<(usize, usize)> {
    let manager = Testbed::load().ok()?.manager().await.ok()?;
    crate::workload::managers(&manager)
        .await
        .ok()
        .map(|(members, reachable, _)| (members, reachable))
}

/// Instances of `group` in service, in the emulator's state.
pub(crate) fn in_service(state: &serde_json::Value, group: &str) -> usize {
    instances_of(state, group)
        .filter(|state| *state == "InService")
        .count()
}

/// Instances of `group` launching or terminating, in the emulator's state.
fn in_flight(state: &serde_json::Value, group: &str) -> usize {
    instances_of(state, group)
        .filter(|state| *state != "InService" && *state != "Terminated")
        .count()
}

/// The lifecycle state of each instance of `group`, in the emulator's state.
fn instances_of<'a>(
    state: &'a serde_json::Value,
    group: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    state["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |i| i["group"] == group)
        .filter_map(|i| i["state"].as_str())
}
