//! [`SwarmNodes`] over the Docker Engine API of the swarm's managers, with `bollard`.
//!
//! The adapter is given several manager endpoints (`unix:///...`, or `tcp://host:2376` with
//! mutual TLS). Every call goes to the first one that answers as a manager of the swarm and is
//! not the node being acted on (a manager being demoted or removed cannot be asked to do it
//! to itself, and soon will not answer); an endpoint that does not answer within a second or
//! two is passed over.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    LocalNodeState, Node, NodeSpec, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, Task,
};
use bollard::query_parameters::{DeleteNodeOptions, ListTasksOptions, UpdateNodeOptions};
use chrono::Utc;

use super::dynamodb::DynamoStore;
use crate::calls::{self, Outcome};
use crate::cluster::{ClusterRecord, SWARM_PORT};
use crate::drain::read;
use crate::drain::{ServiceFacts, ServiceMode, SwarmView, TaskFacts};
use crate::error::Error;
use crate::ids::InstanceId;
use crate::ports::{ClusterStore, SwarmNodes};
use crate::sweep::SweepNode;

/// The managers' Engine API over mutual TLS (the stack opens it to the processor only).
pub const MANAGER_TLS_PORT: u16 = 2376;
/// How long a manager may take to answer the probe before the next one is tried.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of every other Engine API call, in seconds.
const CALL_TIMEOUT_SECS: u64 = 30;
/// Tries of a node update answered "update out of sequence" (someone else updated it).
const UPDATE_TRIES: usize = 5;

/// Client certificate, key and CA for `tcp://` endpoints: Docker's `DOCKER_CERT_PATH`
/// convention (`ca.pem`, `cert.pem`, `key.pem` in one directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The directory holding `ca.pem`, `cert.pem` and `key.pem`.
    pub dir: PathBuf,
}

/// The swarm, reached through its managers' Engine APIs.
pub struct DockerSwarm {
    /// The endpoints to try: those configured, then those the cluster record names.
    endpoints: Mutex<Vec<String>>,
    tls: Option<TlsFiles>,
    /// Where the managers are recorded (the cluster record), when the processor finds them
    /// there rather than in its configuration: managers come and go with every rolling update.
    directory: Option<DynamoStore>,
    /// Connected clients by endpoint (a client is cheap to keep, its pool reused).
    clients: Mutex<HashMap<String, Docker>>,
    /// The endpoint that answered last: tried first, so a dead manager costs its probe
    /// timeout once, not on every call.
    preferred: Mutex<Option<String>>,
    /// The swarm acted on: the recorded one, or else the first a manager answered for. A
    /// manager of another swarm is never used: there, every node would look absent, and an
    /// action would be completed with nothing drained.
    swarm_id: Mutex<Option<String>>,
}

impl DockerSwarm {
    /// An adapter over `endpoints`, tried in order; `tls` for the `tcp://` ones.
    pub fn new(endpoints: Vec<String>, tls: Option<TlsFiles>) -> Self {
        Self {
            endpoints: Mutex::new(endpoints),
            tls,
            directory: None,
            clients: Mutex::new(HashMap::new()),
            preferred: Mutex::new(None),
            swarm_id: Mutex::new(None),
        }
    }

    /// Also finds the managers in the cluster record (`tcp://address:2376`, the managers'
    /// mutual-TLS port), read again whenever none of the known ones answers.
    pub fn with_directory(mut self, directory: DynamoStore) -> Self {
        self.directory = Some(directory);
        self
    }

    fn client(&self, endpoint: &str) -> Result<Docker, Error> {
        let mut clients = lock(&self.clients);
        if let Some(client) = clients.get(endpoint) {
            return Ok(client.clone());
        }
        let version = bollard::API_DEFAULT_VERSION;
        let client = if endpoint.starts_with("unix://") {
            Docker::connect_with_unix(endpoint, CALL_TIMEOUT_SECS, version)
        } else if let Some(tls) = &self.tls {
            Docker::connect_with_ssl(
                endpoint,
                &tls.dir.join("key.pem"),
                &tls.dir.join("cert.pem"),
                &tls.dir.join("ca.pem"),
                CALL_TIMEOUT_SECS,
                version,
            )
        } else {
            Docker::connect_with_http(endpoint, CALL_TIMEOUT_SECS, version)
        }
        .map_err(|source| Error::Endpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?;
        clients.insert(endpoint.to_owned(), client.clone());
        Ok(client)
    }

    /// The first endpoint that answers as a swarm manager and is not `exclude`: the one that
    /// answered last first, then the others in order, then (when none answers) those the
    /// cluster record names now.
    async fn manager(&self, exclude: Option<&str>) -> Result<Docker, Error> {
        if let Some(directory) = &self.directory
            && lock(&self.swarm_id).is_none()
            && let Some(ClusterRecord::Ready(swarm)) = directory.read().await?
        {
            tracing::info!(swarm_id = swarm.id, "acting on the recorded swarm");
            *lock(&self.swarm_id) = Some(swarm.id);
        }
        let mut tried = Vec::new();
        if let Some(client) = self.first_answering(exclude, &mut tried).await {
            return Ok(client);
        }
        if let Some(directory) = &self.directory {
            let recorded = match directory.read().await? {
                Some(ClusterRecord::Ready(swarm)) => swarm.managers,
                _ => Vec::new(),
            };
            let endpoints: Vec<String> = recorded
                .iter()
                .map(|address| {
                    let host = address
                        .rsplit_once(':')
                        .map_or(address.as_str(), |(host, _)| host);
                    format!("tcp://{host}:{MANAGER_TLS_PORT}")
                })
                .collect();
            // A block, so the guard is gone before the next await.
            let found_new = {
                let mut known = lock(&self.endpoints);
                let new: Vec<String> = endpoints
                    .into_iter()
                    .filter(|e| !known.contains(e))
                    .collect();
                let found_new = !new.is_empty();
                known.extend(new);
                found_new
            };
            if found_new && let Some(client) = self.first_answering(exclude, &mut tried).await {
                return Ok(client);
            }
        }
        Err(Error::NoManager {
            tried: tried.join("; "),
        })
    }

    async fn first_answering(
        &self,
        exclude: Option<&str>,
        tried: &mut Vec<String>,
    ) -> Option<Docker> {
        let preferred = lock(&self.preferred).clone();
        let endpoints = lock(&self.endpoints).clone();
        let order = preferred
            .iter()
            .chain(endpoints.iter().filter(|e| Some(*e) != preferred.as_ref()));
        for endpoint in order {
            match self.probe(endpoint, exclude).await {
                Ok(client) => {
                    *lock(&self.preferred) = Some(endpoint.clone());
                    return Some(client);
                }
                Err(why) => tried.push(format!("{endpoint}: {why}")),
            }
        }
        None
    }

    /// A client of `endpoint` if it answers as a manager of the swarm and is not `exclude`.
    async fn probe(&self, endpoint: &str, exclude: Option<&str>) -> Result<Docker, String> {
        let client = self.client(endpoint).map_err(|e| e.to_string())?;
        let info =
            match tokio::time::timeout(PROBE_TIMEOUT, counted("GET /info", client.info())).await {
                Err(_) => {
                    calls::record(calls::DOCKER, "GET /info", Outcome::Failed);
                    return Err(format!("no answer within {PROBE_TIMEOUT:?}"));
                }
                Ok(Err(error)) => return Err(error.to_string()),
                Ok(Ok(info)) => info,
            };
        let swarm = info.swarm.unwrap_or_default();
        if swarm.local_node_state != Some(LocalNodeState::ACTIVE)
            || swarm.control_available != Some(true)
        {
            return Err("not a swarm manager".into());
        }
        if exclude.is_some() && swarm.node_id.as_deref() == exclude {
            return Err("the node being acted on".into());
        }
        let id = swarm.cluster.and_then(|c| c.id);
        let mut pinned = lock(&self.swarm_id);
        match (pinned.as_deref(), id) {
            (Some(ours), Some(theirs)) if ours != theirs => {
                return Err(format!(
                    "a manager of another swarm ({theirs}), not of {ours}"
                ));
            }
            (None, Some(theirs)) => {
                // Said once: which swarm every later call acts on, and who answered first.
                tracing::info!(swarm_id = theirs, endpoint, "acting on this swarm");
                *pinned = Some(theirs);
            }
            _ => {}
        }
        Ok(client)
    }

    /// Updates a node's spec with `change`, carrying its version, reading it again when the
    /// answer is "update out of sequence" (someone else updated the node meanwhile).
    async fn update_node(
        &self,
        node_id: &str,
        change: impl Fn(&mut NodeSpec),
    ) -> Result<(), Error> {
        let manager = self.manager(Some(node_id)).await?;
        let mut tries = 0;
        loop {
            tries += 1;
            let node = counted("GET /nodes/ID", manager.inspect_node(node_id))
                .await
                .map_err(|source| Error::Docker {
                    call: "inspect node",
                    source,
                })?;
            let version = node.version.and_then(|v| v.index).unwrap_or_default();
            let mut spec = node.spec.unwrap_or_default();
            change(&mut spec);
            match counted(
                "POST /nodes/ID/update",
                manager.update_node(
                    node_id,
                    spec,
                    UpdateNodeOptions {
                        version: version as i64,
                    },
                ),
            )
            .await
            {
                Ok(()) => return Ok(()),
                Err(error)
                    if tries < UPDATE_TRIES
                        && error.to_string().contains("update out of sequence") =>
                {
                    tracing::debug!(
                        node_id,
                        tries,
                        "update out of sequence: reading the node again"
                    );
                }
                Err(source) => {
                    return Err(Error::Docker {
                        call: "update node",
                        source,
                    });
                }
            }
        }
    }
}

/// A std mutex of plain data: a panic elsewhere leaves it usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One Engine API call, `METHOD PATH` (`GET /nodes`), counted by [`calls::record`] with its
/// outcome.
async fn counted<T>(
    api: &str,
    call: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, bollard::errors::Error> {
    let result = call.await;
    calls::record(calls::DOCKER, api, Outcome::of_docker(&result));
    result
}

/// Every node of the swarm, through `manager`.
async fn list_nodes(manager: &Docker) -> Result<Vec<Node>, Error> {
    counted("GET /nodes", manager.list_nodes(None))
        .await
        .map_err(|source| Error::Docker {
            call: "list nodes",
            source,
        })
}

fn filters(pairs: &[(&str, &str)]) -> Option<ListTasksOptions> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in pairs {
        map.entry((*key).to_owned())
            .or_default()
            .push((*value).to_owned());
    }
    Some(ListTasksOptions { filters: Some(map) })
}

impl DockerSwarm {
    /// The services of `tasks`, by id, with where their tasks run now.
    async fn services(
        &self,
        manager: &Docker,
        node_id: &str,
        tasks: &[Task],
    ) -> Result<BTreeMap<String, ServiceFacts>, Error> {
        let ids: HashSet<&str> = tasks
            .iter()
            .filter_map(|t| t.service_id.as_deref())
            .collect();
        let mut services = BTreeMap::new();
        for id in ids {
            let service = match counted("GET /services/ID", manager.inspect_service(id, None)).await
            {
                Ok(service) => service,
                // Removed meanwhile: nothing to bring back.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => continue,
                Err(source) => {
                    return Err(Error::Docker {
                        call: "inspect service",
                        source,
                    });
                }
            };
            let spec = service.spec.unwrap_or_default();
            let mode = read::service_mode(&spec);
            let (running_elsewhere, unplaceable) = if matches!(mode, ServiceMode::Replicated { .. })
            {
                let current = counted(
                    "GET /tasks",
                    manager.list_tasks(filters(&[("service", id), ("desired-state", "running")])),
                )
                .await
                .map_err(|source| Error::Docker {
                    call: "list tasks",
                    source,
                })?;
                (
                    read::running_elsewhere(&current, node_id),
                    read::unplaceable(&current),
                )
            } else {
                (0, None)
            };
            services.insert(
                id.to_owned(),
                ServiceFacts {
                    name: spec.name.unwrap_or_else(|| id.to_owned()),
                    mode,
                    running_elsewhere,
                    unplaceable,
                },
            );
        }
        Ok(services)
    }
}

impl SwarmNodes for DockerSwarm {
    async fn observe(&self, instance_id: &InstanceId) -> Result<SwarmView, Error> {
        let manager = self.manager(None).await?;
        let nodes = list_nodes(&manager).await?;
        let (mut view, node) = read::swarm_view(&nodes, instance_id, Utc::now());
        let Some(node_facts) = node else {
            return Ok(view);
        };
        let tasks = counted(
            "GET /tasks",
            manager.list_tasks(filters(&[("node", &node_facts.id)])),
        )
        .await
        .map_err(|source| Error::Docker {
            call: "list tasks",
            source,
        })?;
        let services = self.services(&manager, &node_facts.id, &tasks).await?;
        let name_of = |service_id: &str| {
            services
                .get(service_id)
                .map_or_else(|| service_id.to_owned(), |s| s.name.clone())
        };
        view.tasks_on_node = tasks
            .iter()
            .filter(|t| read::occupies(t))
            .map(|t| TaskFacts {
                id: t.id.clone().unwrap_or_default(),
                service: name_of(t.service_id.as_deref().unwrap_or_default()),
            })
            .collect();
        view.services = services.into_values().collect();
        view.node = Some(node_facts);
        Ok(view)
    }

    async fn demote(&self, node_id: &str) -> Result<(), Error> {
        self.update_node(node_id, |spec| spec.role = Some(NodeSpecRoleEnum::WORKER))
            .await
    }

    async fn drain(&self, node_id: &str) -> Result<(), Error> {
        self.update_node(node_id, |spec| {
            spec.availability = Some(NodeSpecAvailabilityEnum::DRAIN)
        })
        .await
    }

    async fn remove(&self, node_id: &str) -> Result<(), Error> {
        let manager = self.manager(Some(node_id)).await?;
        // Its address, to forget it in the cluster record once it is gone: a manager's
        // address there would send later joins and lookups to a dead machine.
        let address = counted("GET /nodes/ID", manager.inspect_node(node_id))
            .await
            .ok()
            .and_then(|n| n.status?.addr);
        // Forced: the node is drained (no tasks) but its daemon may still be up, as the
        // instance waits in Terminating:Wait until the hook completes.
        match counted(
            "DELETE /nodes/ID",
            manager.delete_node(node_id, Some(DeleteNodeOptions { force: true })),
        )
        .await
        {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(source) => {
                return Err(Error::Docker {
                    call: "remove node",
                    source,
                });
            }
        }
        // An address is forgotten only while no other node has it: a terminated instance's
        // private address may already belong to its replacement.
        let taken = match &address {
            Some(address) => list_nodes(&manager).await?.iter().any(|n| {
                n.id.as_deref() != Some(node_id)
                    && n.status.as_ref().and_then(|s| s.addr.as_deref()) == Some(address)
            }),
            None => false,
        };
        if let Some(address) = address.filter(|_| !taken) {
            let endpoint = format!("tcp://{address}:{MANAGER_TLS_PORT}");
            lock(&self.endpoints).retain(|e| *e != endpoint);
            if let Some(directory) = &self.directory {
                directory
                    .remove_manager(&format!("{address}:{SWARM_PORT}"))
                    .await?;
            }
        }
        Ok(())
    }

    async fn members(&self) -> Result<Vec<SweepNode>, Error> {
        let nodes = list_nodes(&self.manager(None).await?).await?;
        let now = Utc::now();
        Ok(nodes
            .iter()
            .map(|node| read::sweep_node(node, now))
            .collect())
    }

    async fn changed(&self, at_most: Duration) {
        // Swarm emits no event when a task starts on another node (task events are not in
        // the swarm scope), so a short sleep between observations is the reaction time.
        tokio::time::sleep(at_most).await;
    }
}
