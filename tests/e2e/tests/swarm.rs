//! The test bed's swarm is a real one: managers with a Raft leader, workers, nodes found by
//! their instance id, services answering on host-mode ports, and nodes that go Down when they
//! die or are cut off, and come back.

use anyhow::{Context, Result};
use bollard::Docker;
use bollard::models::{NodeSpecRoleEnum, NodeState};
use bollard::query_parameters::DeleteNodeOptions;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testbed::{Node, Role, Testbed, docker, http, service};

/// How long Swarm may take to see a node's state change (its heartbeat is 5 s).
const STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until the swarm shows the node with `instance_id` in `state`.
async fn wait_for_state(manager: &Docker, instance_id: &str, state: NodeState) -> Result<()> {
    let started = Instant::now();
    loop {
        let node = docker::node_by_instance_id(manager, instance_id).await?;
        let now = node
            .as_ref()
            .and_then(|n| n.status.as_ref())
            .and_then(|s| s.state);
        if now == Some(state) {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < STATE_TIMEOUT,
            "node {instance_id} is {now:?}, not {state:?}, after {STATE_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Adds a worker for a test that breaks it, and removes it (node and swarm entry) afterwards.
struct ScratchWorker {
    node: Node,
}

impl ScratchWorker {
    async fn add() -> Result<Self> {
        Ok(Self {
            node: Testbed::add_node(Role::Worker).await?,
        })
    }

    async fn remove(self, manager: &Docker) -> Result<()> {
        Testbed::destroy_node(&self.node.name)?;
        let swarm_node = docker::node_by_instance_id(manager, &self.node.instance_id)
            .await?
            .context("the scratch worker is not in the swarm")?;
        let id = swarm_node.id.context("a node without id")?;
        manager
            .delete_node(&id, Some(DeleteNodeOptions { force: true }))
            .await
            .context("cannot remove the scratch worker from the swarm")?;
        Ok(())
    }
}

#[tokio::test]
async fn the_swarm_has_three_managers_one_of_them_leader_and_two_workers_all_ready() -> Result<()> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    let nodes = manager.list_nodes(None).await?;
    let managers: Vec<_> = nodes
        .iter()
        .filter(|n| n.spec.as_ref().and_then(|s| s.role) == Some(NodeSpecRoleEnum::MANAGER))
        .collect();
    assert_eq!(managers.len(), 3, "managers in the swarm");
    let leaders = managers
        .iter()
        .filter(|n| n.manager_status.as_ref().and_then(|m| m.leader) == Some(true))
        .count();
    assert_eq!(leaders, 1, "exactly one Raft leader");
    for name in ["m1", "m2", "m3", "w1", "w2"] {
        let node = bed.node(name)?;
        let swarm_node = docker::node_by_instance_id(&manager, &node.instance_id)
            .await?
            .with_context(|| format!("{name} is not in the swarm"))?;
        assert!(docker::is_ready(&swarm_node), "{name} is not ready");
        let role = swarm_node.spec.as_ref().and_then(|s| s.role);
        let expected = if node.role == Role::Manager {
            NodeSpecRoleEnum::MANAGER
        } else {
            NodeSpecRoleEnum::WORKER
        };
        assert_eq!(role, Some(expected), "{name}'s role");
    }
    Ok(())
}

#[tokio::test]
async fn every_node_is_found_by_its_instance_id_label_and_an_unknown_id_finds_none() -> Result<()> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    for node in bed
        .nodes
        .iter()
        .filter(|n| ["m1", "m2", "m3", "w1", "w2"].contains(&n.name.as_str()))
    {
        let found = docker::node_by_instance_id(&manager, &node.instance_id)
            .await?
            .with_context(|| format!("no swarm node carries instance-id={}", node.instance_id))?;
        let hostname = found
            .description
            .as_ref()
            .and_then(|d| d.hostname.as_deref());
        assert_eq!(hostname, Some(node.hostname.as_str()), "{}", node.name);
    }
    assert!(
        docker::node_by_instance_id(&manager, "i-00000000000000000")
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn a_service_of_four_replicas_of_the_imported_image_answers_http_on_its_host_mode_ports()
-> Result<()> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    let name = "e2e-web";
    let port = 8081;
    let _ = manager.delete_service(name).await;
    service::deploy_web(&manager, name, 4, port).await?;
    let outcome = async {
        let tasks = service::wait_running(&manager, name, 4, Duration::from_secs(60)).await?;
        let nodes = manager.list_nodes(None).await?;
        let mut answers = std::collections::BTreeSet::new();
        for task in &tasks {
            let node = nodes
                .iter()
                .find(|n| n.id == task.node_id)
                .context("a task on an unknown node")?;
            let addr: SocketAddr = format!(
                "{}:{port}",
                node.status
                    .as_ref()
                    .and_then(|s| s.addr.clone())
                    .unwrap_or_default()
            )
            .parse()?;
            let (status, body) = http::get(addr, "/", Duration::from_secs(5))?;
            assert_eq!(status, 200, "{addr}");
            answers.insert(body.trim().to_owned());
        }
        assert_eq!(
            answers.len(),
            4,
            "four distinct replicas answered: {answers:?}"
        );
        anyhow::Ok(())
    }
    .await;
    manager.delete_service(name).await?;
    outcome
}

#[tokio::test]
async fn a_node_whose_daemon_dies_shows_down_and_ready_again_once_restarted() -> Result<()> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    let scratch = ScratchWorker::add().await?;
    let outcome = async {
        scratch.node.kill();
        wait_for_state(&manager, &scratch.node.instance_id, NodeState::DOWN).await?;
        scratch.node.start_daemon().await?;
        wait_for_state(&manager, &scratch.node.instance_id, NodeState::READY).await
    }
    .await;
    scratch.remove(&manager).await?;
    outcome
}

#[tokio::test]
async fn a_node_cut_off_the_network_shows_down_and_ready_again_once_reconnected() -> Result<()> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    let scratch = ScratchWorker::add().await?;
    let outcome = async {
        scratch.node.cut()?;
        wait_for_state(&manager, &scratch.node.instance_id, NodeState::DOWN).await?;
        scratch.node.reconnect()?;
        wait_for_state(&manager, &scratch.node.instance_id, NodeState::READY).await
    }
    .await;
    scratch.remove(&manager).await?;
    outcome
}

#[tokio::test]
async fn the_swarm_gives_overlay_networks_addresses_from_the_pool_its_bootstrap_set() -> Result<()>
{
    let manager = Testbed::load()?.manager().await?;
    let swarm = manager.inspect_swarm().await?;
    let pool = swarm.default_addr_pool.unwrap_or_default();
    anyhow::ensure!(
        pool == [testbed::layout::OVERLAY_POOL],
        "the swarm's pool is {pool:?}, not the one the bootstrap was given"
    );
    Ok(())
}

/// The engine log settings the stack writes into `daemon.json` when container logs go to
/// CloudWatch, read from the template, with its substitutions made: the driver and its
/// options.
fn the_stacks_log_settings(region: &str, group: &str) -> Result<(String, HashMap<String, String>)> {
    let template = std::fs::read_to_string(e2e::workspace().join("template.yaml"))?;
    let line = template
        .lines()
        .find(|l| l.contains("\"log-driver\": \"awslogs\""))
        .context("the template sends no container logs to CloudWatch")?;
    let settings = line
        .split_once('\'')
        .and_then(|(_, rest)| rest.rsplit_once('\''))
        .map(|(inside, _)| inside)
        .context("the awslogs settings are not a quoted !Sub")?
        .replace("${AWS::Region}", region)
        .replace("${ContainerLogGroup}", group);
    let parsed: serde_json::Value = serde_json::from_str(&format!("{{{settings}}}"))?;
    let driver = parsed["log-driver"]
        .as_str()
        .context("no log-driver")?
        .to_owned();
    let options = serde_json::from_value(parsed["log-opts"].clone())?;
    Ok((driver, options))
}

#[tokio::test]
async fn a_containers_output_reaches_cloudwatch_logs_with_the_stacks_log_settings() -> Result<()> {
    // The stack's settings, as its user data writes them into daemon.json, given to one
    // container (the engine applies daemon.json's to every container alike), pointed at moto:
    // the engine has the test bed's AWS credentials as a node has its instance profile's.
    let group = format!("/swarm/e2e-{}/containers", std::process::id());
    let (driver, mut options) = the_stacks_log_settings("us-east-1", &group)?;
    options.insert("awslogs-endpoint".into(), testbed::moto::endpoint());
    let python = |code: &str, args: &[&str]| -> Result<String> {
        let output = std::process::Command::new(e2e::python())
            .arg("-c")
            .arg(code)
            .arg(testbed::moto::endpoint())
            .args(args)
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    // The stack makes the group (the driver does not: `awslogs-create-group` is off).
    python(
        "import boto3,sys; boto3.client('logs', endpoint_url=sys.argv[1], region_name='us-east-1').create_log_group(logGroupName=sys.argv[2])",
        &[&group],
    )?;
    let bed = Testbed::load()?;
    let node = bed
        .nodes
        .iter()
        .find(|n| n.role == Role::Worker)
        .context("no worker")?;
    let engine = bed.docker(node).await?;
    let name = format!("e2e-logs-{}", std::process::id());
    let said = format!("hello from {name}");
    let config = bollard::models::ContainerCreateBody {
        image: Some(testbed::layout::IMAGE.into()),
        cmd: Some(vec!["echo".into(), said.clone()]),
        host_config: Some(bollard::models::HostConfig {
            log_config: Some(bollard::models::HostConfigLogConfig {
                typ: Some(driver),
                config: Some(options),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = engine
        .create_container(
            Some(bollard::query_parameters::CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            config,
        )
        .await?;
    let outcome = async {
        engine
            .start_container(&created.id, None::<bollard::query_parameters::StartContainerOptions>)
            .await?;
        // The stream the stack's tag names (`{{.Name}}/{{.ID}}`), holding the line.
        let stream = format!("{name}/{}", &created.id[..12]);
        e2e::wait::until(Duration::from_secs(30), Duration::from_millis(500), async || {
            let events = python(
                "import boto3,sys,json\nc=boto3.client('logs', endpoint_url=sys.argv[1], region_name='us-east-1')\ntry:\n    print(json.dumps([e['message'] for e in c.get_log_events(logGroupName=sys.argv[2], logStreamName=sys.argv[3])['events']]))\nexcept c.exceptions.ResourceNotFoundException:\n    print('[]')",
                &[&group, &stream],
            )?;
            let lines: Vec<String> = serde_json::from_str(events.trim())?;
            Ok(if lines.iter().any(|l| l == &said) {
                Ok(())
            } else {
                Err(format!("stream {stream} of {group} holds {lines:?}"))
            })
        })
        .await
    }
    .await;
    let _ = engine
        .remove_container(
            &created.id,
            Some(bollard::query_parameters::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    outcome
}

#[tokio::test]
async fn the_kernels_neighbour_table_holds_every_node_the_subnet_can_have() -> Result<()> {
    Testbed::load()?;
    // One table for every namespace: at the default 1024 entries, about 35 nodes fill it and
    // the next cannot reach even its instance metadata (found by bench-scale).
    for (name, wanted) in testbed::NEIGHBOUR_LIMITS {
        let path = format!("/proc/sys/net/ipv4/neigh/default/{name}");
        let current: u64 = std::fs::read_to_string(&path)?.trim().parse()?;
        anyhow::ensure!(current >= wanted, "{path} is {current}, below {wanted}");
    }
    Ok(())
}
