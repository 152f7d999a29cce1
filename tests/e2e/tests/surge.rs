//! The surge before a drain end to end: `lifecycle serve` against the real swarm and the
//! emulator, one-replica services whose task answers (and turns healthy) 5 s after it
//! starts, on the node being terminated.
//!
//! Requests reach each service through Swarm's routing mesh as the test bed stands it in
//! (`e2e::load::Mesh`: the kernel has no IPVS): whichever tasks Swarm says are running, as a
//! client of the stack's load balancer reaches them through any node.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bollard::Docker;
use bollard::models::NodeSpecAvailabilityEnum;
use bollard::query_parameters::{UpdateNodeOptions, UpdateServiceOptions};
use e2e::fixture::{Fixture, JOIN, TERMINATING};
use e2e::load::{Load, Mesh, Target};
use e2e::processor::ProcessorProcess;
use e2e::workload;
use swarm_aws::drain::surge::{BASE_LABEL, NODE_LABEL_PREFIX, OPT_OUT_LABEL};
use testbed::{Testbed, docker, service};

/// Sets the availability of the node of `instance`.
async fn set_availability(
    manager: &Docker,
    instance: &str,
    availability: NodeSpecAvailabilityEnum,
) -> Result<()> {
    let node = docker::node_by_instance_id(manager, instance)
        .await?
        .context("no node")?;
    let id = node.id.clone().context("no node id")?;
    for tries in 1.. {
        let node = manager.inspect_node(&id).await?;
        let version = node.version.and_then(|v| v.index).unwrap_or_default() as i64;
        let mut spec = node.spec.unwrap_or_default();
        spec.availability = Some(availability);
        match manager
            .update_node(&id, spec, UpdateNodeOptions { version })
            .await
        {
            Ok(()) => return Ok(()),
            Err(error) if tries < 5 && swarm_aws::drain::read::out_of_sequence(&error) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// A service to deploy: its name, its port, its labels.
type Deployed<'a> = (&'a str, u16, &'a [(&'a str, &'a str)]);

/// Two workers of a group of their own, both services deployed on the first (the second
/// paused meanwhile), the second active again; the first's instance id.
async fn services_on_one_node(
    fixture: &Fixture,
    manager: &Docker,
    services: &[Deployed<'_>],
) -> Result<String> {
    let instances = fixture.wait_in_service(2).await?;
    workload::label_nodes(manager, &fixture.name, &instances).await?;
    set_availability(manager, &instances[1], NodeSpecAvailabilityEnum::PAUSE).await?;
    for (name, port, labels) in services {
        workload::deploy_slow_web(manager, name, Some(&fixture.name), *port, labels).await?;
    }
    for (name, _, _) in services {
        service::wait_running(manager, name, 1, Duration::from_secs(60)).await?;
    }
    set_availability(manager, &instances[1], NodeSpecAvailabilityEnum::ACTIVE).await?;
    Ok(instances[0].clone())
}

/// The service's replica count and labels.
async fn count_and_labels(manager: &Docker, name: &str) -> Result<(i64, HashMap<String, String>)> {
    let spec = manager
        .inspect_service(name, None)
        .await?
        .spec
        .context("no spec")?;
    let replicas = spec
        .mode
        .and_then(|m| m.replicated)
        .and_then(|r| r.replicas)
        .unwrap_or_default();
    Ok((replicas, spec.labels.unwrap_or_default()))
}

/// Whether no surge label is left on the service.
fn no_surge_left(labels: &HashMap<String, String>) -> bool {
    !labels
        .keys()
        .any(|k| k == BASE_LABEL || k.starts_with(NODE_LABEL_PREFIX))
}

#[tokio::test]
async fn a_one_replica_service_fails_no_request_with_the_surge_and_some_without_it() -> Result<()> {
    let fixture = Fixture::new("surge", 2, Some(JOIN)).await?;
    let manager = Testbed::load()?.manager().await?;
    let (surged, stop_first) = (
        format!("{}-surged", fixture.name),
        format!("{}-stop-first", fixture.name),
    );
    let outcome = async {
        let victim = services_on_one_node(
            &fixture,
            &manager,
            &[
                (&surged, 8501, &[]),
                (&stop_first, 8502, &[(OPT_OUT_LABEL, "false")]),
            ],
        )
        .await?;
        fixture
            .put_hook("drain", TERMINATING, 3600, "CONTINUE")
            .await?;
        let processor = ProcessorProcess::start(&fixture, &[])?;
        // 50 requests a second to each, from before the termination to after its end.
        let mut loads = Vec::new();
        for (name, port) in [(&surged, 8501), (&stop_first, 8502)] {
            let mesh = Mesh::follow(manager.clone(), name.clone(), port).await;
            loads.push(Load::start_to(Target::Mesh(mesh), 50));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        fixture.terminate(&victim).await?;
        fixture
            .wait_state(&victim, None, Duration::from_secs(120))
            .await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut failed = Vec::new();
        for load in loads {
            let samples = load.stop().await;
            let failures: Vec<(f64, String)> = samples
                .iter()
                .filter_map(|s| s.error.clone().map(|e| (s.at, e)))
                .take(5)
                .collect();
            eprintln!("first failures: {failures:?}");
            failed.push((
                samples.iter().filter(|s| s.error.is_some()).count(),
                samples.len(),
            ));
        }
        eprintln!(
            "surged: {:?} failed of sent; stop-first: {:?}",
            failed[0], failed[1]
        );
        ensure!(
            failed[0].0 == 0 && failed[0].1 > 300,
            "with the surge, {} of {} requests failed",
            failed[0].0,
            failed[0].1
        );
        ensure!(
            failed[1].0 > 0,
            "without the surge no request failed: the test shows nothing"
        );
        // The count given back, the labels gone, the replica running elsewhere.
        let (replicas, labels) = count_and_labels(&manager, &surged).await?;
        ensure!(
            replicas == 1 && no_surge_left(&labels),
            "{replicas} {labels:?}"
        );
        service::wait_running(&manager, &surged, 1, Duration::from_secs(30)).await?;
        let log = processor.logged();
        ensure!(log.contains("scaling up before the drain"), "{log}");
        Ok(())
    }
    .await;
    for name in [&surged, &stop_first] {
        let _ = manager.delete_service(name).await;
    }
    fixture.remove().await?;
    outcome
}

#[tokio::test]
async fn a_processor_killed_mid_surge_leaves_the_count_to_the_next_and_a_users_update_is_kept()
-> Result<()> {
    let fixture = Fixture::new("surge-kill", 2, Some(JOIN)).await?;
    let manager = Testbed::load()?.manager().await?;
    let name = format!("{}-web", fixture.name);
    let outcome = async {
        let victim = services_on_one_node(&fixture, &manager, &[(&name, 8503, &[])]).await?;
        fixture
            .put_hook("drain", TERMINATING, 3600, "CONTINUE")
            .await?;
        let mut first = ProcessorProcess::start(&fixture, &[])?;
        fixture.terminate(&victim).await?;
        // Surged: the new replica starts, 5 s before it is healthy. The processor dies there.
        e2e::wait::until(
            Duration::from_secs(60),
            Duration::from_millis(100),
            async || {
                let (replicas, labels) = count_and_labels(&manager, &name).await?;
                Ok(if replicas == 2 && !no_surge_left(&labels) {
                    Ok(())
                } else {
                    Err(format!("not surged: {replicas} {labels:?}"))
                })
            },
        )
        .await?;
        first.kill();
        // Meanwhile, the user changes the service.
        let service = manager.inspect_service(&name, None).await?;
        let version = service.version.and_then(|v| v.index).unwrap_or_default();
        let mut spec = service.spec.context("no spec")?;
        if let Some(container) = spec
            .task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut())
        {
            container.env = Some(vec!["CHANGED_BY=user".to_owned()]);
        }
        manager
            .update_service(
                &name,
                spec,
                UpdateServiceOptions {
                    version: version as i32,
                    ..Default::default()
                },
                None,
            )
            .await?;
        // Another processor takes the action up and ends the surge.
        let second = ProcessorProcess::start(&fixture, &[])?;
        fixture
            .wait_state(&victim, None, Duration::from_secs(120))
            .await?;
        let (replicas, labels) = count_and_labels(&manager, &name).await?;
        ensure!(
            replicas == 1 && no_surge_left(&labels),
            "not given back: {replicas} {labels:?}; {}",
            second.logged()
        );
        let env = manager
            .inspect_service(&name, None)
            .await?
            .spec
            .and_then(|s| s.task_template)
            .and_then(|t| t.container_spec)
            .and_then(|c| c.env)
            .unwrap_or_default();
        ensure!(
            env.contains(&"CHANGED_BY=user".to_owned()),
            "the user's change was reverted: {env:?}"
        );
        Ok(())
    }
    .await;
    let _ = manager.delete_service(&name).await;
    fixture.remove().await?;
    outcome
}
