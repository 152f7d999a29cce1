//! `bench-boot`: how long the node bootstrap takes to bring a swarm up from nothing, against
//! the running test bed (see `scripts/bench-boot.sh`). Each round launches a manager group
//! (3) and a worker group (2) in the same moment, their user data the bootstrap, and times,
//! per node, launch request → node Ready in the new swarm, and the whole cluster.

use anyhow::{Context, Result, ensure};
use bollard::models::NodeState;
use e2e::boot::{create_table, launch_cluster, wait_one_swarm};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use testbed::{Testbed, docker};

#[tokio::main]
async fn main() -> Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(5);
    let dynamodb = aws_sdk_dynamodb::Client::new(&e2e::sdk_config().await?);
    let (mut per_node, mut cluster) = (Vec::new(), Vec::new());
    for n in 0..rounds {
        let (nodes, whole) = round(&dynamodb, n)
            .await
            .with_context(|| format!("round {n}"))?;
        println!(
            "round {n}: cluster ready in {:.1} s; nodes {}",
            whole.as_secs_f64(),
            nodes
                .iter()
                .map(|d| format!("{:.1}", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        per_node.extend(nodes);
        cluster.push(whole);
    }
    let p50 = |values: &mut Vec<Duration>| {
        values.sort();
        (
            values[values.len() / 2].as_secs_f64(),
            values[values.len() - 1].as_secs_f64(),
        )
    };
    let (node_p50, node_max) = p50(&mut per_node);
    let (cluster_p50, cluster_max) = p50(&mut cluster);
    println!(
        "\nlaunch → Ready, per node:        p50 {node_p50:.1} s, max {node_max:.1} s ({} nodes)",
        per_node.len()
    );
    println!(
        "launch → all 5 Ready, per cluster: p50 {cluster_p50:.1} s, max {cluster_max:.1} s ({rounds} rounds)"
    );
    Ok(())
}

async fn round(dynamodb: &aws_sdk_dynamodb::Client, n: usize) -> Result<(Vec<Duration>, Duration)> {
    let table = format!("bench-boot-{}-{n}", std::process::id());
    create_table(dynamodb, &table).await?;
    let started = Instant::now();
    let (managers, workers) = launch_cluster(&table, "bench", n).await?;
    let outcome = async {
        let mut ready: BTreeMap<String, Duration> = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while ready.len() < 5 {
            ensure!(
                Instant::now() < deadline,
                "only {} of 5 nodes ready",
                ready.len()
            );
            let instances: Vec<String> = managers
                .instances()
                .await?
                .into_iter()
                .chain(workers.instances().await?)
                .map(|i| i.0)
                .collect();
            // Ask the new swarm, through whichever of its managers answers.
            let bed = Testbed::load()?;
            for manager in instances.iter().take(3) {
                let Some(node) = bed.nodes.iter().find(|n| &n.instance_id == manager) else {
                    continue;
                };
                let Ok(engine) = docker::connect(&node.docker_host()).await else {
                    continue;
                };
                let Ok(listed) = engine.list_nodes(None).await else {
                    continue;
                };
                for id in &instances {
                    let is_ready = listed.iter().any(|n| {
                        docker::engine_label(n, testbed::layout::INSTANCE_ID_LABEL)
                            == Some(id.as_str())
                            && n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)
                    });
                    if is_ready {
                        ready.entry(id.clone()).or_insert_with(|| started.elapsed());
                    }
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let instances: Vec<String> = ready.keys().cloned().collect();
        wait_one_swarm(&instances, 3).await?;
        let whole = ready.values().max().copied().unwrap_or_default();
        Ok((ready.into_values().collect(), whole))
    }
    .await;
    managers.remove().await?;
    workers.remove().await?;
    dynamodb.delete_table().table_name(&table).send().await?;
    outcome
}
