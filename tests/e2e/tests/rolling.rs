//! The rolling upgrade under load, the short version the CI runs (the demo replaces all five
//! nodes: `scripts/demo.sh`): one manager and one worker replaced through the emulator's
//! rolling update, the processor draining each, a steady load through the load balancer (and
//! through the network load balancer to two services published as users publish them).
//!
//! Ignored in the plain run: it replaces nodes that other tests know by name, so
//! `scripts/test.sh` runs it after all of them (`--ignored`).

use anyhow::{Result, ensure};
use e2e::rolling::{Options, run};

/// The emulator's history of one instance, its events in order.
fn history(state: &serde_json::Value, id: &str) -> Vec<String> {
    state["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["instance_id"] == id)
        .filter_map(|e| e["what"].as_str().map(str::to_owned))
        .collect()
}

/// Whether both events are in `events`, `first` before `then`.
fn before(events: &[String], first: &str, then: &str) -> bool {
    let at = |what: &str| events.iter().position(|e| e.contains(what));
    matches!((at(first), at(then)), (Some(a), Some(b)) if a < b)
}

#[tokio::test]
#[ignore = "replaces nodes other tests name: scripts/test.sh runs it after them"]
async fn a_manager_and_a_worker_replaced_under_load_fail_no_request_keep_quorum_and_leave_no_down_node()
-> Result<()> {
    let options = Options {
        with_processor: true,
        per_group: Some(1),
        rate: 20,
        replicas: 3,
        // Two services published as users publish them, through the network load balancer
        // the processor's listener sync keeps.
        published: vec![8301, 8302],
        single_replica: false,
    };
    let report = run(&options, &mut |_| {}).await?;
    ensure!(
        report.nodes_replaced == 2 && report.nodes_to_replace == 2,
        "{:?}",
        report.outcomes
    );
    ensure!(
        report.requests_total > 50,
        "too little load: {}",
        report.requests_total
    );
    ensure!(report.requests_failed == 0, "failed: {:?}", report.failures);
    ensure!(report.published.len() == 2, "{:?}", report.published);
    for published in &report.published {
        ensure!(
            published.requests_total > 50 && published.requests_failed == 0,
            "port {}: {} of {} failed: {:?}",
            published.port,
            published.requests_failed,
            published.requests_total,
            published.failures
        );
    }
    ensure!(report.quorum_kept, "{:?}", report.events);
    ensure!(
        report.min_running_replicas >= 2,
        "{}",
        report.min_running_replicas
    );
    ensure!(
        report.down_nodes_left == Some(0),
        "{:?}",
        report.down_nodes_left
    );
    ensure!(
        report.managers_ready == Some(3) && report.workers_ready == Some(2),
        "{:?} managers, {:?} workers",
        report.managers_ready,
        report.workers_ready
    );
    ensure!(report.overhead_ms.len() == 2, "{:?}", report.overhead_ms);

    // The load balancer's order, as Auto Scaling keeps it with a target group: an old node
    // leaves it before its termination hook runs; a new one enters it at the end of its
    // launch hook, before it is in service.
    let state = testbed::autoscaling::state()?;
    for group in e2e::rolling::GROUPS {
        for step in state["rolling"][group]["steps"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let old = history(&state, step["old"].as_str().unwrap_or_default());
            ensure!(
                before(
                    &old,
                    "deregistered from the load balancer",
                    "Terminating:Wait"
                ),
                "old node: {old:?}"
            );
            let new = history(&state, step["new"].as_str().unwrap_or_default());
            ensure!(
                before(&new, "registered with the load balancer", "InService"),
                "new node: {new:?}"
            );
        }
    }
    Ok(())
}
