//! Swarms formed from nothing by the node bootstrap, as on AWS: groups whose user data runs
//! `bootstrap` with a cluster table of their own. Used by the bootstrap tests and benchmark.

use anyhow::{Context, Result, ensure};
use bollard::models::LocalNodeState;
use std::collections::BTreeSet;
use std::time::Duration;
use testbed::Testbed;

/// The user data of a node of `role`: the bootstrap, with the stack's settings (a worker is
/// told only the worker token's secret).
pub fn user_data(role: &str, table: &str) -> Result<String> {
    let bootstrap = crate::binary("bootstrap")?;
    let (manager_token, worker_token) = testbed::token_secrets(table);
    let token_secrets = if role == "manager" {
        format!("MANAGER_TOKEN_SECRET={manager_token} WORKER_TOKEN_SECRET={worker_token}")
    } else {
        format!("WORKER_TOKEN_SECRET={worker_token}")
    };
    Ok(format!(
        "#!/bin/sh\nexport NODE_ROLE={role} CLUSTER_TABLE={table} {token_secrets} BOOT_DEADLINE_SECONDS=120\nexec {}\n",
        bootstrap.display()
    ))
}

/// A cluster table as the stack makes it, with its join tokens' secrets beside it.
pub async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    testbed::create_table(dynamodb, table).await?;
    let secrets = aws_sdk_secretsmanager::Client::new(&crate::sdk_config().await?);
    testbed::create_token_secrets(&secrets, table).await
}

/// Launches, at once, 3 manager and 2 worker instances (groups `{prefix}-m{n}` and
/// `{prefix}-w{n}`) whose user data runs the bootstrap against `table`.
pub async fn launch_cluster(
    table: &str,
    prefix: &str,
    n: usize,
) -> Result<(crate::fixture::Fixture, crate::fixture::Fixture)> {
    use crate::fixture::{Fixture, Launch};
    let (manager_data, worker_data) = (user_data("manager", table)?, user_data("worker", table)?);
    let managers = Fixture::create(
        &format!("{prefix}-m{n}"),
        3,
        Launch::UserData(&manager_data),
        "manager",
    )
    .await?;
    let workers = Fixture::create(
        &format!("{prefix}-w{n}"),
        2,
        Launch::UserData(&worker_data),
        "worker",
    )
    .await?;
    Ok((managers, workers))
}

/// Waits until every instance's engine is an active member of one and the same swarm, with
/// `managers` of them managers; returns the swarm's id.
pub async fn wait_one_swarm(instances: &[String], managers: usize) -> Result<String> {
    crate::wait::until(
        Duration::from_secs(120),
        Duration::from_millis(250),
        async || {
            let bed = Testbed::load()?;
            let mut ids = BTreeSet::new();
            let mut members = 0;
            let mut controllers = 0;
            for id in instances {
                let Some(node) = bed.nodes.iter().find(|n| &n.instance_id == id) else {
                    continue;
                };
                let Ok(docker) = testbed::docker::connect(&node.docker_host()).await else {
                    continue;
                };
                let swarm = docker.info().await?.swarm.unwrap_or_default();
                if swarm.local_node_state == Some(LocalNodeState::ACTIVE) {
                    members += 1;
                    controllers += usize::from(swarm.control_available == Some(true));
                    if let Some(cluster) = swarm.cluster.and_then(|c| c.id) {
                        ids.insert(cluster);
                    }
                }
            }
            ensure!(ids.len() <= 1, "two swarms were formed: {ids:?}");
            if members == instances.len() && controllers == managers && ids.len() == 1 {
                return ids.into_iter().next().context("no swarm id").map(Ok);
            }
            Ok(Err(format!(
                "{members} of {} instances in the swarm, {controllers} managers",
                instances.len()
            )))
        },
    )
    .await
}

/// Waits until every instance's user data (the bootstrap) has exited, and requires that each
/// exited 0. A manager records its address after it joined, so the record is complete only
/// then, not when the swarm first counts every node.
pub async fn wait_booted(instances: &[String]) -> Result<()> {
    crate::wait::until(
        Duration::from_secs(120),
        Duration::from_millis(250),
        async || {
            for id in instances {
                let history = crate::fixture::history_of(id).await?;
                match history.iter().find(|h| h.starts_with("user data exited")) {
                    Some(exit) => ensure!(exit.ends_with("exit status: 0"), "{id}: {history:?}"),
                    None => {
                        return Ok(Err(format!("{id}'s bootstrap has not exited: {history:?}")));
                    }
                }
            }
            Ok(Ok(()))
        },
    )
    .await
}

/// What the instance's user data (the bootstrap) printed so far: its node's `user-data.log`,
/// or "(none)". For the message of a test that waited on a node in vain.
pub fn boot_log(instance_id: &str) -> String {
    Testbed::load()
        .ok()
        .and_then(|bed| bed.nodes.into_iter().find(|n| n.instance_id == instance_id))
        .and_then(|node| std::fs::read_to_string(node.paths().data.join("user-data.log")).ok())
        .unwrap_or_else(|| "(none)".to_owned())
}
