//! `bootstrap [tls]`: run by an instance's user data at boot.
//!
//! - `bootstrap tls` (managers, before Docker starts): writes the manager's Docker API
//!   certificate into `DOCKER_TLS_DIR` (default `/etc/docker/tls`), from the CA in the secret
//!   `DOCKER_CA_SECRET`, making the CA (and the processor's certificate, in
//!   `PROCESSOR_TLS_SECRET`) if this manager is the first.
//! - `bootstrap`: joins the swarm, or initialises it (the first manager, exactly once, with
//!   the overlay address pool `SWARM_ADDRESS_POOL` if set). With `SIGNAL_STACK` and
//!   `SIGNAL_RESOURCE` set, it then signals CloudFormation: SUCCESS once the node is in the
//!   swarm, FAILURE if it could not join.
//!
//! Both read `NODE_ROLE` (`manager` or `worker`), `CLUSTER_TABLE` (the stack's DynamoDB
//! table) and `BOOT_DEADLINE_SECONDS` (default 600); `bootstrap` reads `DOCKER_HOST`
//! (default the local socket), `WORKER_TOKEN_SECRET` and, on a manager,
//! `MANAGER_TOKEN_SECRET` (the join tokens' secrets). Who the instance is comes from instance metadata (IMDSv2,
//! the AWS SDK's client).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bootstrap::BootstrapError;
use bootstrap::decide::Role;
use bootstrap::retry::patiently;
use bootstrap::run::{Identity, Stores, run};
use bootstrap::tls::{SecretIds, provision};
use swarm_aws::adapters::dynamodb::DynamoStore;
use swarm_aws::adapters::engine::LocalEngine;
use swarm_aws::adapters::secrets::{Secrets, TokenSecrets};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let command = std::env::args().nth(1);
    let outcome = match command.as_deref() {
        None => boot().await,
        Some("tls") => tls().await,
        Some(other) => Err(BootstrapError::Usage(format!(
            "unknown command `{other}`: none joins the swarm, `tls` writes the manager's Docker API certificate"
        ))),
    };
    match outcome {
        Ok(done) => {
            println!("bootstrap: {done}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bootstrap: {error}");
            for reason in swarm_aws::error::causes(&error) {
                eprintln!("  because: {reason}");
            }
            ExitCode::FAILURE
        }
    }
}

fn setting(var: &'static str) -> Result<String, BootstrapError> {
    optional(var).ok_or_else(|| BootstrapError::Config {
        var,
        reason: "is required".into(),
    })
}

fn optional(var: &'static str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// How long instance metadata is read again when it does not answer.
const METADATA_PATIENCE: Duration = Duration::from_secs(120);

/// Who this instance is, from instance metadata and `NODE_ROLE`.
async fn identity() -> Result<Identity, BootstrapError> {
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
    // Patient: at boot the instance is busy, and there is no hurry worth failing for.
    let imds = aws_config::imds::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(5))
        .max_attempts(5)
        .build();
    // And when a read fails even so, it is read again for two minutes: nothing can go on
    // without it (seen here with 50 instances booting at once on two cores).
    let read = |what: &'static str| {
        let imds = imds.clone();
        patiently(METADATA_PATIENCE, async move || {
            imds.get(what)
                .await
                .map(String::from)
                .map_err(|source| BootstrapError::Metadata {
                    what,
                    source: Box::new(source),
                })
        })
    };
    Ok(Identity {
        instance_id: read("/latest/meta-data/instance-id").await?,
        address: read("/latest/meta-data/local-ipv4").await?,
        role,
        address_pool: optional("SWARM_ADDRESS_POOL"),
    })
}

fn deadline() -> Result<Duration, BootstrapError> {
    match std::env::var("BOOT_DEADLINE_SECONDS") {
        Err(_) => Ok(Duration::from_secs(600)),
        Ok(text) => Ok(Duration::from_secs(text.parse().map_err(|_| {
            BootstrapError::Config {
                var: "BOOT_DEADLINE_SECONDS",
                reason: format!("`{text}` is not a whole number of seconds"),
            }
        })?)),
    }
}

async fn store(sdk: &aws_config::SdkConfig) -> Result<DynamoStore, BootstrapError> {
    Ok(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        setting("CLUSTER_TABLE")?,
    ))
}

async fn tls() -> Result<String, BootstrapError> {
    let me = identity().await?;
    let address = me
        .address
        .parse()
        .map_err(|_| BootstrapError::Address(me.address.clone()))?;
    let ids = SecretIds {
        ca: setting("DOCKER_CA_SECRET")?,
        client: setting("PROCESSOR_TLS_SECRET")?,
    };
    let dir = PathBuf::from(optional("DOCKER_TLS_DIR").unwrap_or_else(|| "/etc/docker/tls".into()));
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets = Secrets::new(aws_sdk_secretsmanager::Client::new(&sdk));
    provision(
        &me.instance_id,
        address,
        &store(&sdk).await?,
        &secrets,
        &ids,
        &dir,
        deadline()?,
    )
    .await?;
    Ok(format!("certificate for {address} in {}", dir.display()))
}

async fn boot() -> Result<String, BootstrapError> {
    let me = identity().await?;
    let deadline = deadline()?;
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    tracing::info!(instance_id = %me.instance_id, address = %me.address, role = ?me.role, "booting");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // A worker is given only the worker token's secret (its role may read nothing else).
    let tokens = TokenSecrets::new(
        Secrets::new(aws_sdk_secretsmanager::Client::new(&sdk)),
        match me.role {
            Role::Manager => Some(setting("MANAGER_TOKEN_SECRET")?),
            Role::Worker => None,
        },
        setting("WORKER_TOKEN_SECRET")?,
    );
    let stores = Stores {
        record: &store(&sdk).await?,
        tokens: &tokens,
    };
    let booted = run(&me, &LocalEngine::connect(&host)?, &stores, deadline).await;
    if let (Some(stack), Some(resource)) = (optional("SIGNAL_STACK"), optional("SIGNAL_RESOURCE")) {
        let client = aws_sdk_cloudformation::Client::new(&sdk);
        let success = booted.is_ok();
        match swarm_aws::adapters::cloudformation::signal(
            &client,
            &stack,
            &resource,
            &me.instance_id,
            success,
        )
        .await
        {
            Ok(()) => {
                tracing::info!(step = "signal", instance_id = %me.instance_id, success, "signalled CloudFormation")
            }
            // The node's state is what matters; CloudFormation times out on a lost signal.
            Err(error) => {
                tracing::warn!(step = "signal", instance_id = %me.instance_id, error = %error, cause = swarm_aws::error::error_chain(&error).as_deref(), "cannot signal CloudFormation")
            }
        }
    }
    Ok(format!("{:?}", booted?))
}
