//! The boot flow: read (engine, record), [`decide`], act, read again, until the node is in
//! the swarm or the deadline comes.

use std::time::Duration;

use swarm_aws::adapters::engine::LocalEngine;
use swarm_aws::cluster::{ClusterRecord, TokenRole};
use swarm_aws::error::error_chain;
use swarm_aws::ports::{ClusterStore, TokenStore};

use crate::BootstrapError;
use crate::decide::{Boot, Role, decide};
use crate::retry::{Rounds, retrying};

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

/// What one boot has seen so far, for the next round and for the error at the deadline.
#[derive(Default)]
struct Progress {
    /// What the last round waited for.
    waiting_for: String,
    /// Join calls made: each puts the next recorded manager first.
    joins: usize,
    /// Whether the last join call returned an error.
    join_failed: bool,
    /// The last join failure: the swarm, its managers, the error.
    join_failure: Option<(String, String, Box<swarm_aws::error::Error>)>,
}

/// Where the boot reads and writes: the cluster record and the join tokens' secrets.
pub struct Stores<'a, C, T> {
    /// The cluster record.
    pub record: &'a C,
    /// The join tokens.
    pub tokens: &'a T,
}

/// Boots the node into the swarm, waiting at most `deadline`; a failed call is retried until
/// then ([`retrying`]).
pub async fn run<C: ClusterStore, T: TokenStore>(
    me: &Identity,
    engine: &LocalEngine,
    stores: &Stores<'_, C, T>,
    deadline: Duration,
) -> Result<Booted, BootstrapError> {
    let mut progress = Progress {
        // Until a round gets as far as deciding: every call so far failed.
        waiting_for: "DynamoDB and the engine to answer".to_owned(),
        ..Progress::default()
    };
    let rounds = retrying(deadline, async || {
        round(me, engine, stores, &mut progress).await
    })
    .await?;
    let last_error = match rounds {
        Rounds::Done(booted) => return Ok(booted),
        Rounds::OutOfTime(last_error) => last_error,
    };
    match progress.join_failure {
        Some((swarm_id, managers, last)) => Err(BootstrapError::SwarmGone {
            swarm_id,
            managers,
            last,
        }),
        None => Err(BootstrapError::Timeout {
            seconds: deadline.as_secs(),
            waiting_for: progress.waiting_for,
            last_error,
        }),
    }
}

/// One round: read (engine, record), [`decide`], act. `Some` once the node is in the swarm.
async fn round<C: ClusterStore, T: TokenStore>(
    me: &Identity,
    engine: &LocalEngine,
    stores: &Stores<'_, C, T>,
    progress: &mut Progress,
) -> Result<Option<Booted>, BootstrapError> {
    let store = stores.record;
    let state = engine.state().await?;
    let label = format!("instance-id={}", me.instance_id);
    if !state.labels.contains(&label) {
        return Err(BootstrapError::MissingLabel {
            expected: me.instance_id.clone(),
        });
    }
    let advertised = format!("{}:{}", me.address, swarm_aws::cluster::SWARM_PORT);
    let record = store.read().await?;
    match decide(
        me.role,
        state.membership,
        progress.join_failed,
        record.as_ref(),
        &me.instance_id,
    ) {
        Boot::AlreadyMember => {
            if state.is_manager
                && let Some(ClusterRecord::Ready(swarm)) = &record
            {
                store.add_manager(&advertised).await?;
                keep_tokens(me, engine, stores, swarm.legacy_tokens.is_some()).await?;
            }
            if progress.joins > 0 {
                // A join that Docker timed out, completed in the background since.
                let swarm_id = match &record {
                    Some(ClusterRecord::Ready(swarm)) => swarm.id.clone(),
                    _ => String::new(),
                };
                tracing::info!(step = "join", %swarm_id, "joined the swarm");
                return Ok(Some(Booted::Joined(swarm_id)));
            }
            tracing::info!(
                step = "already_member",
                "the node is in the swarm already: nothing to do"
            );
            Ok(Some(Booted::AlreadyMember))
        }
        Boot::Claim => {
            let claim = store.claim(&me.instance_id).await?;
            tracing::info!(
                step = "claim",
                ?claim,
                "claimed the right to initialise the swarm"
            );
            Ok(None)
        }
        Boot::Init => {
            let (swarm, tokens) = engine.init(&me.address, me.address_pool.as_deref()).await?;
            // The tokens first: a record that says `ready` has its tokens to join with.
            stores.tokens.write(&tokens).await?;
            store.publish(&me.instance_id, &swarm).await?;
            tracing::info!(step = "init", swarm_id = %swarm.id, "initialised the swarm and recorded it");
            Ok(Some(Booted::Initialized(swarm.id)))
        }
        Boot::Publish => {
            let (swarm, tokens) = engine.swarm(&me.address).await?;
            stores.tokens.write(&tokens).await?;
            store.publish(&me.instance_id, &swarm).await?;
            tracing::info!(step = "init", swarm_id = %swarm.id, "recorded the swarm this node initialised");
            Ok(Some(Booted::Initialized(swarm.id)))
        }
        Boot::Wait(reason) => {
            progress.waiting_for = reason.to_owned();
            tracing::info!(step = "wait", reason, "waiting");
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(None)
        }
        Boot::Leave => {
            tracing::warn!(
                step = "leave",
                "the join is stuck on one manager: leaving it to join through the next"
            );
            engine.leave().await?;
            progress.join_failed = false;
            Ok(None)
        }
        Boot::Join(swarm) => {
            let role = match me.role {
                Role::Manager => TokenRole::Manager,
                Role::Worker => TokenRole::Worker,
            };
            // Its secret, or the record of an earlier version that still holds it.
            let token = match stores.tokens.read(role).await? {
                Some(token) => token,
                None => match &swarm.legacy_tokens {
                    Some(tokens) => tokens.of(role).clone(),
                    None => {
                        let reason = "the swarm is recorded but its join token is not written yet";
                        progress.waiting_for = reason.to_owned();
                        tracing::info!(step = "wait", reason, "waiting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        return Ok(None);
                    }
                },
            };
            let token = &token;
            // Docker joins through the first address only: each attempt leads with the next.
            let mut managers = swarm.managers.clone();
            if !managers.is_empty() {
                let len = managers.len();
                managers.rotate_left(progress.joins % len);
            }
            progress.joins += 1;
            match engine.join(&managers, token, &me.address).await {
                Ok(()) => {
                    progress.join_failed = false;
                    if me.role == Role::Manager {
                        store.add_manager(&advertised).await?;
                        keep_tokens(me, engine, stores, swarm.legacy_tokens.is_some()).await?;
                    }
                    tracing::info!(step = "join", swarm_id = %swarm.id, "joined the swarm");
                    Ok(Some(Booted::Joined(swarm.id.clone())))
                }
                Err(error) => {
                    tracing::warn!(step = "join", error = %error, cause = error_chain(&error).as_deref(), managers = managers.join(","), "cannot join yet: retrying");
                    progress.waiting_for = format!("a manager of swarm {} to answer", swarm.id);
                    progress.join_failed = true;
                    progress.join_failure =
                        Some((swarm.id.clone(), swarm.managers.join(", "), Box::new(error)));
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok(None)
                }
            }
        }
    }
}

/// On a manager in the swarm: the tokens' secrets hold the swarm's tokens as they are now (a
/// rotation by hand is carried over; written only when they differ), and a record of an
/// earlier version (`legacy`) is rid of its tokens, which every role reading it could see.
async fn keep_tokens<C: ClusterStore, T: TokenStore>(
    me: &Identity,
    engine: &LocalEngine,
    stores: &Stores<'_, C, T>,
    legacy: bool,
) -> Result<(), BootstrapError> {
    let (_, tokens) = engine.swarm(&me.address).await?;
    stores.tokens.write(&tokens).await?;
    if legacy {
        stores.record.forget_tokens().await?;
        tracing::info!(
            step = "tokens",
            "moved the join tokens out of the cluster record into their secrets"
        );
    }
    Ok(())
}
