//! The boot flow: read (engine, record), [`decide`], act, read again, until the node is in
//! the swarm or the deadline comes.

use std::time::{Duration, Instant};

use swarm_aws::adapters::engine::LocalEngine;
use swarm_aws::cluster::ClusterRecord;
use swarm_aws::error::error_chain;
use swarm_aws::ports::{Claim, ClusterStore};

use crate::BootstrapError;
use crate::decide::{Boot, Role, decide};

/// Who this node is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Its EC2 instance id.
    pub instance_id: String,
    /// Its private address, which the swarm advertises.
    pub address: String,
    /// Manager or worker.
    pub role: Role,
    /// The address pool of overlay networks (CIDR), set when this node initialises the swarm;
    /// `None`: Docker's default, 10.0.0.0/8, which may collide with the VPC's.
    pub address_pool: Option<String>,
}

/// How the boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Booted {
    /// It was in the swarm already.
    AlreadyMember,
    /// It initialised the swarm with this id.
    Initialized(String),
    /// It joined the swarm with this id.
    Joined(String),
}

/// Boots the node into the swarm, waiting at most `deadline`.
pub async fn run(
    me: &Identity,
    engine: &LocalEngine,
    store: &impl ClusterStore,
    deadline: Duration,
) -> Result<Booted, BootstrapError> {
    let started = Instant::now();
    let state = engine.state().await?;
    let label = format!("instance-id={}", me.instance_id);
    if !state.labels.contains(&label) {
        return Err(BootstrapError::MissingLabel {
            expected: me.instance_id.clone(),
        });
    }
    let advertised = format!("{}:{}", me.address, swarm_aws::cluster::SWARM_PORT);
    let mut waiting_for = String::from("nothing yet");
    let mut join_failure = None;
    while started.elapsed() < deadline {
        let state = engine.state().await?;
        let record = store.read().await?;
        match decide(me.role, state.in_swarm, record.as_ref(), &me.instance_id) {
            Boot::AlreadyMember => {
                if state.is_manager && matches!(record, Some(ClusterRecord::Ready(_))) {
                    store.add_manager(&advertised).await?;
                }
                tracing::info!(
                    step = "already_member",
                    "the node is in the swarm already: nothing to do"
                );
                return Ok(Booted::AlreadyMember);
            }
            Boot::Claim => {
                let claim = store.claim(&me.instance_id).await?;
                tracing::info!(
                    step = "claim",
                    ?claim,
                    "claimed the right to initialise the swarm"
                );
                if claim == Claim::Lost {
                    continue;
                }
            }
            Boot::Init => {
                let swarm = engine.init(&me.address, me.address_pool.as_deref()).await?;
                store.publish(&me.instance_id, &swarm).await?;
                tracing::info!(step = "init", swarm_id = %swarm.id, "initialised the swarm and recorded it");
                return Ok(Booted::Initialized(swarm.id));
            }
            Boot::Wait(reason) => {
                waiting_for = reason.to_owned();
                tracing::info!(step = "wait", reason, "waiting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Boot::Join(swarm) => {
                let token = match me.role {
                    Role::Manager => &swarm.manager_token,
                    Role::Worker => &swarm.worker_token,
                };
                match engine.join(&swarm.managers, token, &me.address).await {
                    Ok(()) => {
                        if me.role == Role::Manager {
                            store.add_manager(&advertised).await?;
                        }
                        tracing::info!(step = "join", swarm_id = %swarm.id, "joined the swarm");
                        return Ok(Booted::Joined(swarm.id.clone()));
                    }
                    Err(error) => {
                        tracing::warn!(step = "join", error = %error, cause = error_chain(&error), managers = swarm.managers.join(","), "cannot join yet: retrying");
                        waiting_for = format!("a manager of swarm {} to answer", swarm.id);
                        join_failure =
                            Some((swarm.id.clone(), swarm.managers.join(", "), Box::new(error)));
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        }
    }
    match join_failure {
        Some((swarm_id, managers, last)) => Err(BootstrapError::SwarmGone {
            swarm_id,
            managers,
            last,
        }),
        None => Err(BootstrapError::Timeout {
            seconds: deadline.as_secs(),
            waiting_for,
        }),
    }
}
