//! The scale benchmark (`scripts/bench-scale.sh`): the test bed grown to as many nodes as this
//! machine holds (60 at most), 50 of them terminated at once while the load balancer takes a
//! steady load, one processor draining them all. Its figures come from the processor's own
//! counters (its metrics port, read every second), its JSON log and the emulator's history.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bollard::Docker;
use chrono::{DateTime, Utc};
use serde::Serialize;
use testbed::{Testbed, balancer, docker, layout};

use crate::fixture::{Fixture, JOIN, Launch, TERMINATING, history_events};
use crate::load::Load;
use crate::processor::ProcessorProcess;
use crate::workload;

/// The most nodes the benchmark grows the test bed to.
pub const MOST_NODES: usize = 60;
/// Instances terminated at once.
pub const TERMINATIONS: usize = 50;
/// Requests a second through the load balancer meanwhile.
const RATE: u32 = 20;
/// Memory kept free for everything else (moto, the emulator, the processor, the build).
const RESERVE_MIB: u64 = 3 * 1024;
/// The budget of Auto Scaling calls per waiting action and minute (state changes aside).
pub const CALLS_PER_ACTION_MINUTE: f64 = 2.0;
/// How long the heartbeat interval is, as the stack sets it: the budget is checked at the
/// stack's cadence, not at the tests' one-second one.
const HEARTBEAT_SECONDS: &str = "60";

/// What `scripts/bench-scale.sh` writes to `target/bench/scale.json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// When it ran.
    pub date: String,
    /// Swarm nodes when the terminations started.
    pub nodes: usize,
    /// Resident memory of one idle node (its dockerd, containerd and shims), MiB.
    pub memory_per_node_mib: f64,
    /// Why the swarm has that many nodes (60, or what fits).
    pub nodes_limited_by: String,
    /// Instances terminated at once.
    pub terminations: usize,
    /// Of those, how many lifecycle actions the processor completed.
    pub completed: usize,
    /// Completed while the node was still in the swarm (and so could still run tasks).
    pub completed_early: usize,
    /// Ended by their hook's timeout rather than completed.
    pub timed_out: usize,
    /// Drains given up at the deadline.
    pub forced: usize,
    /// The most Auto Scaling calls (describe and heartbeat) in any minute, per action waiting
    /// in that minute.
    pub autoscaling_calls_per_action_per_minute_max: f64,
    /// `CompleteLifecycleAction` calls per completed action (the one state change).
    pub completions_per_action: f64,
    /// Every Auto Scaling call of the run, by API.
    pub autoscaling_calls: BTreeMap<String, u64>,
    /// The most Engine API calls in any second.
    pub docker_calls_per_second_max: f64,
    /// Every Engine API call of the run.
    pub docker_calls: u64,
    /// From the removal decided (nothing left to wait for) to the action completed.
    pub overhead_ms_p50: i64,
    /// The same, the slowest.
    pub overhead_ms_max: i64,
    /// From the notification to the completion, per action.
    pub drain_seconds_p50: f64,
    /// The slowest.
    pub drain_seconds_max: f64,
    /// From `drain` to the moment the processor saw every task moved (Swarm's reschedule as
    /// the processor sees it).
    pub swarm_reschedule_seconds_p50: f64,
    /// From the scale-in to the last completion.
    pub all_completed_seconds: f64,
    /// Requests sent through the load balancer meanwhile, and how many failed.
    pub requests: usize,
    /// Of those, failed.
    pub requests_failed: usize,
    /// Whether the figures meet the budget: all completed, none early, the calls within.
    pub budget_held: bool,
}

/// The resident memory (KiB) of every process of test bed node `node` (its daemons and shims
/// name its directories on their command lines).
fn node_memory_kib(node: &str) -> Result<u64> {
    let marks = [
        format!("{}/{node}/", layout::RUN_DIR),
        format!("{}/{node}/", layout::DATA_DIR),
    ];
    let mut total = 0;
    for entry in std::fs::read_dir("/proc")? {
        let path = entry?.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if !marks.iter().any(|m| cmdline.contains(m.as_str())) {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        total += crate::kib_field(&status, "VmRSS").unwrap_or(0);
    }
    ensure!(total > 0, "no process of node {node} found");
    Ok(total)
}

/// The memory available now (MiB).
fn available_mib() -> Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let kib = crate::kib_field(&meminfo, "MemAvailable").context("no MemAvailable")?;
    Ok(kib / 1024)
}

/// The processor's calls so far, by (service, API), from its metrics port.
fn calls(addr: SocketAddr) -> Result<BTreeMap<(String, String), u64>> {
    let (status, text) = testbed::http::get(addr, "/metrics", Duration::from_secs(5))?;
    ensure!(status == 200, "the metrics port answered {status}");
    let mut calls = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("swarm_lifecycle_calls_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split("\",")
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        *calls.entry((label("service"), label("api"))).or_default() +=
            value.trim().parse::<f64>().unwrap_or(0.0) as u64;
    }
    Ok(calls)
}

/// The processor's counters at one moment.
struct Scrape {
    at: DateTime<Utc>,
    /// Auto Scaling calls while actions wait: describes and heartbeats.
    waiting_calls: u64,
    docker_calls: u64,
}

impl Scrape {
    fn of(calls: &BTreeMap<(String, String), u64>) -> Self {
        let sum = |keep: &dyn Fn(&str, &str) -> bool| {
            calls
                .iter()
                .filter(|((service, api), _)| keep(service, api))
                .map(|(_, n)| n)
                .sum()
        };
        Self {
            at: Utc::now(),
            waiting_calls: sum(&|service, api| {
                service == "Auto Scaling" && api != "CompleteLifecycleAction"
            }),
            docker_calls: sum(&|service, _| service == "docker"),
        }
    }
}

/// One terminated instance's times.
#[derive(Debug, Default, Clone)]
struct Times {
    notified: Option<DateTime<Utc>>,
    completed: Option<DateTime<Utc>>,
    drained: Option<DateTime<Utc>>,
    removal_decided: Option<DateTime<Utc>>,
    completion_logged: Option<DateTime<Utc>>,
}

/// The median and the largest of `values`.
fn p50_max(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values
            .get(values.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or(0.0),
        values.last().copied().unwrap_or(0.0),
    )
}

/// Runs the benchmark; `say` hears its progress.
pub async fn run(say: &mut dyn FnMut(&str)) -> Result<Report> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    if !balancer::answers() {
        bail!("the test bed's load balancer does not answer: `testbed up` starts it");
    }
    crate::rolling::ensure_service(&manager, 3).await?;

    // How many nodes fit: the test bed's, plus as many as memory allows, up to 60.
    let per_node_mib = node_memory_kib("w1")? as f64 / 1024.0;
    let existing = manager
        .list_nodes(None)
        .await?
        .iter()
        .filter(|n| docker::is_ready(n))
        .count();
    let room = available_mib()?.saturating_sub(RESERVE_MIB);
    // A node under load takes more than idle: half again.
    let fit = (room as f64 / (per_node_mib * 1.5)) as usize;
    let wanted = MOST_NODES.saturating_sub(existing);
    let added = wanted.min(fit);
    ensure!(
        added > TERMINATIONS,
        "only {added} more nodes fit ({room} MiB free, {per_node_mib:.0} MiB a node): not enough for {TERMINATIONS} terminations"
    );
    let nodes_limited_by = if added == wanted {
        format!("the benchmark's {MOST_NODES} nodes")
    } else {
        format!(
            "memory: {room} MiB free past a {RESERVE_MIB} MiB reserve, {per_node_mib:.0} MiB a node (x1.5 under load)"
        )
    };
    say(&format!(
        "idle node: {per_node_mib:.0} MiB; adding {added} nodes to the {existing} of the test bed"
    ));

    let fixture = Fixture::create("scale", 0, Launch::Existing(JOIN), "worker").await?;
    let services = [
        format!("{}-agent", fixture.name),
        format!("{}-app", fixture.name),
    ];
    let outcome = measure(
        &fixture,
        &manager,
        &services,
        added,
        per_node_mib,
        nodes_limited_by,
        say,
    )
    .await;
    for service in &services {
        let _ = manager.delete_service(service).await;
    }
    fixture.remove().await?;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    fixture: &Fixture,
    manager: &Docker,
    services: &[String; 2],
    added: usize,
    per_node_mib: f64,
    nodes_limited_by: String,
    say: &mut dyn FnMut(&str),
) -> Result<Report> {
    // Grown ten at a time: 55 daemons booting and joining at once on two cores time out
    // their joins (a limit of this machine, not of a swarm on AWS).
    fixture
        .asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(&fixture.name)
        .max_size(added as i32)
        .send()
        .await?;
    let mut instances = Vec::new();
    let mut size = 0;
    while size < added {
        size = (size + 10).min(added);
        fixture.set_desired(size as i32).await?;
        instances = crate::wait::until(
            Duration::from_secs(300),
            Duration::from_secs(1),
            async || {
                let listed = fixture.instances().await?;
                let ready = listed.iter().filter(|i| i.1 == "InService").count();
                Ok(if ready == size {
                    Ok(listed.into_iter().map(|i| i.0).collect::<Vec<_>>())
                } else {
                    Err(format!("{ready} of {size} in service"))
                })
            },
        )
        .await?;
        workload::wait_joined(manager, &instances).await?;
        say(&format!("{size} of {added} nodes joined"));
    }
    workload::label_nodes(manager, &fixture.name, &instances).await?;
    // The work each drain waits for: a global agent (its task must stop) and a replicated
    // app, one replica a node, whose replicas on the terminated nodes must run on the five
    // left (no limit a node: they all fit there).
    workload::deploy_global(manager, &services[0], &fixture.name).await?;
    workload::deploy(
        manager,
        &services[1],
        &fixture.name,
        added as i64,
        0,
        false,
        Duration::from_secs(10),
    )
    .await?;
    workload::wait_running(manager, &services[0], added).await?;
    workload::wait_running(manager, &services[1], added).await?;
    say("workload running");

    // The longest heartbeat timeout Auto Scaling takes (two hours; two minutes at the test
    // bed's time scale): the heartbeats, at the stack's minute, keep every action open.
    fixture
        .put_hook("drain", TERMINATING, 7200, "ABANDON")
        .await?;
    let metrics: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut processor = ProcessorProcess::start(
        fixture,
        &[
            ("HEARTBEAT_INTERVAL_SECONDS", HEARTBEAT_SECONDS),
            // The stack's visibility, not the tests' five seconds: on a machine this loaded,
            // a renewal late by a second shows a message being worked on to a second worker.
            ("VISIBILITY_TIMEOUT_SECONDS", "60"),
            ("METRICS_ADDR", &metrics.to_string()),
            ("LOG_FORMAT", "json"),
        ],
    )?;
    let nodes = manager
        .list_nodes(None)
        .await?
        .iter()
        .filter(|n| docker::is_ready(n))
        .count();
    let load = Load::start((layout::gateway(), balancer::PORT).into(), RATE);
    // The counters, every second, from before the scale-in to the last completion.
    let mut scrapes = vec![Scrape::of(&wait_for_metrics(metrics).await?)];
    let started = Utc::now();
    fixture.set_desired((added - TERMINATIONS) as i32).await?;
    say(&format!("{TERMINATIONS} terminations at once"));

    // Follow every instance: when its action ends, its node must already be gone.
    let mut pending: BTreeSet<String> = instances.iter().cloned().collect();
    let mut ended = BTreeSet::new();
    let mut early = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut next_scrape = Instant::now() + Duration::from_secs(1);
    while ended.len() < TERMINATIONS {
        ensure!(
            Instant::now() < deadline,
            "{} of {TERMINATIONS} completed after 15 minutes",
            ended.len()
        );
        for (id, in_swarm) in fixture.take_ended(manager, &mut pending).await? {
            if in_swarm {
                early.push(id.clone());
            }
            ended.insert(id);
        }
        if Instant::now() >= next_scrape {
            scrapes.push(Scrape::of(&calls_blocking(metrics).await?));
            next_scrape += Duration::from_secs(1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let finished = Utc::now();
    scrapes.push(Scrape::of(&calls_blocking(metrics).await?));
    let all_calls = calls_blocking(metrics).await?;
    let samples = load.stop().await;
    processor.stop()?;
    say("all ended");

    // Each instance's times: the emulator's history, the processor's log.
    let mut times: BTreeMap<String, Times> = BTreeMap::new();
    for id in &ended {
        let t = times.entry(id.clone()).or_default();
        for (at, what) in history_events(id).await? {
            if what.contains("notification of hook drain sent") {
                t.notified.get_or_insert(at);
            }
            if what.ends_with("completed with CONTINUE") {
                t.completed = Some(at);
            }
        }
    }
    let log = processor.logged();
    let mut forced = 0;
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let message = entry["fields"]["message"].as_str().unwrap_or_default();
        if message.contains("DRAIN DEADLINE PASSED") {
            forced += 1;
        }
        let Some(id) = entry["span"]["instance_id"].as_str() else {
            continue;
        };
        let Some(t) = times.get_mut(id) else { continue };
        let at = entry["timestamp"]
            .as_str()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc));
        match message {
            "draining the node" => t.drained = t.drained.or(at),
            "removing the node from the swarm" => t.removal_decided = at,
            "lifecycle action completed" => t.completion_logged = at,
            _ => {}
        }
    }
    let completed = times.values().filter(|t| t.completed.is_some()).count();
    // Early: completed by the processor while the node was in the swarm. One that ended by
    // its timeout was not completed at all.
    early.retain(|id| times.get(id).is_some_and(|t| t.completed.is_some()));
    let timed_out = ended.len() - completed;
    let ms = |from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| {
        Some((to? - from?).num_milliseconds() as f64)
    };
    let (overhead_p50, overhead_max) = p50_max(
        times
            .values()
            .filter_map(|t| ms(t.removal_decided, t.completion_logged))
            .collect(),
    );
    let (drain_p50, drain_max) = p50_max(
        times
            .values()
            .filter_map(|t| ms(t.notified, t.completed))
            .map(|ms| ms / 1000.0)
            .collect(),
    );
    let (reschedule_p50, _) = p50_max(
        times
            .values()
            .filter_map(|t| ms(t.drained, t.removal_decided))
            .map(|ms| ms / 1000.0)
            .collect(),
    );

    // The budget: in every minute, the describes and heartbeats per action waiting then.
    let open: Vec<(DateTime<Utc>, DateTime<Utc>)> = times
        .values()
        .filter_map(|t| Some((t.notified?, t.completed.unwrap_or(finished))))
        .collect();
    let minute = chrono::TimeDelta::seconds(60);
    let mut per_action_minute_max: f64 = 0.0;
    for (i, from) in scrapes.iter().enumerate() {
        // The window [from, from + 1 min], or to the end of the run if that comes first.
        let Some(to) = scrapes[i..]
            .iter()
            .take_while(|s| s.at <= from.at + minute)
            .last()
        else {
            continue;
        };
        let waiting = open
            .iter()
            .filter(|(o, c)| *o <= to.at && *c >= from.at)
            .count();
        if waiting > 0 {
            let calls = (to.waiting_calls - from.waiting_calls) as f64;
            per_action_minute_max = per_action_minute_max.max(calls / waiting as f64);
        }
    }
    let docker_per_second_max = scrapes
        .windows(2)
        .map(|w| {
            let seconds = (w[1].at - w[0].at).num_milliseconds().max(1) as f64 / 1000.0;
            (w[1].docker_calls - w[0].docker_calls) as f64 / seconds
        })
        .fold(0.0, f64::max);
    let autoscaling_calls: BTreeMap<String, u64> = all_calls
        .iter()
        .filter(|((service, _), _)| service == "Auto Scaling")
        .map(|((_, api), n)| (api.clone(), *n))
        .collect();
    let completions = autoscaling_calls
        .get("CompleteLifecycleAction")
        .copied()
        .unwrap_or(0);
    let completions_per_action = completions as f64 / completed.max(1) as f64;
    let report = Report {
        date: Utc::now().to_rfc3339(),
        nodes,
        memory_per_node_mib: (per_node_mib * 10.0).round() / 10.0,
        nodes_limited_by,
        terminations: TERMINATIONS,
        completed,
        completed_early: early.len(),
        timed_out,
        forced,
        autoscaling_calls_per_action_per_minute_max: (per_action_minute_max * 100.0).round()
            / 100.0,
        completions_per_action,
        autoscaling_calls,
        docker_calls_per_second_max: docker_per_second_max.round(),
        docker_calls: all_calls
            .iter()
            .filter(|((service, _), _)| service == "docker")
            .map(|(_, n)| n)
            .sum(),
        overhead_ms_p50: overhead_p50 as i64,
        overhead_ms_max: overhead_max as i64,
        drain_seconds_p50: drain_p50,
        drain_seconds_max: drain_max,
        swarm_reschedule_seconds_p50: reschedule_p50,
        all_completed_seconds: (finished - started).num_milliseconds() as f64 / 1000.0,
        requests: samples.len(),
        requests_failed: samples.iter().filter(|s| s.error.is_some()).count(),
        budget_held: completed == TERMINATIONS
            && early.is_empty()
            && per_action_minute_max <= CALLS_PER_ACTION_MINUTE
            && completions_per_action <= 1.0,
    };
    Ok(report)
}

/// The processor's calls, read off the runtime's threads.
async fn calls_blocking(addr: SocketAddr) -> Result<BTreeMap<(String, String), u64>> {
    tokio::task::spawn_blocking(move || calls(addr)).await?
}

/// The processor's calls once its metrics port answers.
async fn wait_for_metrics(addr: SocketAddr) -> Result<BTreeMap<(String, String), u64>> {
    crate::wait::until(
        Duration::from_secs(120),
        Duration::from_millis(200),
        async || {
            Ok(match calls_blocking(addr).await {
                Ok(calls) => Ok(calls),
                Err(e) => Err(e.to_string()),
            })
        },
    )
    .await
}
