//! A mass scale-in: 20 instances terminated at once. Every one is drained and completed, none
//! is lost, and none is completed while its node is still in the swarm. In a test binary of
//! its own: it adds 20 nodes to the test bed.

use anyhow::{Result, ensure};
use e2e::fixture::{Fixture, JOIN, TERMINATING, history_of};
use e2e::processor::ProcessorProcess;
use e2e::workload;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use testbed::Testbed;

const BURST: usize = 20;

#[tokio::test]
async fn twenty_terminations_at_once_are_all_drained_and_completed_none_early() -> Result<()> {
    let fixture = Fixture::new("burst", BURST as i32, Some(JOIN)).await?;
    let manager = Testbed::load()?.manager().await?;
    let service = format!("{}-agent", fixture.name);
    let outcome = async {
        let instances = fixture.wait_in_service(BURST).await?;
        workload::label_nodes(&manager, &fixture.name, &instances).await?;
        // A global service on the group's nodes: each drain waits for its task to stop.
        workload::deploy_global(&manager, &service, &fixture.name).await?;
        workload::wait_running(&manager, &service, BURST).await?;
        fixture
            .put_hook("drain", TERMINATING, 3600, "ABANDON")
            .await?;
        let processor = ProcessorProcess::start(&fixture, &[("HEARTBEAT_INTERVAL_SECONDS", "10")])?;
        fixture.set_desired(0).await?;

        // Follow every instance: when its action ends, its node must already be gone.
        let mut pending: BTreeSet<String> = instances.iter().cloned().collect();
        let mut early = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        while !pending.is_empty() {
            ensure!(Instant::now() < deadline, "still waiting: {pending:?}");
            for (id, in_swarm) in fixture.take_ended(&manager, &mut pending).await? {
                if in_swarm {
                    early.push(id);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure!(
            early.is_empty(),
            "completed while still in the swarm: {early:?}"
        );
        for id in &instances {
            let history = history_of(id).await?;
            let completed = history
                .iter()
                .filter(|h| h.ends_with("completed with CONTINUE"))
                .count();
            ensure!(completed == 1, "{id}: {history:?}");
            ensure!(
                !history.iter().any(|h| h.contains("Timeout")),
                "{id}: {history:?}"
            );
        }
        ensure!(
            processor
                .logged()
                .matches("lifecycle action completed")
                .count()
                == BURST
        );
        Ok(())
    }
    .await;
    let _ = manager.delete_service(&service).await;
    fixture.remove().await?;
    outcome
}
