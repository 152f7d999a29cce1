//! The node's own Docker engine, for the node bootstrap: is it in a swarm, does it carry its
//! instance-id label, initialise or join a swarm. Through `bollard` over the local socket.

use std::time::Duration;

use bollard::Docker;
use bollard::models::{LocalNodeState, SwarmInitRequest, SwarmJoinRequest};

use crate::cluster::{JoinToken, JoinTokens, SWARM_PORT, Swarm};
use crate::error::Error;

/// Where the engine stands with a swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// In no swarm, and not joining one.
    Out,
    /// A join goes on in the background: Docker gave up waiting for it (after 20 s) but
    /// keeps trying, through the one manager it was given, for good.
    Joining {
        /// Whether the swarm has issued the node its identity (certificate) yet: if so, the
        /// swarm knows the node and the join is under way, not stuck.
        known: bool,
    },
    /// An active member.
    Member,
}

/// The engine's swarm state as the bootstrap needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineState {
    /// Where it stands with a swarm.
    pub membership: Membership,
    /// Whether it is a manager.
    pub is_manager: bool,
    /// Its engine labels (`key=value`).
    pub labels: Vec<String>,
}

/// The local engine.
pub struct LocalEngine {
    docker: Docker,
}

impl LocalEngine {
    /// The engine at `host` (`unix:///var/run/docker.sock`).
    pub fn connect(host: &str) -> Result<Self, Error> {
        let docker = Docker::connect_with_unix(host, 60, bollard::API_DEFAULT_VERSION).map_err(
            |source| Error::Endpoint {
                endpoint: host.to_owned(),
                source,
            },
        )?;
        Ok(Self { docker })
    }

    /// Its swarm state and labels.
    pub async fn state(&self) -> Result<EngineState, Error> {
        let info = self.docker.info().await.map_err(|source| Error::Docker {
            call: "info",
            source,
        })?;
        let swarm = info.swarm.unwrap_or_default();
        Ok(EngineState {
            membership: match swarm.local_node_state {
                Some(LocalNodeState::ACTIVE) => Membership::Member,
                Some(LocalNodeState::PENDING) => Membership::Joining {
                    known: swarm.node_id.is_some_and(|id| !id.is_empty()),
                },
                _ => Membership::Out,
            },
            is_manager: swarm.control_available == Some(true),
            labels: info.labels.unwrap_or_default(),
        })
    }

    /// Initialises a new swarm advertising `address`; returns it as the record holds it, and
    /// its join tokens.
    pub async fn init(
        &self,
        address: &str,
        address_pool: Option<&str>,
    ) -> Result<(Swarm, JoinTokens), Error> {
        self.docker
            .init_swarm(SwarmInitRequest {
                listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
                advertise_addr: Some(address.into()),
                default_addr_pool: address_pool.map(|pool| vec![pool.to_owned()]),
                subnet_size: address_pool.map(|_| 24),
                ..Default::default()
            })
            .await
            .map_err(|source| Error::Docker {
                call: "swarm init",
                source,
            })?;
        self.swarm(address).await
    }

    /// The swarm this manager is in, as the record holds it, with `address` (this manager's)
    /// as its one manager, and its join tokens: what [`LocalEngine::init`] returns, read again.
    pub async fn swarm(&self, address: &str) -> Result<(Swarm, JoinTokens), Error> {
        let swarm = self
            .docker
            .inspect_swarm()
            .await
            .map_err(|source| Error::Docker {
                call: "swarm inspect",
                source,
            })?;
        let tokens = swarm.join_tokens.unwrap_or_default();
        Ok((
            Swarm {
                id: swarm.id.unwrap_or_default(),
                managers: vec![format!("{address}:{SWARM_PORT}")],
                legacy_tokens: None,
            },
            JoinTokens {
                manager: JoinToken::new(tokens.manager.unwrap_or_default()),
                worker: JoinToken::new(tokens.worker.unwrap_or_default()),
            },
        ))
    }

    /// Gives up a join that goes on in the background ([`Membership::Joining`]), so that
    /// another can be made through another manager. Idempotent: a node in no swarm is left
    /// as it is.
    pub async fn leave(&self) -> Result<(), Error> {
        match self
            .docker
            .leave_swarm(Some(bollard::query_parameters::LeaveSwarmOptions {
                force: true,
            }))
            .await
        {
            // 503 "This node is not part of a swarm": nothing to leave.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 503, ..
            }) => Ok(()),
            other => other.map_err(|source| Error::Docker {
                call: "swarm leave",
                source,
            }),
        }
    }

    /// Joins the swarm through the first of `managers` that accepts a connection (Docker
    /// joins through the first address it is given, and only that one), with `token`,
    /// advertising `address`.
    pub async fn join(
        &self,
        managers: &[String],
        token: &JoinToken,
        address: &str,
    ) -> Result<(), Error> {
        // A recorded manager may be gone (terminated since): a join through it waits out a
        // long connect timeout. The ones that accept a connection now are given, if any.
        // All probed at once: the slowest costs the probe's timeout, not each in turn.
        let probes = managers.iter().map(|manager| async move {
            let connect = tokio::net::TcpStream::connect(manager.as_str());
            matches!(
                tokio::time::timeout(Duration::from_secs(1), connect).await,
                Ok(Ok(_))
            )
            .then(|| manager.clone())
        });
        let reachable: Vec<String> = futures_util::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect();
        let remote = if reachable.is_empty() {
            managers.to_vec()
        } else {
            reachable
        };
        self.docker
            .join_swarm(SwarmJoinRequest {
                listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
                advertise_addr: Some(address.into()),
                remote_addrs: Some(remote),
                join_token: Some(token.expose().into()),
                ..Default::default()
            })
            .await
            .map_err(|source| Error::Docker {
                call: "swarm join",
                source,
            })
    }
}
