//! `testbed`: brings the local test bed up and down, and acts on its nodes.

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use testbed::{Role, Testbed, autoscaling, docker, layout};

/// The local test bed: a real Docker Swarm, one dockerd per network namespace, and moto.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start (or repair) the test bed: the swarm, the image on every node, moto.
    Up {
        /// Managers (Raft members).
        #[arg(long, default_value_t = 3)]
        managers: u8,
        /// Workers.
        #[arg(long, default_value_t = 2)]
        workers: u8,
        /// API seconds per real second in the Auto Scaling emulator (60: an hour in a minute).
        #[arg(long, default_value_t = layout::DEFAULT_TIME_SCALE)]
        time_scale: f64,
    },
    /// Remove everything the test bed made; fails if anything is left.
    Down,
    /// Show the swarm as a manager sees it, and moto.
    Status,
    /// Print `export` lines for the AWS SDK to reach moto (use with `eval`).
    Env,
    /// Add a node to the running swarm.
    AddNode {
        /// `manager` or `worker`.
        #[arg(long, value_parser = parse_role, default_value = "worker")]
        role: Role,
    },
    /// Kill a node's daemon and everything it runs, as a power cut.
    Kill {
        /// Node name (m1, w2, ...).
        node: String,
    },
    /// Start a killed node's daemon again.
    Start {
        /// Node name.
        node: String,
    },
    /// Cut a node off the network.
    Cut {
        /// Node name.
        node: String,
    },
    /// Plug a cut node back in.
    Reconnect {
        /// Node name.
        node: String,
    },
    /// Remove a node for good (namespace, data), as a terminated instance.
    Destroy {
        /// Node name.
        node: String,
    },
    /// List what of the test bed still exists; fails if anything does.
    Leftovers,
    /// Run the Auto Scaling emulator in the foreground (`up` starts it in the background).
    Emulate {
        /// API seconds per real second.
        #[arg(long, default_value_t = layout::DEFAULT_TIME_SCALE)]
        time_scale: f64,
        /// Instances the manager group wants.
        #[arg(long, default_value_t = 3)]
        managers: u32,
        /// Instances the worker group wants.
        #[arg(long, default_value_t = 2)]
        workers: u32,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    match text {
        "manager" => Ok(Role::Manager),
        "worker" => Ok(Role::Worker),
        other => Err(format!("`{other}` is neither `manager` nor `worker`")),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Up {
            managers,
            workers,
            time_scale,
        } => {
            let started = Instant::now();
            let bed = Testbed::up(managers, workers, time_scale).await?;
            println!("test bed up in {:.1} s", started.elapsed().as_secs_f64());
            status(&bed).await?;
        }
        Cmd::Down => {
            let started = Instant::now();
            let left = testbed::down();
            if !left.is_empty() {
                bail!("the test bed left behind:\n  {}", left.join("\n  "));
            }
            println!(
                "test bed down in {:.1} s, nothing left",
                started.elapsed().as_secs_f64()
            );
        }
        Cmd::Status => status(&Testbed::load()?).await?,
        Cmd::Env => {
            for (key, value) in Testbed::load()?.aws_env() {
                println!("export {key}={value}");
            }
        }
        Cmd::AddNode { role } => {
            let started = Instant::now();
            let node = Testbed::add_node(role).await?;
            println!(
                "{} ({}, {}) joined and ready in {:.1} s",
                node.name,
                node.instance_id,
                node.ip,
                started.elapsed().as_secs_f64()
            );
        }
        Cmd::Kill { node } => Testbed::load()?.node(&node)?.kill(),
        Cmd::Start { node } => Testbed::load()?.node(&node)?.start_daemon().await?,
        Cmd::Cut { node } => Testbed::load()?.node(&node)?.cut()?,
        Cmd::Reconnect { node } => Testbed::load()?.node(&node)?.reconnect()?,
        Cmd::Destroy { node } => Testbed::destroy_node(&node)?,
        Cmd::Emulate {
            time_scale,
            managers,
            workers,
        } => emulate(time_scale, managers, workers).await?,
        Cmd::Leftovers => {
            let left = testbed::cleanup::leftovers();
            if !left.is_empty() {
                bail!("left behind:\n  {}", left.join("\n  "));
            }
            println!("nothing of the test bed is left");
        }
    }
    Ok(())
}

/// Runs the Auto Scaling emulator over the running test bed until stopped.
async fn emulate(time_scale: f64, managers: u32, workers: u32) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let bed = Testbed::load()?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let exe = std::env::current_exe()?;
    let gateway = layout::gateway();
    // What a node's user data can reach from inside its namespace: moto, the emulator and
    // the instance metadata, all on the bridge.
    let boot_env = vec![
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT".to_owned(),
            autoscaling::imds_endpoint(),
        ),
        (
            "AWS_ENDPOINT_URL_AUTO_SCALING".to_owned(),
            format!("http://{gateway}:{}", layout::AUTOSCALING_PORT),
        ),
        // The emulator answers CloudFormation's SignalResource too (the rolling update).
        (
            "AWS_ENDPOINT_URL_CLOUDFORMATION".to_owned(),
            format!("http://{gateway}:{}", layout::AUTOSCALING_PORT),
        ),
        (
            "AWS_REGION".to_owned(),
            autoscaling::model::REGION.to_owned(),
        ),
        ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
    ];
    let emulator = Arc::new(autoscaling::Emulator::new(
        autoscaling::clock::Clock::new(time_scale),
        aws_sdk_sqs::Client::new(&config),
        boot_env,
    ));
    let bootstrap = exe.with_file_name("bootstrap");
    if !bootstrap.exists() {
        bail!(
            "{} is missing: the nodes boot with it (cargo build -p bootstrap)",
            bootstrap.display()
        );
    }
    emulator.adopt(&bed, &bootstrap.display().to_string(), managers, workers);
    // Launch what the groups lack: on a new test bed, every node, whose bootstrap then forms
    // the swarm.
    for group in ["testbed-managers", "testbed-workers"] {
        emulator.reconcile(group);
    }
    let api = [
        SocketAddr::from(([127, 0, 0, 1], layout::AUTOSCALING_PORT)),
        SocketAddr::from((gateway, layout::AUTOSCALING_PORT)),
    ];
    autoscaling::serve(
        emulator,
        &api,
        SocketAddr::from((gateway, layout::IMDS_PORT)),
    )
    .await
}

/// Prints the swarm as `docker node ls` would, with each node's test bed name and instance id.
async fn status(bed: &Testbed) -> Result<()> {
    let manager = bed.manager().await?;
    let mut rows: Vec<(String, String)> = Vec::new();
    for node in manager.list_nodes(None).await? {
        let instance = docker::engine_label(&node, layout::INSTANCE_ID_LABEL)
            .unwrap_or("-")
            .to_owned();
        let name = bed
            .nodes
            .iter()
            .find(|n| n.instance_id == instance)
            .map_or("-", |n| n.name.as_str());
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let lower = |debug: String| debug.to_lowercase();
        let manager = node.manager_status.as_ref().map_or(String::new(), |m| {
            if m.leader == Some(true) {
                "leader".to_owned()
            } else {
                m.reachability
                    .map_or(String::new(), |r| lower(format!("{r:?}")))
            }
        });
        let row = format!(
            "{:<5} {:<21} {:<15} {:<16} {:<8} {:<8} {:<13} {}\n",
            name,
            instance,
            status.and_then(|s| s.addr.clone()).unwrap_or_default(),
            node.description
                .as_ref()
                .and_then(|d| d.hostname.clone())
                .unwrap_or_default(),
            spec.and_then(|s| s.role)
                .map_or("-".to_owned(), |r| lower(format!("{r:?}"))),
            status
                .and_then(|s| s.state)
                .map_or("-".to_owned(), |s| lower(format!("{s:?}"))),
            spec.and_then(|s| s.availability)
                .map_or("-".to_owned(), |a| lower(format!("{a:?}"))),
            manager,
        );
        rows.push((name.to_owned(), row));
    }
    rows.sort();
    let mut out = String::from(
        "NODE  INSTANCE              ADDRESS         HOSTNAME         ROLE     STATUS   AVAILABILITY  MANAGER\n",
    );
    out.extend(rows.into_iter().map(|(_, row)| row));
    let moto = if testbed::moto::answers() {
        "answering"
    } else {
        "NOT answering"
    };
    out.push_str(&format!("moto: {} ({moto})\n", bed.aws_endpoint));
    // A closed pipe (`testbed status | head`) is the reader's choice, not an error.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
    Ok(())
}
