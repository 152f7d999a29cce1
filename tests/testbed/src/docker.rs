//! The Docker Engine API of the test bed's nodes, through `bollard` (the client the product
//! uses), and the swarm operations the test bed needs to form its swarm.

use anyhow::{Context, Result};
use bollard::Docker;
use bollard::models::{Node as SwarmNode, NodeState, SwarmJoinRequest};
use std::collections::HashMap;
use std::time::Duration;

use crate::layout;

/// A client of the daemon at `host` (`unix://...`), its API version negotiated down to the
/// daemon's (Debian 12's dockerd speaks 1.41), after a successful ping.
pub async fn connect(host: &str) -> Result<Docker> {
    let docker = Docker::connect_with_unix(host, 30, bollard::API_DEFAULT_VERSION)
        .with_context(|| format!("cannot reach dockerd at {host}"))?
        .negotiate_version()
        .await
        .with_context(|| format!("dockerd at {host} does not answer"))?;
    docker
        .ping()
        .await
        .with_context(|| format!("dockerd at {host} does not answer a ping"))?;
    Ok(docker)
}

/// The swarm's join tokens, manager and worker, read from a manager.
pub struct JoinTokens {
    /// Joins as a manager.
    pub manager: String,
    /// Joins as a worker.
    pub worker: String,
}

/// Reads the join tokens from a manager. They are secrets: never print them.
pub async fn join_tokens(manager: &Docker) -> Result<JoinTokens> {
    let swarm = manager
        .inspect_swarm()
        .await
        .context("cannot inspect the swarm")?;
    let tokens = swarm.join_tokens.context("the swarm has no join tokens")?;
    Ok(JoinTokens {
        manager: tokens.manager.context("no manager join token")?,
        worker: tokens.worker.context("no worker join token")?,
    })
}

/// Joins the daemon to the swarm at `remote` with `token`, advertising `ip`. Idempotent.
pub async fn join_swarm(
    docker: &Docker,
    ip: std::net::Ipv4Addr,
    remote: &str,
    token: &str,
) -> Result<()> {
    let info = docker
        .info()
        .await
        .context("cannot read the daemon's info")?;
    let state = info.swarm.and_then(|s| s.local_node_state);
    if matches!(state, Some(bollard::models::LocalNodeState::ACTIVE)) {
        return Ok(());
    }
    docker
        .join_swarm(SwarmJoinRequest {
            listen_addr: Some("0.0.0.0:2377".to_owned()),
            advertise_addr: Some(ip.to_string()),
            remote_addrs: Some(vec![remote.to_owned()]),
            join_token: Some(token.to_owned()),
            ..Default::default()
        })
        .await
        .context("swarm join failed")?;
    Ok(())
}

/// The engine label of a swarm node: the product's own reading of it.
pub use swarm_aws::drain::read::engine_label;

/// The swarm node whose engine carries `instance-id=<instance_id>`.
pub async fn node_by_instance_id(manager: &Docker, instance_id: &str) -> Result<Option<SwarmNode>> {
    let nodes = manager
        .list_nodes(None)
        .await
        .context("cannot list the swarm's nodes")?;
    Ok(nodes
        .into_iter()
        .find(|node| engine_label(node, layout::INSTANCE_ID_LABEL) == Some(instance_id)))
}

/// Whether a node is `ready`.
pub fn is_ready(node: &SwarmNode) -> bool {
    node.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)
}

/// Waits until the swarm, seen from `manager`, has exactly the instances `expected` (instance
/// id → hostname) and all of them are ready.
pub async fn wait_until_ready(
    manager: &Docker,
    expected: &HashMap<String, String>,
    timeout: Duration,
) -> Result<()> {
    crate::wait::until(timeout, Duration::from_millis(200), async || {
        let nodes = manager
            .list_nodes(None)
            .await
            .context("cannot list the swarm's nodes")?;
        let ready = nodes
            .iter()
            .filter(|n| is_ready(n))
            .filter_map(|n| engine_label(n, layout::INSTANCE_ID_LABEL))
            .filter(|id| expected.contains_key(*id))
            .count();
        Ok(if ready == expected.len() {
            Ok(())
        } else {
            Err(format!("{ready} of {} nodes are ready", expected.len()))
        })
    })
    .await
}
