//! Losses no hook announces, under load, on the running test bed: three managers and then a
//! worker are terminated through EC2 one after another (`/emulator/ec2-terminate`: no hook
//! runs), each replaced by its group, while a web service of 3 replicas behind the load
//! balancer takes a steady load. With the membership sweep, each dead member is demoted and
//! removed; without it, dead managers pile up in Raft until the quorum is lost. What it
//! measures: the quorum at every sample, Raft members and managers in service at the end,
//! nodes left not Ready, the time from an instance gone to its node removed, failed requests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use chrono::Utc;
use serde::Serialize;
use testbed::autoscaling::{addr as emulator, state as emulator_state};
use testbed::{Testbed, balancer, docker, layout};

use crate::demo::Progress;
use crate::ending::Ending;
use crate::load::{Load, Sample};
use crate::manager_count::in_service;
use crate::rolling::{
    GROUPS, Watched, ensure_service, name, node_names, seconds_since, start_processor, watch,
};
use crate::timeline::Span;

/// Where the processor's log goes (JSON lines).
pub const PROCESSOR_LOG: &str = "target/bench/hard-failures-processor.log";
/// How often the processor sweeps in this scenario: the stack's minute would make each loss
/// last a minute here, where nothing else is slow.
pub const SWEEP_INTERVAL_SECONDS: &str = "5";
/// The most a loss is given to heal (its node removed, its replacement in service) before
/// the next one.
const PER_LOSS: Duration = Duration::from_secs(60);
/// Without the sweep no lost node is ever removed: the next loss comes this long after the
/// replacement is in service (time enough for a sweep, had there been one).
const SETTLE_WITHOUT_SWEEP: Duration = Duration::from_secs(20);

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sweep the membership (or not: the processor still drains and admits through hooks).
    pub with_sweep: bool,
    /// Requests a second.
    pub rate: u32,
    /// Replicas of the web service.
    pub replicas: u64,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether the sweep ran.
    pub with_sweep: bool,
    /// The nodes lost, in order.
    pub lost: Vec<String>,
    /// Per loss: seconds from the instance gone to its node out of the swarm (`None`: never,
    /// within the time the run gave it).
    pub seconds_gone_to_removed: Vec<Option<f64>>,
    /// What each sweep cost, from the processor's own counts.
    pub calls_per_sweep: CallsPerSweep,
    /// The quorum over the run, the membership at the end, the requests.
    #[serde(flatten)]
    pub ending: Ending,
    /// From the first request to the end of the last loss.
    pub total_seconds: f64,
    /// Each loss on the timeline: gone → removed (or → the end of its wait).
    pub spans: Vec<Span>,
    /// What went wrong, and when (seconds from the start).
    pub events: Vec<(f64, String)>,
    /// Every request (for the timeline; not in the JSON).
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

crate::timeline_of!(Report);

/// The calls each sweep made, as its `sweep done` line counts them: the median and the most
/// Engine API calls and AWS calls in one sweep.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallsPerSweep {
    /// Sweeps counted.
    pub sweeps: usize,
    /// Docker Engine API calls in one sweep: median.
    pub docker_p50: u64,
    /// Docker Engine API calls in one sweep: most.
    pub docker_max: u64,
    /// AWS calls in one sweep: median.
    pub aws_p50: u64,
    /// AWS calls in one sweep: most.
    pub aws_max: u64,
}

impl CallsPerSweep {
    /// Read from the processor's JSON log at `path`.
    pub fn read(path: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let (mut docker, mut aws) = (Vec::new(), Vec::new());
        for line in text.lines() {
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let fields = &entry["fields"];
            if fields["message"] == "sweep done"
                && let (Some(d), Some(a)) = (
                    fields["docker_calls"].as_u64(),
                    fields["aws_calls"].as_u64(),
                )
            {
                docker.push(d);
                aws.push(a);
            }
        }
        docker.sort_unstable();
        aws.sort_unstable();
        let p50 = |v: &[u64]| v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0);
        Ok(Self {
            sweeps: docker.len(),
            docker_p50: p50(&docker),
            docker_max: docker.last().copied().unwrap_or(0),
            aws_p50: p50(&aws),
            aws_max: aws.last().copied().unwrap_or(0),
        })
    }
}

/// Runs the losses under load; `progress` hears each change.
pub async fn run(options: &Options, progress: &mut dyn FnMut(&Progress)) -> Result<Report> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    if !balancer::answers() {
        bail!("the test bed's load balancer does not answer: `testbed up` starts it");
    }
    ensure_service(&manager, options.replicas).await?;
    let config = crate::sdk_config().await?;
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let interval = if options.with_sweep {
        SWEEP_INTERVAL_SECONDS
    } else {
        "0"
    };
    let processor = start_processor(
        &config,
        &autoscaling,
        PROCESSOR_LOG,
        &[("SWEEP_INTERVAL_SECONDS", interval)],
    )
    .await?;

    // Three managers, then a worker: the instances in service now.
    let state = emulator_state()?;
    let in_service_ids = |group: &str| -> Vec<String> {
        state["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["group"] == group && i["state"] == "InService")
            .filter_map(|i| i["id"].as_str().map(str::to_owned))
            .collect()
    };
    let mut losses = in_service_ids(GROUPS[0]);
    losses.truncate(3);
    losses.extend(in_service_ids(GROUPS[1]).into_iter().take(1));
    let names = node_names(&state);

    let started_at = Utc::now();
    let load = Load::start((layout::gateway(), balancer::PORT).into(), options.rate);
    let watched: Arc<Mutex<Watched>> = Arc::default();
    let watching = tokio::spawn(watch(Arc::clone(&watched)));

    let mut spans = Vec::new();
    let mut removed_after = Vec::new();
    let mut lost = Vec::new();
    for (index, id) in losses.iter().enumerate() {
        let node = name(&names, id).to_owned();
        lost.push(node.clone());
        // Lose it: EC2 terminates the instance, no hook runs, its group replaces it.
        let body = serde_json::json!({ "instance_id": id }).to_string();
        let (status, answer) = tokio::task::spawn_blocking(move || {
            testbed::http::post_json(
                emulator(),
                "/emulator/ec2-terminate",
                &body,
                Duration::from_secs(60),
            )
        })
        .await??;
        if status != 204 {
            bail!("the emulator refused to terminate {node}: {status} {answer}");
        }
        // The emulator answers once the machine is gone: from here its node is a dead member.
        let gone_at = Utc::now();
        // Heal: wait until its node is out of the swarm and its group is whole again, or
        // until the time given to a loss runs out.
        let deadline = Instant::now() + PER_LOSS;
        let mut removed = None;
        loop {
            if removed.is_none() && node_gone(id).await == Some(true) {
                removed = Some(seconds_since(gone_at, Utc::now()));
            }
            let whole = group_whole(id)?;
            let samples = load.samples();
            progress(&Progress {
                done: index,
                total: losses.len(),
                phase: format!(
                    "{node} lost: {}, {}",
                    if removed.is_some() {
                        "its node removed"
                    } else {
                        "its node still in the swarm"
                    },
                    if whole {
                        "its replacement in service"
                    } else {
                        "its replacement on the way"
                    }
                ),
                requests: (
                    samples.len(),
                    samples.iter().filter(|s| s.error.is_some()).count(),
                ),
            });
            let settled = !options.with_sweep
                && whole
                && (Utc::now() - gone_at).to_std().unwrap_or_default() >= SETTLE_WITHOUT_SWEEP;
            if (removed.is_some() && whole) || settled || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let start = seconds_since(started_at, gone_at);
        spans.push(Span {
            label: format!("{node} lost"),
            start,
            end: start + removed.unwrap_or(PER_LOSS.as_secs_f64()),
        });
        removed_after.push(removed);
    }
    let finished_at = Utc::now();
    let (ending, events, samples) = Ending::measure(load, watching, &watched, started_at).await?;
    drop(processor);
    Ok(Report {
        with_sweep: options.with_sweep,
        lost,
        seconds_gone_to_removed: removed_after,
        calls_per_sweep: CallsPerSweep::read(PROCESSOR_LOG)?,
        ending,
        total_seconds: seconds_since(started_at, finished_at),
        spans,
        events,
        samples,
    })
}

/// Whether the instance's node is out of the swarm (`None`: no manager answers).
async fn node_gone(instance_id: &str) -> Option<bool> {
    let manager = Testbed::load().ok()?.manager().await.ok()?;
    docker::node_by_instance_id(&manager, instance_id)
        .await
        .ok()
        .map(|node| node.is_none())
}

/// Whether the group of the lost instance has as many instances in service as it wants.
fn group_whole(lost: &str) -> Result<bool> {
    let state = emulator_state()?;
    let instances = state["instances"].as_array().cloned().unwrap_or_default();
    let Some(group) = instances
        .iter()
        .find(|i| i["id"] == lost)
        .and_then(|i| i["group"].as_str())
    else {
        return Ok(false);
    };
    let desired = state["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["name"] == group)
        .and_then(|g| g["desired"].as_u64())
        .unwrap_or(0) as usize;
    Ok(in_service(&state, group) >= desired)
}
