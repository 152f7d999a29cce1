//! `bootstrap`: run by an instance's user data at boot. Settings from the environment:
//! `NODE_ROLE` (`manager` or `worker`), `CLUSTER_TABLE` (the stack's DynamoDB table),
//! `DOCKER_HOST` (default the local socket), `BOOT_DEADLINE_SECONDS` (default 600). Who the
//! instance is comes from instance metadata (IMDSv2, the AWS SDK's client).

use std::process::ExitCode;
use std::time::Duration;

use bootstrap::BootstrapError;
use bootstrap::decide::Role;
use bootstrap::run::{Identity, run};
use swarm_aws::adapters::dynamodb::DynamoStore;
use swarm_aws::adapters::engine::LocalEngine;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match boot().await {
        Ok(booted) => {
            println!("bootstrap: {booted:?}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bootstrap: {error}");
            let mut cause = std::error::Error::source(&error);
            while let Some(reason) = cause {
                eprintln!("  because: {reason}");
                cause = reason.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn setting(var: &'static str) -> Result<String, BootstrapError> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| BootstrapError::Config {
            var,
            reason: "is required".into(),
        })
}

async fn boot() -> Result<bootstrap::run::Booted, BootstrapError> {
    let role = match setting("NODE_ROLE")?.as_str() {
        "manager" => Role::Manager,
        "worker" => Role::Worker,
        other => {
            return Err(BootstrapError::Config {
                var: "NODE_ROLE",
                reason: format!("`{other}` is neither `manager` nor `worker`"),
            });
        }
    };
    let table = setting("CLUSTER_TABLE")?;
    let deadline = match std::env::var("BOOT_DEADLINE_SECONDS") {
        Err(_) => Duration::from_secs(600),
        Ok(text) => Duration::from_secs(text.parse().map_err(|_| BootstrapError::Config {
            var: "BOOT_DEADLINE_SECONDS",
            reason: format!("`{text}` is not a whole number of seconds"),
        })?),
    };
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    // Patient: at boot the instance is busy, and there is no hurry worth failing for.
    let imds = aws_config::imds::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(5))
        .max_attempts(5)
        .build();
    let read = |what: &'static str| {
        let imds = imds.clone();
        async move {
            imds.get(what)
                .await
                .map(String::from)
                .map_err(|source| BootstrapError::Metadata {
                    what,
                    source: Box::new(source),
                })
        }
    };
    let me = Identity {
        instance_id: read("/latest/meta-data/instance-id").await?,
        address: read("/latest/meta-data/local-ipv4").await?,
        role,
    };
    tracing::info!(instance_id = %me.instance_id, address = %me.address, ?role, "booting");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    run(&me, &LocalEngine::connect(&host)?, &store, deadline).await
}
