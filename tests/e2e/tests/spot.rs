//! Spot notices end to end: EC2's interruption warning (or rebalance recommendation) reaches
//! the queue as the stack's EventBridge rule delivers it, and `lifecycle serve` drains the
//! node at once, before EC2 reclaims the instance two minutes later (emulator time), with no
//! lifecycle hook involved.

use anyhow::{Result, ensure};
use bollard::Docker;
use e2e::fixture::{Fixture, JOIN};
use e2e::processor::ProcessorProcess;
use e2e::workload;
use std::time::Duration;
use testbed::{Testbed, docker};

/// Waits until the instance's node is out of the swarm, and returns the instance's lifecycle
/// state in its group at that moment (`None`: already gone).
async fn state_when_removed(
    fixture: &Fixture,
    manager: &Docker,
    instance: &str,
) -> Result<Option<String>> {
    // Looked at every 50 ms: the instance is reclaimed 2 s after its warning here.
    workload::wait_out_of_the_swarm(
        manager,
        instance,
        Duration::from_secs(30),
        Duration::from_millis(50),
    )
    .await?;
    fixture.state_of(instance).await
}

#[tokio::test]
async fn a_spot_interruption_warning_drains_the_node_before_ec2_reclaims_the_instance() -> Result<()>
{
    let fixture = Fixture::new("spot-warning", 1, Some(JOIN)).await?;
    let outcome = async {
        let manager = Testbed::load()?.manager().await?;
        let instance = fixture.wait_in_service(1).await?.remove(0);
        workload::wait_joined(&manager, std::slice::from_ref(&instance)).await?;
        let mut processor = ProcessorProcess::start(&fixture, &[])?;
        fixture.spot_notice(&instance, true).await?;
        let state = state_when_removed(&fixture, &manager, &instance).await?;
        ensure!(
            state.as_deref() == Some("InService"),
            "the node left the swarm only once its instance was {state:?}: {}",
            processor.logged()
        );
        e2e::wait::until(
            Duration::from_secs(10),
            Duration::from_millis(100),
            async || {
                let log = processor.logged();
                Ok(if log.contains("drained ahead of the interruption") {
                    Ok(())
                } else {
                    Err(format!("the drain did not finish: {log}"))
                })
            },
        )
        .await?;
        // Reclaimed two minutes (emulator time) after the warning, whatever the drain did.
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
async fn a_rebalance_recommendation_drains_the_node_and_a_notice_for_another_group_does_not()
-> Result<()> {
    let ours = Fixture::new("spot-rebalance", 1, Some(JOIN)).await?;
    let theirs = Fixture::new("spot-theirs", 1, Some(JOIN)).await;
    let outcome = async {
        let theirs = theirs.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let manager = Testbed::load()?.manager().await?;
        let instance = ours.wait_in_service(1).await?.remove(0);
        let other = theirs.wait_in_service(1).await?.remove(0);
        workload::wait_joined(&manager, &[instance.clone(), other.clone()]).await?;
        let mut processor = ProcessorProcess::start(&ours, &[])?;
        // Another group's instance, its notice on our queue: left alone.
        ours.spot_notice(&other, false).await?;
        // Ours: drained at once, though EC2 promises nothing and reclaims nothing.
        ours.spot_notice(&instance, false).await?;
        let state = state_when_removed(&ours, &manager, &instance).await?;
        ensure!(state.as_deref() == Some("InService"), "{state:?}");
        let log = processor.logged();
        ensure!(
            log.contains("the instance is not in one of the stack's groups"),
            "{log}"
        );
        let their_node = docker::node_by_instance_id(&manager, &other).await?;
        ensure!(
            their_node.as_ref().is_some_and(docker::is_ready),
            "another group's node was touched: {their_node:?}"
        );
        processor.stop()?;
        Ok(())
    }
    .await;
    ours.remove().await?;
    if let Ok(theirs) = theirs {
        theirs.remove().await?;
    }
    outcome
}
