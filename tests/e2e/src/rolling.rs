//! The rolling upgrade under load, end to end, on the running test bed: a web service of 3
//! replicas (host mode, so at most one per node) behind the load balancer (HAProxy), a
//! steady load through it, and every node of the two groups replaced one at a time by the
//! emulator's rolling update (CloudFormation's `AutoScalingRollingUpdate`), with or without
//! the lifecycle processor draining each node first. What it measures is the list:
//! requests sent and failed, the fewest replicas running, whether the managers kept quorum,
//! Down nodes left behind, time per node, the processor's overhead per drain.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bollard::models::{NodeState, Reachability};
use chrono::{DateTime, Utc};
use serde::Serialize;
use testbed::{Testbed, balancer, layout, service};

use crate::demo::Progress;
use crate::load::{Load, Sample};
use crate::timeline::Span;
use testbed::autoscaling::{addr as emulator, state as emulator_state};

/// The test bed's groups, in the order they are updated: managers first, as CloudFormation
/// would find them in the template.
pub const GROUPS: [&str; 2] = ["testbed-managers", "testbed-workers"];
/// The web service.
pub const SERVICE: &str = "web";
/// Where the processor's log goes (JSON lines).
pub const PROCESSOR_LOG: &str = "target/bench/rolling-upgrade-processor.log";

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Drain through the lifecycle processor (hooks on both groups), or terminate as a stack
    /// without hooks does.
    pub with_processor: bool,
    /// Replace at most this many nodes per group (default: all).
    pub per_group: Option<usize>,
    /// Requests a second.
    pub rate: u32,
    /// Replicas of the web service.
    pub replicas: u64,
    /// Ports of more web services (as many replicas), published as users publish them and
    /// reached through the network load balancer the processor's listener sync keeps (with
    /// the processor only), each under the same load.
    pub published: Vec<u16>,
    /// Two one-replica services too (their task healthy 5 s after it starts), one surged
    /// before each drain and one opted out, each under 50 requests a second through the
    /// routing mesh as the test bed stands it in ([`crate::load::Mesh`]).
    pub single_replica: bool,
}

/// The one-replica services, their host-mode ports, and whether each is surged.
const SINGLE_REPLICA: [(&str, u16, bool); 2] = [
    ("single-replica", 8601, true),
    ("single-replica-stop-first", 8602, false),
];
/// The rate of each one-replica service's load.
const SINGLE_RATE: u32 = 50;

/// What one published service's clients saw.
#[derive(Debug, Clone, Serialize)]
pub struct PublishedLoad {
    /// The port.
    pub port: u16,
    /// Requests sent through the network load balancer.
    pub requests_total: usize,
    /// Requests failed or timed out.
    pub requests_failed: usize,
    /// The first failures: seconds from the start, and what.
    pub failures: Vec<(f64, String)>,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether the processor drained the nodes.
    pub with_processor: bool,
    /// Old nodes replaced (terminated after their replacement joined).
    pub nodes_replaced: usize,
    /// Nodes the run set out to replace.
    pub nodes_to_replace: usize,
    /// How each group's rolling update ended (`done`, or `failed: ...`).
    pub outcomes: Vec<String>,
    /// Requests sent.
    pub requests_total: usize,
    /// Requests failed or timed out.
    pub requests_failed: usize,
    /// The first failures: seconds from the start, and what.
    pub failures: Vec<(f64, String)>,
    /// The fewest replicas of the service running at any sample (every 250 ms).
    pub min_running_replicas: usize,
    /// Whether a majority of the managers was reachable at every sample.
    pub quorum_kept: bool,
    /// Samples in which no manager could say (no leader).
    pub samples_without_leader: usize,
    /// Nodes left in `docker node ls` at the end that are not Ready (Down, Unknown,
    /// Disconnected; `None`: no manager answers).
    pub down_nodes_left: Option<usize>,
    /// Ready managers and workers at the end.
    pub managers_ready: Option<usize>,
    /// Ready workers at the end.
    pub workers_ready: Option<usize>,
    /// From the first request to the last replacement.
    pub total_seconds: f64,
    /// Each replacement: new node asked for → old node terminated.
    pub seconds_per_node: Vec<f64>,
    /// The processor's overhead per drain: from the moment nothing was left to wait for
    /// (the notification, or the last replacement task running) to `CompleteLifecycleAction`.
    pub overhead_ms: Vec<i64>,
    /// Its median.
    pub overhead_ms_p50: Option<i64>,
    /// Its maximum.
    pub overhead_ms_max: Option<i64>,
    /// The replacements on the timeline.
    pub spans: Vec<Span>,
    /// What went wrong, and when (seconds from the start): quorum lost, an update failed.
    pub events: Vec<(f64, String)>,
    /// The services published through the network load balancer, each its load.
    pub published: Vec<PublishedLoad>,
    /// The one-replica service surged before each drain (with the processor), its load.
    pub single_replica: Option<PublishedLoad>,
    /// Its twin opted out of the surge (stop-first, as Swarm drains), its load.
    pub single_replica_without_surge: Option<PublishedLoad>,
    /// Every request (for the timeline; not written to the JSON).
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

crate::timeline_of!(Report);

/// One observation of the swarm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watch {
    /// When.
    pub(crate) at: DateTime<Utc>,
    /// Replicas of the service running (`None`: no manager answered).
    pub(crate) running: Option<usize>,
    /// Whether a majority of the managers was reachable.
    pub(crate) quorum: bool,
    /// Raft members that were unreachable (dead members), when a manager answered.
    pub(crate) unreachable: usize,
}

/// What the watcher saw: its observations, and when each task of the service was first seen
/// running (its start time: a task later shut down keeps no trace of it).
#[derive(Debug, Default)]
pub(crate) struct Watched {
    /// Every observation.
    pub(crate) watches: Vec<Watch>,
    /// Each task's start.
    pub(crate) task_starts: HashMap<String, DateTime<Utc>>,
}

/// Runs the rolling upgrade of both groups under load; `progress` hears each change.
pub async fn run(options: &Options, progress: &mut dyn FnMut(&Progress)) -> Result<Report> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    if !balancer::answers() {
        bail!("the test bed's load balancer does not answer: `testbed up` starts it");
    }
    ensure_service(&manager, options.replicas).await?;
    let config = crate::sdk_config().await?;
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let sync = if options.published.is_empty() || !options.with_processor {
        Vec::new()
    } else {
        crate::listeners::Balancer::new().await?.settings("rolling")
    };
    let sync: Vec<(&str, &str)> = sync.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut processor = if options.with_processor {
        Some(start_processor(&config, &autoscaling, PROCESSOR_LOG, &sync).await?)
    } else {
        remove_hooks(&autoscaling).await;
        None
    };
    for &port in &options.published {
        let name = format!("{SERVICE}-{port}");
        if manager.inspect_service(&name, None).await.is_err() {
            service::deploy_web(&manager, &name, options.replicas, port).await?;
        }
        service::wait_running(
            &manager,
            &name,
            options.replicas as usize,
            Duration::from_secs(60),
        )
        .await?;
        crate::listeners::wait_answers(port, Duration::from_secs(60)).await?;
    }

    let mut singles = Vec::new();
    if options.single_replica {
        for (name, port, surged) in SINGLE_REPLICA {
            if manager.inspect_service(name, None).await.is_err() {
                let opt_out: &[(&str, &str)] = if surged {
                    &[]
                } else {
                    &[(swarm_aws::drain::surge::OPT_OUT_LABEL, "false")]
                };
                crate::workload::deploy_slow_web(&manager, name, None, port, opt_out).await?;
            }
        }
        for (name, port, surged) in SINGLE_REPLICA {
            service::wait_running(&manager, name, 1, Duration::from_secs(60)).await?;
            let mesh = crate::load::Mesh::follow(manager.clone(), name.to_owned(), port).await;
            singles.push((port, surged, mesh));
        }
    }

    let started_at = Utc::now();
    let load = Load::start((layout::gateway(), balancer::PORT).into(), options.rate);
    let single_loads: Vec<(u16, bool, Load)> = singles
        .into_iter()
        .map(|(port, surged, mesh)| {
            let load = Load::start_to(crate::load::Target::Mesh(mesh), SINGLE_RATE);
            (port, surged, load)
        })
        .collect();
    let published_loads: Vec<(u16, Load)> = options
        .published
        .iter()
        .map(|&port| {
            (
                port,
                Load::start(crate::listeners::address(port), options.rate),
            )
        })
        .collect();
    let watched: Arc<Mutex<Watched>> = Arc::default();
    let watching = tokio::spawn(watch(Arc::clone(&watched)));

    let mut outcomes = Vec::new();
    let mut events = Vec::new();
    let mut total = 0;
    let mut done_before = 0;
    for group in GROUPS {
        let request = serde_json::json!({ "group": group, "max_replacements": options.per_group });
        let (status, body) = testbed::http::post_json(
            emulator(),
            "/emulator/rolling-update",
            &request.to_string(),
            Duration::from_secs(5),
        )?;
        if status != 200 {
            bail!("the emulator refused the rolling update of {group}: {body}");
        }
        let started: serde_json::Value = serde_json::from_str(&body)?;
        total += started["old"].as_array().map_or(0, Vec::len);
        let deadline = Instant::now() + Duration::from_secs(900);
        let outcome = loop {
            let state = emulator_state()?;
            let rolling = &state["rolling"][group];
            let names = node_names(&state);
            let replaced = rolling["replaced"].as_u64().unwrap_or(0) as usize;
            let phase = rolling["phase"].as_str().unwrap_or_default();
            let current = match (
                rolling["current_old"].as_str(),
                rolling["current_new"].as_str(),
            ) {
                (Some(old), Some(new)) => {
                    format!("{} → {}: ", name(&names, old), name(&names, new))
                }
                (Some(old), None) => format!("{}: ", name(&names, old)),
                _ => String::new(),
            };
            let samples = load.samples();
            progress(&Progress {
                done: done_before + replaced,
                total,
                phase: format!("{group}: {current}{}", with_names(phase, &names)),
                requests: (
                    samples.len(),
                    samples.iter().filter(|s| s.error.is_some()).count(),
                ),
            });
            if !rolling["ended"].is_null() {
                done_before += replaced;
                break phase.to_owned();
            }
            if Instant::now() > deadline {
                break "failed: still running after 15 minutes".to_owned();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let failed = outcome.starts_with("failed");
        let names = node_names(&emulator_state()?);
        let short = group.trim_start_matches("testbed-");
        outcomes.push(format!("{short}: {}", with_names(&outcome, &names)));
        if failed {
            events.push((
                seconds_since(started_at, Utc::now()),
                format!("{short} update {}", with_names(&outcome, &names)),
            ));
        }
        // CloudFormation stops at a failed group (and would roll back).
        if failed {
            break;
        }
    }
    let finished_at = Utc::now();
    // A little more load after the last replacement, for the tail of the timeline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = load.stop().await;
    let (mut single_replica, mut single_replica_without_surge) = (None, None);
    let mut single_events = Vec::new();
    for (port, surged, load) in single_loads {
        let samples = load.stop().await;
        let what = if surged {
            "one replica, surged"
        } else {
            "one replica, no surge"
        };
        single_events.extend(
            outages(&samples)
                .into_iter()
                .map(|(at, seconds)| (at, format!("{what}: down {seconds:.1} s"))),
        );
        let counted = Some(PublishedLoad {
            port,
            requests_total: samples.len(),
            requests_failed: samples.iter().filter(|s| s.error.is_some()).count(),
            failures: first_failures(&samples),
        });
        if surged {
            single_replica = counted;
        } else {
            single_replica_without_surge = counted;
        }
    }
    let mut published = Vec::new();
    for (port, load) in published_loads {
        let samples = load.stop().await;
        published.push(PublishedLoad {
            port,
            requests_total: samples.len(),
            requests_failed: samples.iter().filter(|s| s.error.is_some()).count(),
            failures: first_failures(&samples),
        });
    }
    watching.abort();
    let (watches, task_starts) = {
        let watched = watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            watched.watches.clone(),
            watched.task_starts.values().copied().collect::<Vec<_>>(),
        )
    };
    drop(processor.take());

    let state = emulator_state()?;
    let names = node_names(&state);
    let mut spans = Vec::new();
    let mut seconds_per_node = Vec::new();
    let mut replaced_ids = Vec::new();
    for group in GROUPS {
        for step in state["rolling"][group]["steps"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let at = |key: &str| {
                step[key]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| {
                        (t.with_timezone(&Utc) - started_at).num_milliseconds() as f64 / 1000.0
                    })
            };
            let (Some(start), Some(end)) = (at("started"), at("ended")) else {
                continue;
            };
            let old = step["old"].as_str().unwrap_or_default();
            let new = step["new"].as_str().unwrap_or_default();
            spans.push(Span {
                label: format!("{} → {}", name(&names, old), name(&names, new)),
                start,
                end,
            });
            seconds_per_node.push(end - start);
            replaced_ids.push(old.to_owned());
        }
    }
    if let Some(lost) = watches.iter().find(|w| !w.quorum) {
        events.insert(
            0,
            (
                seconds_since(started_at, lost.at),
                "managers' quorum lost".to_owned(),
            ),
        );
    }
    let overhead_ms = if options.with_processor {
        overheads(&state, &replaced_ids, &task_starts)?
    } else {
        Vec::new()
    };
    let (down_nodes_left, managers_ready, workers_ready) = final_swarm().await;
    let failures = first_failures(&samples);
    let mut sorted = overhead_ms.clone();
    sorted.sort_unstable();
    Ok(Report {
        with_processor: options.with_processor,
        nodes_replaced: spans.len(),
        nodes_to_replace: total,
        outcomes,
        requests_total: samples.len(),
        requests_failed: samples.iter().filter(|s| s.error.is_some()).count(),
        failures,
        min_running_replicas: watches.iter().filter_map(|w| w.running).min().unwrap_or(0),
        quorum_kept: watches.iter().all(|w| w.quorum),
        samples_without_leader: watches.iter().filter(|w| w.running.is_none()).count(),
        down_nodes_left,
        managers_ready,
        workers_ready,
        total_seconds: (finished_at - started_at).num_milliseconds() as f64 / 1000.0,
        seconds_per_node,
        overhead_ms_p50: sorted.get(sorted.len().saturating_sub(1) / 2).copied(),
        overhead_ms_max: sorted.last().copied(),
        overhead_ms,
        spans,
        events: events.into_iter().chain(single_events).collect(),
        published,
        single_replica,
        single_replica_without_surge,
        samples,
    })
}

/// Where requests failed in a row (a pause of more than half a second between failures
/// starts another): when each outage began, seconds from the start, and how long it lasted.
fn outages(samples: &[Sample]) -> Vec<(f64, f64)> {
    let mut outages: Vec<(f64, f64)> = Vec::new();
    for failed in samples.iter().filter(|s| s.error.is_some()) {
        match outages.last_mut() {
            Some((start, length)) if failed.at - (*start + *length) <= 0.5 => {
                *length = failed.at - *start;
            }
            _ => outages.push((failed.at, 0.0)),
        }
    }
    outages
}

/// The first 20 failed requests: seconds from the start, and what.
fn first_failures(samples: &[Sample]) -> Vec<(f64, String)> {
    samples
        .iter()
        .filter_map(|s| s.error.clone().map(|e| ((s.at * 10.0).round() / 10.0, e)))
        .take(20)
        .collect()
}

/// Seconds from `start` to `at`.
pub(crate) fn seconds_since(start: DateTime<Utc>, at: DateTime<Utc>) -> f64 {
    (at - start).num_milliseconds() as f64 / 1000.0
}

/// The web service with `replicas` replicas, running and in the load balancer.
pub(crate) async fn ensure_service(manager: &bollard::Docker, replicas: u64) -> Result<()> {
    if manager.inspect_service(SERVICE, None).await.is_err() {
        service::deploy_web(manager, SERVICE, replicas, balancer::SERVICE_PORT).await?;
    }
    service::wait_running(manager, SERVICE, replicas as usize, Duration::from_secs(60)).await?;
    let started = Instant::now();
    loop {
        let up = balancer::servers()?
            .iter()
            .filter(|s| s.status == "UP")
            .count();
        if up >= replicas as usize {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            // What to look at: each server's state and check, and where the replicas run.
            let servers: Vec<String> = balancer::servers()?
                .iter()
                .map(|s| format!("{} {} {}", s.name, s.status, s.check))
                .collect();
            let running = service::running_tasks(manager, SERVICE).await?;
            let mut on = Vec::new();
            for node in running.iter().filter_map(|t| t.node_id.as_deref()) {
                let instance = manager.inspect_node(node).await.ok().and_then(|n| {
                    testbed::docker::engine_label(&n, testbed::layout::INSTANCE_ID_LABEL)
                        .map(str::to_owned)
                });
                on.push(instance.unwrap_or_else(|| node.to_owned()));
            }
            bail!(
                "only {up} of {replicas} replicas are in the load balancer after 30 s; servers: {servers:?}; replicas on: {on:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The stack's hooks on both groups, to a queue, and `lifecycle serve` on it: the managers
/// found in the cluster record, reached over mutual TLS, as the stack's Lambda function does.
pub(crate) async fn start_processor(
    config: &aws_config::SdkConfig,
    autoscaling: &aws_sdk_autoscaling::Client,
    log_path: &str,
    extra: &[(&str, &str)],
) -> Result<Processor> {
    let sqs = aws_sdk_sqs::Client::new(config);
    // A queue of each run's own (named after the scenario's log and this process): a
    // processor killed mid long-poll leaves its receive open in SQS, which takes the next
    // message and hides it for the visibility timeout; a run sharing the queue with the one
    // before would wait a minute for a hook.
    let queue = format!(
        "{}-{}",
        std::path::Path::new(log_path)
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or("scenario"),
        std::process::id()
    );
    let (queue_url, queue_arn) = crate::fixture::create_queue(&sqs, &queue).await?;
    // The hooks' heartbeat timeouts, in API seconds. The stack's (300 s, 900 s) would last 5
    // and 15 s here, as the emulator's clock runs 60 times faster, but Docker's does not: one
    // swarm leader election (up to 20 s, when a demoted leader hands over) would outlast a hook
    // that in AWS outlasts it fifteenfold, and the hook would end with the node not drained.
    // An hour (a minute here) keeps the production order: hook timeout well above election.
    for group in GROUPS {
        for (hook, transition, timeout, default) in [
            (
                "drain",
                "autoscaling:EC2_INSTANCE_TERMINATING",
                3600,
                "CONTINUE",
            ),
            (
                "admit",
                "autoscaling:EC2_INSTANCE_LAUNCHING",
                3600,
                "ABANDON",
            ),
        ] {
            autoscaling
                .put_lifecycle_hook()
                .auto_scaling_group_name(group)
                .lifecycle_hook_name(hook)
                .lifecycle_transition(transition)
                .heartbeat_timeout(timeout)
                .default_result(default)
                .notification_target_arn(&queue_arn)
                .role_arn("arn:aws:iam::123456789012:role/testbed-hooks")
                .send()
                .await
                .with_context(|| format!("cannot put hook {hook} on {group}"))?;
        }
    }
    std::fs::create_dir_all("target/bench")?;
    // A run killed half way (Ctrl-C) leaves its processor running, on the same queue: it
    // would take this run's messages and drive them against a swarm that is gone.
    let pid_file = format!("{log_path}.pid");
    if let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("lifecycle"))
    {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let log = std::fs::File::create(log_path)?;
    let binary = crate::binary("lifecycle")?;
    let child = Command::new(&binary)
        .arg("serve")
        .env("SWARM_GROUPS", GROUPS.join(","))
        .env("QUEUE_URL", &queue_url)
        .env("CLUSTER_TABLE", layout::CLUSTER_TABLE)
        .env("DOCKER_CERT_PATH", testbed::tls::client_dir())
        .env_remove("DOCKER_HOSTS")
        // The hooks' heartbeat timeout is an hour at the emulator's time scale (a minute).
        .env("HEARTBEAT_INTERVAL_SECONDS", "1")
        .env("LOG_FORMAT", "json")
        // Each call with its time too (`call done`): what a drain's time is made of.
        .env("RUST_LOG", "info,swarm_aws::calls=debug")
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    std::fs::write(&pid_file, child.id().to_string())?;
    Ok(Processor(child))
}

/// No hooks on the test bed's groups: nodes go as they do in a stack without the processor.
/// A hook already gone is fine.
pub(crate) async fn remove_hooks(autoscaling: &aws_sdk_autoscaling::Client) {
    for group in GROUPS {
        for hook in ["drain", "admit"] {
            let _ = autoscaling
                .delete_lifecycle_hook()
                .auto_scaling_group_name(group)
                .lifecycle_hook_name(hook)
                .send()
                .await;
        }
    }
}

/// The running processor, stopped when dropped (also when the run fails half way).
pub(crate) struct Processor(Child);

impl Drop for Processor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Samples the swarm every 250 ms: running replicas, and the managers' reachability.
pub(crate) async fn watch(into: Arc<Mutex<Watched>>) {
    loop {
        let (watch, tasks) = observe().await;
        record(&into, watch, tasks);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn record(into: &Mutex<Watched>, watch: Watch, tasks: Vec<(String, DateTime<Utc>)>) {
    let mut watched = into
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    watched.watches.push(watch);
    for (id, started) in tasks {
        watched.task_starts.entry(id).or_insert(started);
    }
}

/// One observation, and the running tasks of the service with their start times.
async fn observe() -> (Watch, Vec<(String, DateTime<Utc>)>) {
    let lost = Watch {
        at: Utc::now(),
        running: None,
        quorum: false,
        unreachable: 0,
    };
    let Ok(bed) = Testbed::load() else {
        return (lost, Vec::new());
    };
    for node in bed.managers() {
        let Ok(docker) = testbed::docker::connect(&node.docker_host()).await else {
            continue;
        };
        // A manager answers only with a leader: an error here is a lost or cut quorum
        // (or a node that is no longer a manager: the next one is asked).
        let Ok(Ok(nodes)) =
            tokio::time::timeout(Duration::from_secs(2), docker.list_nodes(None)).await
        else {
            continue;
        };
        let managers: Vec<_> = nodes
            .iter()
            .filter_map(|n| n.manager_status.as_ref())
            .collect();
        // A manager that just joined shows `unknown` until its first heartbeat: it is a live
        // Raft member. Only `unreachable` ones count against the majority.
        let reachable = managers
            .iter()
            .filter(|m| m.reachability != Some(Reachability::UNREACHABLE))
            .count();
        let tasks = service::running_tasks(&docker, SERVICE).await.ok();
        let starts = tasks
            .iter()
            .flatten()
            .filter_map(|t| {
                let at = t.status.as_ref()?.timestamp.as_deref()?;
                let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
                Some((t.id.clone()?, at))
            })
            .collect();
        let watch = Watch {
            at: Utc::now(),
            running: tasks.map(|t| t.len()),
            quorum: reachable * 2 > managers.len(),
            unreachable: managers.len() - reachable,
        };
        return (watch, starts);
    }
    (lost, Vec::new())
}

/// Where the watcher saw the quorum lost: each sample in which a manager answered with a
/// minority reachable, and the longest stretch with no answer at all (no leader) when it
/// lasted `election` or more (an election after a lost leader takes seconds; a lost quorum
/// never ends). Returns those moments (seconds from `started_at`) and that longest stretch in
/// seconds.
pub(crate) fn quorum_losses(
    watches: &[Watch],
    started_at: DateTime<Utc>,
    election: Duration,
) -> (Vec<(f64, String)>, f64) {
    let mut events = Vec::new();
    let (mut longest, mut longest_from, mut since) = (0.0_f64, started_at, None);
    for w in watches {
        if w.running.is_some() && !w.quorum {
            events.push((
                seconds_since(started_at, w.at),
                "managers' quorum lost (a minority reachable)".to_owned(),
            ));
        }
        match (w.running, since) {
            (None, None) => since = Some(w.at),
            (None, Some(first)) if seconds_since(first, w.at) > longest => {
                longest = seconds_since(first, w.at);
                longest_from = first;
            }
            (None, Some(_)) => {}
            (Some(_), _) => since = None,
        }
    }
    events.dedup_by(|a, b| a.1 == b.1);
    if longest >= election.as_secs_f64() {
        events.push((
            seconds_since(started_at, longest_from),
            format!("no leader for {longest:.0} s: the quorum is lost"),
        ));
    }
    (events, longest)
}

/// Down nodes, Ready managers and Ready workers at the end, once the swarm has settled
/// (Swarm marks a node that vanished Down after its heartbeat period).
pub(crate) async fn final_swarm() -> (Option<usize>, Option<usize>, Option<usize>) {
    tokio::time::sleep(Duration::from_secs(12)).await;
    // The first manager that answers with the node list (none: no leader).
    let answer = async {
        Testbed::load()?
            .manager()
            .await?
            .list_nodes(None)
            .await
            .map_err(anyhow::Error::from)
    };
    let Ok(nodes) = answer.await else {
        return (None, None, None);
    };
    let state = |n: &bollard::models::Node| n.status.as_ref().and_then(|s| s.state);
    let down = nodes
        .iter()
        .filter(|n| state(n) != Some(NodeState::READY))
        .count();
    let ready = |manager: bool| {
        nodes
            .iter()
            .filter(|n| state(n) == Some(NodeState::READY))
            .filter(|n| n.manager_status.is_some() == manager)
            .count()
    };
    (Some(down), Some(ready(true)), Some(ready(false)))
}

/// Instance id → test bed node name (`m4`), from the emulator's state.
pub(crate) fn node_names(state: &serde_json::Value) -> HashMap<String, String> {
    state["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| Some((i["id"].as_str()?.to_owned(), i["node"].as_str()?.to_owned())))
        .collect()
}

/// The node name of `id`, or the id itself.
pub(crate) fn name<'a>(names: &'a HashMap<String, String>, id: &'a str) -> &'a str {
    names.get(id).map_or(id, String::as_str)
}

/// `phase` with each instance id it names replaced by its node's name.
fn with_names(phase: &str, names: &HashMap<String, String>) -> String {
    let mut text = phase.to_owned();
    for (id, node) in names {
        text = text.replace(id, node);
    }
    text
}

/// The processor's overhead on each drained instance, from the emulator's history and the
/// service's task start times.
fn overheads(
    state: &serde_json::Value,
    instances: &[String],
    starts: &[DateTime<Utc>],
) -> Result<Vec<i64>> {
    let history = state["history"].as_array().context("no history")?;
    let mut overheads = Vec::new();
    for id in instances {
        let at = |what: &str| {
            history
                .iter()
                .filter(|e| e["instance_id"] == id.as_str())
                .find(|e| e["what"].as_str().is_some_and(|w| w.contains(what)))
                .and_then(|e| DateTime::parse_from_rfc3339(e["at"].as_str()?).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let (Some(notified), Some(completed)) = (
            at("notification of hook drain sent"),
            at("completed with CONTINUE"),
        ) else {
            continue;
        };
        // Nothing left to wait for: the last task of the service that started between the
        // notification and the completion (a replacement), or the notification itself.
        let ready = starts
            .iter()
            .copied()
            .filter(|t| *t > notified && *t <= completed)
            .max()
            .unwrap_or(notified);
        overheads.push((completed - ready).num_milliseconds());
    }
    Ok(overheads)
}
