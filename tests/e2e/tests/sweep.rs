//! The membership sweep end to end: `lifecycle serve` sweeping every second, real swarm nodes
//! lost in the ways no lifecycle hook announces, and the swarm's membership healed.

use anyhow::{Context, Result, ensure};
use bollard::Docker;
use e2e::fixture::{Fixture, JOIN, JOIN_AS_MANAGER, TERMINATING, history_of};
use e2e::processor::ProcessorProcess;
use e2e::workload;
use std::time::Duration;
use testbed::{Testbed, docker};

/// The processor's settings for these tests: a sweep every second.
const SWEEP_EVERY_SECOND: (&str, &str) = ("SWEEP_INTERVAL_SECONDS", "1");

/// Waits until the instance has no node in the swarm any more.
async fn wait_out_of_the_swarm(manager: &Docker, instance_id: &str) -> Result<()> {
    workload::wait_out_of_the_swarm(
        manager,
        instance_id,
        Duration::from_secs(90),
        Duration::from_millis(250),
    )
    .await
}

/// Whether the emulator has marked the instance unhealthy.
async fn marked_unhealthy(instance_id: &str) -> Result<bool> {
    Ok(history_of(instance_id)
        .await?
        .iter()
        .any(|h| h.contains("marked Unhealthy")))
}

/// The instance the group launched in place of `lost`, once it is a Ready node.
async fn replacement(fixture: &Fixture, manager: &Docker, lost: &str) -> Result<String> {
    let new = e2e::wait::until(
        Duration::from_secs(60),
        Duration::from_millis(250),
        async || {
            let in_service: Vec<String> = fixture
                .instances()
                .await?
                .into_iter()
                .filter(|i| i.0 != lost && i.1 == "InService")
                .map(|i| i.0)
                .collect();
            Ok(in_service
                .into_iter()
                .next()
                .ok_or_else(|| format!("no replacement of {lost} in service yet")))
        },
    )
    .await?;
    workload::wait_joined(manager, std::slice::from_ref(&new)).await?;
    Ok(new)
}

#[tokio::test]
async fn a_worker_terminated_outside_its_group_is_removed_by_two_sweepers_at_once() -> Result<()> {
    let fixture = Fixture::new("sweep-worker", 1, Some(JOIN)).await?;
    let outcome = async {
        let manager = Testbed::load()?.manager().await?;
        let instance = fixture.wait_in_service(1).await?.remove(0);
        workload::wait_joined(&manager, std::slice::from_ref(&instance)).await?;
        // Two processors sweep the same swarm: both see the lost node, either removes it.
        let mut first = ProcessorProcess::start(&fixture, &[SWEEP_EVERY_SECOND])?;
        let mut second = ProcessorProcess::start(&fixture, &[SWEEP_EVERY_SECOND])?;
        fixture.ec2_terminate(&instance).await?;
        wait_out_of_the_swarm(&manager, &instance).await?;
        // Removed by a sweep: one of these two, or the processor of a test beside this one
        // (all sweep the test bed's one swarm).
        let tag = format!("instance_id={instance}");
        let removals = e2e::processor::logged_anywhere(&["sweep: removing a lost node", &tag])?;
        ensure!(!removals.is_empty(), "no sweep removed it");
        let logs = format!("{}{}", first.logged(), second.logged());
        ensure!(!logs.contains("the sweep failed"), "a sweep failed: {logs}");
        ensure!(
            history_of(&instance)
                .await?
                .iter()
                .any(|h| h.contains("terminated through EC2")),
            "{:?}",
            history_of(&instance).await?
        );
        // The group keeps its capacity; the new node is left alone by the sweep.
        let new = replacement(&fixture, &manager, &instance).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        ensure!(
            docker::node_by_instance_id(&manager, &new).await?.is_some(),
            "the replacement {new} was removed"
        );
        first.stop()?;
        second.stop()?;
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn a_manager_terminated_outside_its_group_is_demoted_then_removed_and_raft_shrinks_back()
-> Result<()> {
    let fixture = Fixture::with_role("sweep-manager", 1, Some(JOIN_AS_MANAGER), "manager").await?;
    let outcome = async {
        let manager = Testbed::load()?.manager().await?;
        let instance = fixture.wait_in_service(1).await?.remove(0);
        workload::wait_joined(&manager, std::slice::from_ref(&instance)).await?;
        let (members, _, _) = workload::managers(&manager).await?;
        fixture
            .put_hook("drain", TERMINATING, 3600, "ABANDON")
            .await?;
        let mut processor = ProcessorProcess::start(&fixture, &[SWEEP_EVERY_SECOND])?;
        fixture.ec2_terminate(&instance).await?;
        wait_out_of_the_swarm(&manager, &instance).await?;
        // Demoted, then removed (Swarm refuses to remove a Raft member): by this processor's
        // sweeps, or those of a test beside this one.
        let tag = format!("instance_id={instance}");
        let demoted = e2e::processor::logged_anywhere(&["sweep: demoting a lost manager", &tag])?;
        ensure!(!demoted.is_empty(), "never demoted: {}", processor.logged());
        let removed = e2e::processor::logged_anywhere(&["sweep: removing a lost node", &tag])?;
        ensure!(!removed.is_empty(), "never removed: {}", processor.logged());
        ensure!(
            demoted[0] < removed[0],
            "removed before it was demoted: {demoted:?} {removed:?}"
        );
        // Its replacement joins as a manager: Raft is as large as before, every member alive.
        replacement(&fixture, &manager, &instance).await?;
        e2e::wait::until(
            Duration::from_secs(30),
            Duration::from_millis(250),
            async || {
                let (count, reachable, _) = workload::managers(&manager).await?;
                Ok(if (count, reachable) == (members, members) {
                    Ok(())
                } else {
                    Err(format!(
                        "{count} managers, {reachable} reachable; expected {members} and {members}"
                    ))
                })
            },
        )
        .await?;
        // Scaled in through the hook: the processor drains the replacement before it goes.
        fixture.set_desired(0).await?;
        e2e::wait::until(
            Duration::from_secs(90),
            Duration::from_millis(250),
            async || {
                Ok(if workload::managers(&manager).await?.0 == members - 1 {
                    Ok(())
                } else {
                    Err("the replacement is still a manager".to_owned())
                })
            },
        )
        .await?;
        processor.stop()?;
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn a_worker_whose_daemon_died_is_replaced_through_its_termination_hook() -> Result<()> {
    let fixture = Fixture::new("sweep-dead", 1, Some(JOIN)).await?;
    let outcome = async {
        let bed = Testbed::load()?;
        let manager = bed.manager().await?;
        let instance = fixture.wait_in_service(1).await?.remove(0);
        workload::wait_joined(&manager, std::slice::from_ref(&instance)).await?;
        fixture
            .put_hook("drain", TERMINATING, 3600, "ABANDON")
            .await?;
        let mut processor = ProcessorProcess::start(
            &fixture,
            &[SWEEP_EVERY_SECOND, ("SWEEP_DOWN_GRACE_SECONDS", "3")],
        )?;
        let node = Testbed::load()?
            .nodes
            .into_iter()
            .find(|n| n.instance_id == instance)
            .context("no test bed node for the instance")?;
        node.kill();
        // Down past the grace period, on an instance still in service: the group replaces
        // it, through its termination hook, and the drain removes the node.
        fixture
            .wait_state(&instance, None, Duration::from_secs(90))
            .await?;
        let history = history_of(&instance).await?;
        let marked = history
            .iter()
            .position(|h| h.contains("marked Unhealthy"))
            .context(format!("never marked unhealthy: {history:?}"))?;
        let completed = history
            .iter()
            .position(|h| h.ends_with("completed with CONTINUE"))
            .context(format!("its hook was not completed: {history:?}"))?;
        ensure!(marked < completed, "{history:?}");
        wait_out_of_the_swarm(&manager, &instance).await?;
        let tag = format!("instance_id={instance}");
        ensure!(
            !e2e::processor::logged_anywhere(&["sweep: marking the instance unhealthy", &tag])?
                .is_empty(),
            "{}",
            processor.logged()
        );
        replacement(&fixture, &manager, &instance).await?;
        processor.stop()?;
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn an_instance_in_service_that_never_became_a_node_is_replaced_after_the_join_grace()
-> Result<()> {
    // No user data: the instance starts, its daemon runs, and it never joins the swarm (a
    // launch hook that timed out with CONTINUE leaves the same).
    let fixture = Fixture::new("sweep-never-joined", 1, None).await?;
    let outcome = async {
        let instance = fixture.wait_in_service(1).await?.remove(0);
        let mut processor = ProcessorProcess::start(
            &fixture,
            &[SWEEP_EVERY_SECOND, ("SWEEP_JOIN_GRACE_SECONDS", "3")],
        )?;
        // Within the grace period: left alone.
        tokio::time::sleep(Duration::from_secs(1)).await;
        ensure!(
            !marked_unhealthy(&instance).await?,
            "marked within its grace period"
        );
        e2e::wait::until(
            Duration::from_secs(30),
            Duration::from_millis(250),
            async || {
                Ok(if marked_unhealthy(&instance).await? {
                    Ok(())
                } else {
                    Err(format!("{instance} is not marked unhealthy"))
                })
            },
        )
        .await?;
        fixture
            .wait_state(&instance, None, Duration::from_secs(30))
            .await?;
        processor.stop()?;
        Ok(())
    }
    .await;
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn a_down_node_of_another_group_is_never_touched_and_no_look_means_no_action() -> Result<()> {
    let ours = Fixture::new("sweep-never", 1, Some(JOIN)).await?;
    let theirs = Fixture::new("sweep-others", 1, Some(JOIN)).await;
    let outcome = async {
        let theirs = theirs.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let bed = Testbed::load()?;
        let manager = bed.manager().await?;
        let mine = ours.wait_in_service(1).await?.remove(0);
        let other = theirs.wait_in_service(1).await?.remove(0);
        workload::wait_joined(&manager, &[mine.clone(), other.clone()]).await?;
        let node_of = |id: &str| {
            Testbed::load()?
                .nodes
                .into_iter()
                .find(|n| n.instance_id == id)
                .context(format!("no test bed node for {id}"))
        };
        let (my_node, their_node) = (node_of(&mine)?, node_of(&other)?);
        // Both daemons die; both instances stay in service, each in its own group.
        my_node.kill();
        their_node.kill();
        e2e::wait::until(
            Duration::from_secs(60),
            Duration::from_millis(250),
            async || {
                let mut up = Vec::new();
                for id in [&mine, &other] {
                    let node = docker::node_by_instance_id(&manager, id).await?;
                    if node.is_none_or(|n| docker::is_ready(&n)) {
                        up.push(id.clone());
                    }
                }
                Ok(if up.is_empty() {
                    Ok(())
                } else {
                    Err(format!("not listed Down yet: {up:?}"))
                })
            },
        )
        .await?;

        // A processor whose Auto Scaling does not answer: its sweeps cannot look, so nothing
        // is done about our Down node, past its grace period, and it says why.
        let mut blind = ProcessorProcess::start(
            &ours,
            &[
                SWEEP_EVERY_SECOND,
                ("SWEEP_DOWN_GRACE_SECONDS", "1"),
                ("AWS_ENDPOINT_URL_AUTO_SCALING", "http://127.0.0.1:9"),
                ("AWS_MAX_ATTEMPTS", "1"),
            ],
        )?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        ensure!(
            !marked_unhealthy(&mine).await?,
            "a sweep that could not look acted"
        );
        ensure!(
            docker::node_by_instance_id(&manager, &mine)
                .await?
                .is_some(),
            "a sweep that could not look removed a node"
        );
        ensure!(
            blind.logged().contains("the sweep failed"),
            "{}",
            blind.logged()
        );
        blind.stop()?;

        // One that sees: ours is replaced; the other group's, as long Down, is never touched.
        let mut seeing = ProcessorProcess::start(
            &ours,
            &[SWEEP_EVERY_SECOND, ("SWEEP_DOWN_GRACE_SECONDS", "1")],
        )?;
        e2e::wait::until(
            Duration::from_secs(30),
            Duration::from_millis(250),
            async || {
                Ok(if marked_unhealthy(&mine).await? {
                    Ok(())
                } else {
                    Err("our Down node's instance is not marked unhealthy".to_owned())
                })
            },
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        ensure!(
            !marked_unhealthy(&other).await?
                && theirs.state_of(&other).await?.as_deref() == Some("InService"),
            "another group's instance was touched: {:?}",
            history_of(&other).await?
        );
        ensure!(
            docker::node_by_instance_id(&manager, &other)
                .await?
                .is_some(),
            "another group's node was removed"
        );
        seeing.stop()?;
        their_node.start_daemon().await?;
        Ok(())
    }
    .await;
    ours.remove().await?;
    if let Ok(theirs) = theirs {
        theirs.remove().await?;
    }
    outcome
}

#[tokio::test]
async fn a_ready_node_whose_instance_no_group_holds_is_never_touched() -> Result<()> {
    // A worker that joined outside any group: to the sweep its instance is gone (no group
    // lists it), as a just-launched instance Auto Scaling does not list yet would be. A Ready
    // node is alive whatever Auto Scaling says: it is left alone.
    let ours = Fixture::new("sweep-ready", 0, Some(JOIN)).await?;
    let outcome = async {
        let bed = Testbed::load()?;
        let manager = bed.manager().await?;
        let scratch = Testbed::add_node(testbed::Role::Worker).await?;
        let result = async {
            let mut sweeper = ProcessorProcess::start(
                &ours,
                &[SWEEP_EVERY_SECOND, ("SWEEP_DOWN_GRACE_SECONDS", "1")],
            )?;
            tokio::time::sleep(Duration::from_secs(5)).await;
            let node = docker::node_by_instance_id(&manager, &scratch.instance_id).await?;
            ensure!(
                node.as_ref().is_some_and(docker::is_ready),
                "a Ready node was acted on: {node:?}\n{}",
                sweeper.logged()
            );
            ensure!(
                sweeper.logged().contains("sweep done"),
                "no sweep ran: {}",
                sweeper.logged()
            );
            sweeper.stop()?;
            Ok(())
        }
        .await;
        Testbed::destroy_node(&scratch.name)?;
        if let Some(id) = docker::node_by_instance_id(&manager, &scratch.instance_id)
            .await?
            .and_then(|n| n.id)
        {
            manager
                .delete_node(
                    &id,
                    Some(bollard::query_parameters::DeleteNodeOptions { force: true }),
                )
                .await?;
        }
        result
    }
    .await;
    ours.remove().await?;
    outcome
}
