//! `bench-view`: what one refresh of the processor's view of the swarm costs as the swarm
//! grows past what this machine holds (see `scripts/bench-view.sh`). For 100, 1,000 and 5,000
//! nodes (10 tasks a node, hundreds of services), the Engine API is generated and served on
//! loopback ([`e2e::simulated`]), and the processor's own adapter refreshes its view against
//! it: with no node draining (the steady state) and with 50 draining (a scale-in in flight).
//! Per refresh: the calls, the bytes read, the client's CPU time (its thread's, from
//! `/proc/thread-self/schedstat`) and the wall time. Prints a table and writes
//! `target/bench/view.json`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use e2e::simulated::{Shape, Simulated, instance_id};
use swarm_aws::adapters::docker::DockerSwarm;
use swarm_aws::ids::InstanceId;
use swarm_aws::ports::SwarmNodes;

/// One size, one state, measured.
#[derive(Debug, serde::Serialize)]
struct Row {
    nodes: usize,
    tasks: usize,
    services: usize,
    draining: usize,
    refreshes: usize,
    calls_per_refresh: f64,
    bytes_per_refresh: u64,
    cpu_ms_per_refresh: f64,
    wall_ms_per_refresh: f64,
}

/// This thread's CPU time so far.
fn thread_cpu() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: u64 = stat
        .split_whitespace()
        .next()
        .context("an empty schedstat")?
        .parse()?;
    Ok(Duration::from_nanos(ns))
}

/// Refreshes the view `refreshes` times against `sim` (served elsewhere), on this thread.
fn measure(
    sim: &Arc<Simulated>,
    addr: std::net::SocketAddr,
    shape: Shape,
    refreshes: usize,
) -> Result<Row> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Every observation reads the swarm again: the snapshot is never fresh enough.
        let swarm = DockerSwarm::new(vec![format!("tcp://{addr}")], None).fresh_for(Duration::ZERO);
        let ours: InstanceId = instance_id(shape.nodes - 1).as_str().try_into()?;
        // The first observation finds the manager (its probe is not a refresh).
        swarm.observe(&ours).await?;
        let (bytes, requests) = (
            sim.bytes.load(Ordering::SeqCst),
            sim.requests.load(Ordering::SeqCst),
        );
        let (cpu, wall) = (thread_cpu()?, Instant::now());
        for _ in 0..refreshes {
            let view = swarm.observe(&ours).await?;
            anyhow::ensure!(view.node.is_some(), "the observed node is listed");
            if shape.draining > 0 {
                anyhow::ensure!(
                    view.tasks_on_node.len() == shape.tasks_per_node,
                    "the drained node's stopping tasks are read: {}",
                    view.tasks_on_node.len()
                );
            }
        }
        let n = refreshes as f64;
        Ok(Row {
            nodes: shape.nodes,
            tasks: shape.nodes * shape.tasks_per_node,
            services: shape.services,
            draining: shape.draining,
            refreshes,
            calls_per_refresh: (sim.requests.load(Ordering::SeqCst) - requests) as f64 / n,
            bytes_per_refresh: (sim.bytes.load(Ordering::SeqCst) - bytes) / refreshes as u64,
            cpu_ms_per_refresh: (thread_cpu()? - cpu).as_secs_f64() * 1000.0 / n,
            wall_ms_per_refresh: wall.elapsed().as_secs_f64() * 1000.0 / n,
        })
    })
}

fn main() -> Result<()> {
    let mut rows = Vec::new();
    println!(
        "{:>6} {:>7} {:>8} {:>8} {:>6} {:>12} {:>9} {:>9}",
        "nodes", "tasks", "services", "draining", "calls", "bytes", "cpu ms", "wall ms"
    );
    for (nodes, services, refreshes) in [(100, 100, 50), (1_000, 300, 20), (5_000, 1_000, 5)] {
        for draining in [0, 50] {
            let shape = Shape {
                nodes,
                tasks_per_node: 10,
                services,
                draining,
                history: 4,
            };
            let sim = Arc::new(Simulated::generate(shape));
            // The server on a runtime of its own thread, so the client's thread is the client's.
            let server = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let addr = server.block_on(sim.clone().spawn())?;
            let row = std::thread::scope(|scope| {
                scope
                    .spawn(|| measure(&sim, addr, shape, refreshes))
                    .join()
                    .expect("the client thread does not panic")
            })?;
            server.shutdown_background();
            println!(
                "{:>6} {:>7} {:>8} {:>8} {:>6.1} {:>12} {:>9.2} {:>9.2}",
                row.nodes,
                row.tasks,
                row.services,
                row.draining,
                row.calls_per_refresh,
                row.bytes_per_refresh,
                row.cpu_ms_per_refresh,
                row.wall_ms_per_refresh
            );
            rows.push(row);
        }
    }
    std::fs::create_dir_all("target/bench")?;
    let json = serde_json::json!({
        "date": chrono::Utc::now().to_rfc3339(),
        "command": "scripts/bench-view.sh",
        "rows": rows,
    });
    std::fs::write(
        "target/bench/view.json",
        serde_json::to_string_pretty(&json)?,
    )?;
    println!("wrote target/bench/view.json");
    Ok(())
}
