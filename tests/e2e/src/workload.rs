//! Services the processor tests run on a fixture's nodes: placed on those nodes only (a node
//! label), so that what moves where is the test's own.

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::models::{
    HealthConfig, NodeSpec, ServiceSpecMode, TaskSpecContainerSpec, TaskSpecPlacement,
};
use bollard::query_parameters::UpdateNodeOptions;
use std::collections::HashMap;
use std::time::Duration;
use testbed::{docker, service};

/// The node label that ties a fixture's nodes to its services.
const GROUP_LABEL: &str = "e2e.group";

/// Waits until each of `instances` is a ready swarm node (its user data joins it after the
/// instance is in service); returns the nodes.
pub async fn wait_joined(
    manager: &Docker,
    instances: &[String],
) -> Result<Vec<bollard::models::Node>> {
    let mut missing = None;
    let joined = crate::wait::until(
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || {
            let mut nodes = Vec::new();
            for id in instances {
                match docker::node_by_instance_id(manager, id).await? {
                    Some(node) if docker::is_ready(&node) => nodes.push(node),
                    _ => {
                        missing = Some(id);
                        return Ok(Err(format!("instance {id} has not joined the swarm")));
                    }
                }
            }
            Ok(Ok(nodes))
        },
    )
    .await;
    match (joined, missing) {
        (Err(error), Some(id)) => bail!(
            "{error}; its history: {:?}; its bootstrap printed:\n{}",
            crate::fixture::history_of(id).await.unwrap_or_default(),
            crate::boot::boot_log(id)
        ),
        (joined, _) => joined,
    }
}

/// Labels the swarm nodes of `instances` with the group, waiting until each has joined. Each
/// node is read right before its update, and again when a node that has just joined changed
/// meanwhile ("update out of sequence").
pub async fn label_nodes(manager: &Docker, group: &str, instances: &[String]) -> Result<()> {
    for node in wait_joined(manager, instances).await? {
        let node_id = node.id.clone().context("a node without id")?;
        let mut tries = 0;
        loop {
            tries += 1;
            let node = manager.inspect_node(&node_id).await?;
            let version = node.version.and_then(|v| v.index).unwrap_or_default() as i64;
            let mut spec: NodeSpec = node.spec.unwrap_or_default();
            spec.labels
                .get_or_insert_with(HashMap::new)
                .insert(GROUP_LABEL.to_owned(), group.to_owned());
            match manager
                .update_node(&node_id, spec, UpdateNodeOptions { version })
                .await
            {
                Ok(()) => break,
                Err(error) if tries < 5 && swarm_aws::drain::read::out_of_sequence(&error) => {}
                Err(error) => return Err(error).context("cannot label the node"),
            }
        }
    }
    Ok(())
}

/// A service of `replicas` tasks on the group's nodes, at most `per_node` on one, each a
/// shell that exits on SIGTERM within a second (or never, when `ignore_term`: Swarm then
/// kills it after `stop_grace`).
pub async fn deploy(
    manager: &Docker,
    name: &str,
    group: &str,
    replicas: i64,
    per_node: i64,
    ignore_term: bool,
    stop_grace: Duration,
) -> Result<()> {
    let script = if ignore_term {
        "trap '' TERM; while true; do sleep 1; done"
    } else {
        "trap 'exit 0' TERM; while true; do sleep 1; done"
    };
    let container = TaskSpecContainerSpec {
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        stop_grace_period: Some(stop_grace.as_nanos() as i64),
        ..Default::default()
    };
    let mut spec = service::replicated(name, replicas, container);
    if let Some(task) = spec.task_template.as_mut() {
        task.placement = Some(TaskSpecPlacement {
            constraints: Some(vec![format!("node.labels.{GROUP_LABEL}=={group}")]),
            max_replicas: Some(per_node),
            ..Default::default()
        });
    }
    service::create(manager, spec).await
}

/// A global service on the group's nodes, each task a shell that exits on SIGTERM at once:
/// each drain of a node waits for its task to stop.
pub async fn deploy_global(manager: &Docker, name: &str, group: &str) -> Result<()> {
    let container = TaskSpecContainerSpec {
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            "trap 'exit 0' TERM; while true; do sleep 1; done".into(),
        ]),
        ..Default::default()
    };
    let mut spec = service::replicated(name, 0, container);
    spec.mode = Some(ServiceSpecMode {
        global: Some(Default::default()),
        ..Default::default()
    });
    if let Some(task) = spec.task_template.as_mut() {
        task.placement = Some(TaskSpecPlacement {
            constraints: Some(vec![format!("node.labels.{GROUP_LABEL}=={group}")]),
            ..Default::default()
        });
    }
    service::create(manager, spec).await
}

/// The node id of every running task of service `name`.
pub async fn running_on(manager: &Docker, name: &str) -> Result<Vec<String>> {
    Ok(node_ids(service::running_tasks(manager, name).await?))
}

/// Waits until `count` tasks of `name` run; returns their node ids.
pub async fn wait_running(manager: &Docker, name: &str, count: usize) -> Result<Vec<String>> {
    let tasks = service::wait_running(manager, name, count, Duration::from_secs(60)).await?;
    Ok(node_ids(tasks))
}

/// The nodes the tasks run on.
fn node_ids(tasks: Vec<bollard::models::Task>) -> Vec<String> {
    tasks.into_iter().filter_map(|t| t.node_id).collect()
}

/// One of `instances` whose swarm node runs a task of those on `nodes` (node ids).
pub async fn instance_running_a_task(
    manager: &Docker,
    instances: &[String],
    nodes: &[String],
) -> Result<String> {
    for id in instances {
        let node = docker::node_by_instance_id(manager, id)
            .await?
            .and_then(|n| n.id);
        if node.is_some_and(|n| nodes.contains(&n)) {
            return Ok(id.clone());
        }
    }
    anyhow::bail!("no node of {instances:?} runs a task")
}

/// The swarm's Raft members, how many of them Raft reaches, and whether one is the leader.
pub async fn managers(manager: &Docker) -> Result<(usize, usize, bool)> {
    let nodes = manager.list_nodes(None).await?;
    let members: Vec<_> = nodes
        .iter()
        .filter_map(|n| n.manager_status.as_ref())
        .collect();
    let reachable = members
        .iter()
        .filter(|m| m.reachability == Some(bollard::models::Reachability::REACHABLE))
        .count();
    let leader = members.iter().any(|m| m.leader == Some(true));
    Ok((members.len(), reachable, leader))
}

/// Waits until the instance's node is out of the swarm, looking every `every`.
pub async fn wait_out_of_the_swarm(
    manager: &Docker,
    instance_id: &str,
    timeout: Duration,
    every: Duration,
) -> Result<()> {
    crate::wait::until(timeout, every, async || {
        Ok(
            match docker::node_by_instance_id(manager, instance_id).await? {
                None => Ok(()),
                Some(node) => Err(format!(
                    "the node of {instance_id} is still in the swarm: {:?}",
                    node.status.and_then(|s| s.state)
                )),
            },
        )
    })
    .await
}

/// A one-replica web service (on the group's nodes, when `group` is given), publishing `port` in host mode, that
/// answers (and is healthy) only 5 s after its task starts, as an application that loads
/// before it serves, and on SIGTERM serves one more second before it exits, as one that
/// finishes what it has in hand (the test bed's mesh follows the tasks every 100 ms);
/// `labels` on the service.
pub async fn deploy_slow_web(
    manager: &Docker,
    name: &str,
    group: Option<&str>,
    port: u16,
    labels: &[(&str, &str)],
) -> Result<()> {
    let container = TaskSpecContainerSpec {
        command: Some(vec!["sh".to_owned(), "-c".to_owned()]),
        args: Some(vec![
            "sleep 5; hostname > /www/index.html; httpd -f -p 80 -h /www & pid=$!; \
             trap 'sleep 1; kill $pid' TERM; wait $pid; wait $pid"
                .to_owned(),
        ]),
        init: Some(true),
        health_check: Some(HealthConfig {
            test: Some(vec![
                "CMD-SHELL".to_owned(),
                "wget -q -O /dev/null http://127.0.0.1/".to_owned(),
            ]),
            interval: Some(500_000_000),
            timeout: Some(1_000_000_000),
            retries: Some(60),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut spec = service::replicated(name, 1, container);
    spec.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    spec.endpoint_spec = Some(service::host_mode(port));
    if let Some(group) = group
        && let Some(task) = spec.task_template.as_mut()
    {
        task.placement = Some(TaskSpecPlacement {
            constraints: Some(vec![format!("node.labels.{GROUP_LABEL}=={group}")]),
            ..Default::default()
        });
    }
    service::create(manager, spec).await
}
