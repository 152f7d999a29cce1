//! Managers go without the swarm ever losing its Raft quorum: each is demoted before it is
//! drained and removed, a demotion that would leave no reachable majority waits (heartbeating,
//! saying why) until a manager comes back, and two managers terminated at once are demoted one
//! at a time. A watcher samples the swarm all along.
//!
//! In a test binary of its own: it powers managers of the shared swarm off and on.

use anyhow::{Context, Result, bail, ensure};
use bollard::Docker;
use bollard::models::NodeSpecRoleEnum;
use e2e::fixture::{Fixture, JOIN_AS_MANAGER, TERMINATING, history_of};
use e2e::processor::ProcessorProcess;
use e2e::workload;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use testbed::{Testbed, docker};

/// Waits until the swarm has `count` managers of which `reachable` are reachable, looking
/// every 250 ms.
async fn wait_managers(manager: &Docker, count: usize, reachable: usize) -> Result<()> {
    wait_managers_every(manager, count, reachable, Duration::from_millis(250)).await
}

/// [`wait_managers`], looking every `poll`.
async fn wait_managers_every(
    manager: &Docker,
    count: usize,
    reachable: usize,
    poll: Duration,
) -> Result<()> {
    e2e::wait::until(Duration::from_secs(90), poll, async || {
        let now = workload::managers(manager).await?;
        Ok(if (now.0, now.1) == (count, reachable) {
            Ok(())
        } else {
            Err(format!(
                "managers (members, reachable, leader) are {now:?}, not ({count}, {reachable})"
            ))
        })
    })
    .await
}

/// Samples the swarm every 200 ms; a sample without a leader or without a reachable majority
/// is a lost quorum.
fn watch_quorum(manager: Docker, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut lost = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match workload::managers(&manager).await {
                Ok((members, reachable, leader)) if !leader || reachable < members / 2 + 1 => {
                    lost.push(format!(
                        "{members} managers, {reachable} reachable, leader: {leader}"
                    ));
                }
                Ok(_) => {}
                Err(error) => lost.push(format!("the swarm did not answer: {error}")),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        lost
    })
}

/// A manager of the test bed that is neither the Raft leader nor the one `manager` is.
async fn a_follower(bed: &Testbed, manager: &Docker) -> Result<testbed::Node> {
    let own = manager.info().await?.swarm.and_then(|s| s.node_id);
    for node in bed.managers() {
        let Some(member) = docker::node_by_instance_id(manager, &node.instance_id).await? else {
            continue;
        };
        let leader = member.manager_status.and_then(|m| m.leader) == Some(true);
        if !leader && member.id != own {
            return Ok(node.clone());
        }
    }
    bail!("the test bed has no manager that is a follower and not the one asked")
}

#[tokio::test]
async fn managers_are_demoted_one_at_a_time_and_the_swarm_never_loses_its_quorum() -> Result<()> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    let base = bed.managers().count();
    let fixture = Fixture::with_role("managers", 2, Some(JOIN_AS_MANAGER), "manager").await?;
    // Powered off below: a follower, as the test talks through `manager` and counts on a
    // leader throughout. (The test bed's leader is whichever manager won the bootstrap's
    // claim.)
    let follower = a_follower(&bed, &manager).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut down = Vec::new();
    let outcome = async {
        let instances = fixture.wait_in_service(2).await?;
        // Each found by its label (described), then counted: a node not yet described would
        // count as a manager before the swarm can say which instance it is.
        workload::wait_joined(&manager, &instances).await?;
        wait_managers(&manager, base + 2, base + 2).await?;
        fixture
            .put_hook("drain", TERMINATING, 3600, "ABANDON")
            .await?;
        let processor = ProcessorProcess::start(&fixture, &[])?;
        let watcher = watch_quorum(manager.clone(), Arc::clone(&stop));

        // Two of the five managers powered off: three reachable, still a majority. Demoting
        // the third fixture manager would leave 2 reachable of 4: the processor must wait.
        // (A power cut, not a network cut: a manager cut off keeps campaigning, and when it
        // comes back its inflated Raft term unseats the leader for a while, which would be
        // the test's doing, not the processor's.)
        let (a, b) = (instances[0].clone(), instances[1].clone());
        let node_a = Testbed::load()?
            .nodes
            .into_iter()
            .find(|n| n.instance_id == a)
            .context("no node for instance A")?;
        for node in [&follower, &node_a] {
            node.kill();
            down.push(node.clone());
        }
        wait_managers(&manager, base + 2, base).await?;
        fixture.terminate(&b).await?;
        tokio::time::sleep(Duration::from_secs(6)).await;
        let state = fixture.state_of(&b).await?;
        ensure!(
            state.as_deref() == Some("Terminating:Wait"),
            "B is {state:?}, not waiting: {:?}\nprocessor log:\n{}",
            history_of(&b).await?,
            processor.logged()
        );
        let role = docker::node_by_instance_id(&manager, &b)
            .await?
            .and_then(|n| n.spec)
            .and_then(|s| s.role);
        ensure!(
            role == Some(NodeSpecRoleEnum::MANAGER),
            "B was demoted without a majority left"
        );
        let log = processor.logged();
        ensure!(
            log.contains("below the Raft majority"),
            "the wait does not say why:\n{log}"
        );
        let heartbeats = history_of(&b)
            .await?
            .iter()
            .filter(|h| h.ends_with("heartbeat"))
            .count();
        ensure!(heartbeats >= 2, "{heartbeats} heartbeats while waiting");

        // Powered on again: the demotion goes ahead, then the drain and the removal.
        for node in down.drain(..) {
            node.start_daemon().await?;
        }
        fixture
            .wait_state(&b, None, Duration::from_secs(90))
            .await?;
        ensure!(
            docker::node_by_instance_id(&manager, &b).await?.is_none(),
            "B is still in the swarm"
        );
        wait_managers(&manager, base + 1, base + 1).await?;

        // Two managers terminated at once (a scale-in to zero): both go, one demotion at a time.
        // The scale-in comes the moment both are reachable Raft members: the later one has
        // then most likely not described itself yet (no labels for about 100 ms), and must
        // not be taken for an instance that never joined, which would leave it in Raft.
        fixture.set_desired(2).await?;
        let pair = fixture.wait_in_service(2).await?;
        wait_managers_every(&manager, base + 2, base + 2, Duration::from_millis(10)).await?;
        fixture.set_desired(0).await?;
        for id in &pair {
            fixture
                .wait_state(id, None, Duration::from_secs(90))
                .await?;
            let completed = history_of(id)
                .await?
                .iter()
                .filter(|h| h.ends_with("completed with CONTINUE"))
                .count();
            ensure!(completed == 1, "{id}: {:?}", history_of(id).await?);
        }
        wait_managers(&manager, base, base).await?;
        stop.store(true, Ordering::Relaxed);
        let lost = watcher.await?;
        ensure!(lost.is_empty(), "the quorum was lost: {lost:?}");
        Ok(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    for node in &down {
        let _ = node.start_daemon().await;
    }
    fixture.remove().await?;
    outcome
}
