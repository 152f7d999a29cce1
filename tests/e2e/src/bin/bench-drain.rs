//! `bench-drain`: measures the processor, drain by drain, against the running test bed (see
//! `scripts/bench-drain.sh`). Prints a table and writes `target/bench/drain.json`.
//!
//! Per drain, from three clocks of the same machine (the emulator's history, the processor's
//! JSON log, the swarm's task timestamps):
//! - notification → drain: the emulator sent the notification, the processor set `drain`;
//! - Swarm's reschedule: from `drain` to the last replacement task running elsewhere;
//! - overhead: from that moment to `CompleteLifecycleAction` (the processor's own cost).
//!
//! Also: the processor's cold start (process start to serving), its peak memory, and the
//! throughput of the parse and decide path (no I/O).

use anyhow::{Context, Result, ensure};
use bollard::Docker;
use bollard::models::TaskState;
use bollard::query_parameters::ListTasksOptions;
use chrono::{DateTime, Utc};
use e2e::fixture::{Fixture, JOIN, TERMINATING, history_events};
use e2e::processor::ProcessorProcess;
use e2e::workload;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use swarm_aws::drain::{
    ActionStatus, Availability, NodeFacts, NodeRole, NodeState, Observation, ServiceFacts,
    ServiceMode, SwarmView, decide,
};
use swarm_aws::event::{LifecycleMessage, Transition, parse_message};
use testbed::Testbed;

/// One drain's figures, in milliseconds.
#[derive(Debug, Clone)]
struct Drain {
    instance_id: String,
    notification_to_drain_ms: i64,
    swarm_reschedule_ms: i64,
    overhead_ms: i64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let drains: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()
        .context("usage: bench-drain [DRAINS]")?
        .unwrap_or(8);
    let (parse_ns, decide_ns) = parse_and_decide_throughput();
    println!(
        "parse a termination notification: {parse_ns:.0} ns; decide a step: {decide_ns:.0} ns"
    );

    let fixture = Fixture::new("bench", 3, Some(JOIN)).await?;
    let manager = Testbed::load()?.manager().await?;
    let service = format!("{}-web", fixture.name);
    let outcome = run(&fixture, &manager, &service, drains).await;
    let _ = manager.delete_service(&service).await;
    fixture.remove().await?;
    let (rows, cold_start_ms, peak_kib) = outcome?;

    println!(
        "\n{:<21} {:>22} {:>20} {:>12}",
        "instance", "notification→drain ms", "swarm reschedule ms", "overhead ms"
    );
    for row in &rows {
        println!(
            "{:<21} {:>22} {:>20} {:>12}",
            row.instance_id, row.notification_to_drain_ms, row.swarm_reschedule_ms, row.overhead_ms
        );
    }
    let summary = |pick: fn(&Drain) -> i64| {
        let mut values: Vec<i64> = rows.iter().map(pick).collect();
        values.sort_unstable();
        (values[values.len() / 2], values[values.len() - 1])
    };
    let (n2d_p50, n2d_max) = summary(|r| r.notification_to_drain_ms);
    let (swarm_p50, swarm_max) = summary(|r| r.swarm_reschedule_ms);
    let (over_p50, over_max) = summary(|r| r.overhead_ms);
    println!("\n{} drains", rows.len());
    println!("notification → drain:   p50 {n2d_p50} ms, max {n2d_max} ms");
    println!("swarm reschedule:       p50 {swarm_p50} ms, max {swarm_max} ms");
    println!(
        "processor overhead:     p50 {over_p50} ms, max {over_max} ms (last replacement running → CompleteLifecycleAction)"
    );
    println!("serve cold start:       {cold_start_ms} ms (process start → serving the queue)");
    println!(
        "serve peak memory:      {:.1} MiB (VmHWM)",
        peak_kib as f64 / 1024.0
    );
    let json = serde_json::json!({
        "drains": rows.iter().map(|r| serde_json::json!({
            "instance_id": r.instance_id,
            "notification_to_drain_ms": r.notification_to_drain_ms,
            "swarm_reschedule_ms": r.swarm_reschedule_ms,
            "overhead_ms": r.overhead_ms,
        })).collect::<Vec<_>>(),
        "notification_to_drain_ms_p50": n2d_p50,
        "swarm_reschedule_ms_p50": swarm_p50,
        "overhead_ms_p50": over_p50,
        "overhead_ms_max": over_max,
        "serve_cold_start_ms": cold_start_ms,
        "serve_peak_rss_kib": peak_kib,
        "parse_ns": parse_ns,
        "decide_ns": decide_ns,
    });
    std::fs::create_dir_all("target/bench")?;
    std::fs::write(
        "target/bench/drain.json",
        serde_json::to_string_pretty(&json)?,
    )?;
    println!("written to target/bench/drain.json");
    Ok(())
}

/// Drains `drains` nodes one after another; each terminated instance is replaced (the
/// desired capacity is kept), so there is always a free node for the replica to move to.
async fn run(
    fixture: &Fixture,
    manager: &Docker,
    service: &str,
    drains: usize,
) -> Result<(Vec<Drain>, i64, u64)> {
    let instances = fixture.wait_in_service(3).await?;
    workload::label_nodes(manager, &fixture.name, &instances).await?;
    workload::deploy(
        manager,
        service,
        &fixture.name,
        2,
        1,
        false,
        Duration::from_secs(10),
    )
    .await?;
    workload::wait_running(manager, service, 2).await?;
    fixture
        .put_hook("drain", TERMINATING, 3600, "ABANDON")
        .await?;
    let spawned = Utc::now();
    let processor = ProcessorProcess::start(
        fixture,
        &[("LOG_FORMAT", "json"), ("HEARTBEAT_INTERVAL_SECONDS", "30")],
    )?;
    let mut rows = Vec::new();
    for _ in 0..drains {
        let instances = fixture.wait_in_service(3).await?;
        workload::label_nodes(manager, &fixture.name, &instances).await?;
        let nodes = workload::wait_running(manager, service, 2).await?;
        let victim = workload::instance_running_a_task(manager, &instances, &nodes).await?;
        let before = Utc::now();
        fixture
            .asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(&victim)
            .should_decrement_desired_capacity(false)
            .send()
            .await?;
        fixture
            .wait_state(&victim, None, Duration::from_secs(60))
            .await?;
        rows.push(measure(manager, service, &victim, before, &processor.logged()).await?);
    }
    let log = processor.logged();
    let serving = log_events(&log, "serving the lifecycle queue")
        .into_iter()
        .next()
        .context("the processor never said it serves")?;
    let cold_start_ms = (serving.0 - spawned).num_milliseconds();
    let status = std::fs::read_to_string(format!("/proc/{}/status", processor.pid()))?;
    let peak_kib = e2e::kib_field(&status, "VmHWM").context("no VmHWM")?;
    Ok((rows, cold_start_ms, peak_kib))
}

/// The figures of one drain.
async fn measure(
    manager: &Docker,
    service: &str,
    instance_id: &str,
    since: DateTime<Utc>,
    log: &str,
) -> Result<Drain> {
    let history = history_events(instance_id).await?;
    let at = |what: &str| {
        history
            .iter()
            .find(|(_, w)| w.contains(what))
            .map(|(at, _)| *at)
            .with_context(|| format!("no `{what}` in the history of {instance_id}"))
    };
    let notified = at("notification of hook drain sent")?;
    let completed = at("completed with CONTINUE")?;
    let drained = log_events(log, "draining the node")
        .into_iter()
        .find(|(_, instance)| instance == instance_id)
        .map(|(at, _)| at)
        .context("no drain in the processor's log")?;
    // The replacement: the service's running task that started after the termination began.
    let filters = HashMap::from([("service".to_owned(), vec![service.to_owned()])]);
    let tasks = manager
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await?;
    let replaced = tasks
        .iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .filter_map(|t| t.status.as_ref()?.timestamp.as_deref())
        .filter_map(|ts| DateTime::parse_from_rfc3339(ts).ok())
        .map(|ts| ts.with_timezone(&Utc))
        .filter(|ts| *ts > since)
        .max()
        .context("no replacement task started")?;
    ensure!(
        completed >= replaced,
        "completed before the replacement ran"
    );
    Ok(Drain {
        instance_id: instance_id.to_owned(),
        notification_to_drain_ms: (drained - notified).num_milliseconds(),
        swarm_reschedule_ms: (replaced - drained).num_milliseconds(),
        overhead_ms: (completed - replaced).num_milliseconds(),
    })
}

/// The (time, instance id) of each JSON log line whose message is `message`.
fn log_events(log: &str, message: &str) -> Vec<(DateTime<Utc>, String)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["fields"]["message"] == message)
        .filter_map(|v| {
            let at = DateTime::parse_from_rfc3339(v["timestamp"].as_str()?)
                .ok()?
                .with_timezone(&Utc);
            let instance = v["span"]["instance_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            Some((at, instance))
        })
        .collect()
}

/// Nanoseconds per parse of a termination notification, and per decision.
fn parse_and_decide_throughput() -> (f64, f64) {
    let body = br#"{"Origin":"AutoScalingGroup","Destination":"EC2","Service":"AWS Auto Scaling","Time":"2026-11-24T10:15:27.123Z","AccountId":"123456789012","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","RequestId":"7d0b3c1e-5a4f-4f1b-9c36-2b1f5f0a9e11","LifecycleActionToken":"c613620e-07e2-4ed2-a9e2-ef8258911ade","EC2InstanceId":"i-0598c7d356eba48d7","LifecycleHookName":"swarm-worker-drain","AutoScalingGroupName":"docker-swarm-WorkerAsg-1ABCDEF2GHIJK"}"#;
    let rounds = 200_000;
    let started = Instant::now();
    for _ in 0..rounds {
        let parsed = parse_message(std::hint::black_box(body));
        assert!(matches!(parsed, Ok(LifecycleMessage::Action(_))));
    }
    let parse_ns = started.elapsed().as_nanos() as f64 / f64::from(rounds);
    let seen = Observation {
        swarm: SwarmView {
            node: Some(NodeFacts {
                id: "n".into(),
                role: NodeRole::Worker,
                availability: Availability::Drain,
                state: NodeState::Ready,
                reachable: false,
            }),
            undescribed_nodes: 0,
            managers: 3,
            reachable_managers: 3,
            tasks_on_node: vec![],
            services: vec![ServiceFacts {
                id: String::new(),
                name: "web".into(),
                mode: ServiceMode::Replicated { desired: 4 },
                running_elsewhere: 3,
                unplaceable: None,
                on_node: 0,
                surge: Default::default(),
            }],
        },
        transition: Transition::Terminating,
        action: ActionStatus::Waiting,
        elapsed: Duration::from_secs(5),
        deadline: Duration::from_secs(900),
        since_heartbeat: None,
        heartbeat_every: Duration::from_secs(60),
        surge: false,
    };
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(decide(std::hint::black_box(&seen)));
    }
    (
        parse_ns,
        started.elapsed().as_nanos() as f64 / f64::from(rounds),
    )
}
