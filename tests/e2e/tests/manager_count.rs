//! The manager count changed live: `ManagerSize` 3 → 5 → 3 by the stack update's calls, under
//! load, the processor admitting the two new managers and demoting, draining and removing two
//! of the five; the quorum kept at every sample, Raft members equal to the managers in service
//! after each change, no request failed, no node left Down.
//!
//! Ignored in the plain run: it adds and removes managers other tests know by name, so
//! `scripts/test.sh` runs it after all of them (`--ignored`).

use anyhow::{Result, ensure};
use e2e::manager_count::{Options, run};
use std::time::Duration;

/// The longest a Raft member may show unreachable without being a dead one: a demoted leader
/// hands over in a few seconds.
const HANDOVER: Duration = Duration::from_secs(10);

#[tokio::test]
#[ignore = "changes the managers other tests name: scripts/test.sh runs it after them"]
async fn manager_size_3_to_5_to_3_under_load_keeps_quorum_and_raft_equal_to_the_managers()
-> Result<()> {
    let options = Options {
        with_processor: true,
        sizes: vec![5, 3],
        rate: 20,
        replicas: 3,
    };
    let report = run(&options, &mut |_| {}).await?;
    for change in &report.changes {
        ensure!(
            change.settled_seconds.is_some()
                && change.raft_members == Some(change.to as usize)
                && change.raft_reachable == Some(change.to as usize)
                && change.managers_in_service == change.to as usize,
            "{change:?}"
        );
    }
    ensure!(report.ending.quorum_kept, "{:?}", report.events);
    // Each manager the group terminated was demoted and removed through its hook before its
    // machine went: Raft never held a dead member (the sweep would remove one only a minute
    // later). A demoted leader handing over shows unreachable for moments; a dead member for
    // good.
    ensure!(
        report.ending.longest_unreachable_seconds < HANDOVER.as_secs_f64(),
        "{} Raft members were unreachable at once, one for {:.1} s",
        report.ending.max_unreachable_members,
        report.ending.longest_unreachable_seconds
    );
    ensure!(
        report.ending.raft_members_end == Some(report.ending.managers_in_service_end)
            && report.ending.managers_in_service_end == 3,
        "Raft {:?}, in service {}",
        report.ending.raft_members_end,
        report.ending.managers_in_service_end
    );
    ensure!(
        report.ending.down_nodes_left == Some(0),
        "{:?}",
        report.ending.down_nodes_left
    );
    ensure!(
        report.ending.requests_total > 50,
        "too little load: {}",
        report.ending.requests_total
    );
    ensure!(
        report.ending.requests_failed == 0,
        "{} of {} failed",
        report.ending.requests_failed,
        report.ending.requests_total
    );
    Ok(())
}
