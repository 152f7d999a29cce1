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
    LocalNodeState, Node, NodeSpec, NodeSpecAvailabilityEnum, NodeSpecRoleEnum,
    NodeState as BollardNodeState, Reachability, Task, TaskState,
};
use bollard::query_parameters::{DeleteNodeOptions, ListTasksOptions, UpdateNodeOptions};
use chrono::{DateTime, Utc};

use super::dynamodb::DynamoStore;
use crate::calls::{self, Outcome};
use crate::cluster::{ClusterRecord, SWARM_PORT};
use crate::drain::{
    Availability, NodeFacts, NodeRole, NodeState, ServiceFacts, ServiceMode, SwarmView, TaskFacts,
};
use crate::error::Error;
use crate::ids::InstanceId;
use crate::ports::{ClusterStore, SwarmNodes};
use crate::sweep::SweepNode;

/// The engine label that carries a node's EC2 instance id (the node bootstrap sets it).
pub const INSTANCE_ID_LABEL: &str = "instance-id";

/// The managers' Engine API over mutual TLS (the stack opens it to the processor only).
pub const MANAGER_TLS_PORT: u16 = 2376;
/// How long a manager may take to answer the probe before the next one is tried.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of every other Engine API call, in seconds.
const CALL_TIMEOUT_SECS: u64 = 30;
/// How long a node may list without a description before it is taken for a join that died
/// halfway. A live one describes itself within a tenth of a second, or within the seconds a
/// leader election takes when the leader it was describing itself to went away.
const DESCRIBE_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
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

/// The engine label of a swarm node, if set.
pub fn engine_label<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.description
        .as_ref()?
        .engine
        .as_ref()?
        .labels
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Whether the node is yet to describe itself (engine version, labels) to the managers. A
/// node that has just joined lists with an empty description (`"Engine": {}`, no hostname) for
/// about a tenth of a second, and a manager is a reachable Raft member by then: without its
/// labels, it may be the very instance being looked for. One that is Down, or still blank
/// [`DESCRIBE_GRACE`] after it was created, is not waited for: a join that died halfway leaves
/// such a node behind for good, and it would hold up every termination until the deadline.
fn describing(node: &Node, now: DateTime<Utc>) -> bool {
    let described = node
        .description
        .as_ref()
        .and_then(|d| d.engine.as_ref())
        .and_then(|e| e.engine_version.as_ref())
        .is_some();
    let created = node
        .created_at
        .as_deref()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok());
    // No creation time (never seen from Docker): waited for, the safe side.
    let recent = created.is_none_or(|at| now - at.with_timezone(&Utc) < DESCRIBE_GRACE);
    let down = node.status.as_ref().and_then(|s| s.state) == Some(BollardNodeState::DOWN);
    !described && recent && !down
}

fn facts(node: &Node) -> NodeFacts {
    let spec = node.spec.as_ref();
    NodeFacts {
        id: node.id.clone().unwrap_or_default(),
        role: match spec.and_then(|s| s.role) {
            Some(NodeSpecRoleEnum::MANAGER) => NodeRole::Manager,
            _ => NodeRole::Worker,
        },
        availability: match spec.and_then(|s| s.availability) {
            Some(NodeSpecAvailabilityEnum::DRAIN) => Availability::Drain,
            Some(NodeSpecAvailabilityEnum::PAUSE) => Availability::Pause,
            _ => Availability::Active,
        },
        state: match node.status.as_ref().and_then(|s| s.state) {
            Some(BollardNodeState::READY) => NodeState::Ready,
            Some(BollardNodeState::DOWN) => NodeState::Down,
            _ => NodeState::Other,
        },
        reachable: node.manager_status.as_ref().and_then(|m| m.reachability)
            == Some(Reachability::REACHABLE),
    }
}

/// A node as the membership sweep reads it: its facts, the instance its engine names, and how
/// long it has been Down (since the node object last changed, which a state change does).
fn sweep_node(node: &Node, now: DateTime<Utc>) -> SweepNode {
    let facts = facts(node);
    let since = |at: Option<&str>| {
        at.and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .and_then(|at| (now - at.with_timezone(&Utc)).to_std().ok())
    };
    SweepNode {
        instance_id: engine_label(node, INSTANCE_ID_LABEL).and_then(|id| id.try_into().ok()),
        down_for: (facts.state == NodeState::Down)
            .then(|| since(node.updated_at.as_deref()).unwrap_or_default()),
        id: facts.id,
        role: facts.role,
        state: facts.state,
        reachable: facts.reachable,
    }
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

/// A task that occupies its node: assigned and not yet stopped.
fn occupies(task: &Task) -> bool {
    matches!(
        task.status.as_ref().and_then(|s| s.state),
        Some(
            TaskState::ASSIGNED
                | TaskState::ACCEPTED
                | TaskState::PREPARING
                | TaskState::READY
                | TaskState::STARTING
                | TaskState::RUNNING
        )
    )
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
            let mode = spec.mode.unwrap_or_default();
            let mode = match (&mode.replicated, &mode.global) {
                (Some(replicated), _) => ServiceMode::Replicated {
                    desired: replicated.replicas.unwrap_or(1).max(0) as u64,
                },
                (None, Some(_)) => ServiceMode::Global,
                _ => ServiceMode::Job,
            };
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
                let running = current
                    .iter()
                    .filter(|t| t.node_id.as_deref() != Some(node_id))
                    .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
                    .count() as u64;
                let unplaceable = current
                    .iter()
                    .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::PENDING))
                    .filter_map(|t| t.status.as_ref().and_then(|s| s.err.clone()))
                    .find(|err| err.contains("no suitable node"));
                (running, unplaceable)
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
        let managers: Vec<&Node> = nodes
            .iter()
            .filter(|n| n.manager_status.is_some())
            .collect();
        let now = Utc::now();
        let mut view = SwarmView {
            undescribed_nodes: nodes.iter().filter(|n| describing(n, now)).count() as u32,
            managers: managers.len() as u32,
            reachable_managers: managers
                .iter()
                .filter(|n| {
                    n.manager_status.as_ref().and_then(|m| m.reachability)
                        == Some(Reachability::REACHABLE)
                })
                .count() as u32,
            ..SwarmView::default()
        };
        let Some(node) = nodes
            .iter()
            .find(|n| engine_label(n, INSTANCE_ID_LABEL) == Some(instance_id.as_str()))
        else {
            return Ok(view);
        };
        let node_facts = facts(node);
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
            .filter(|t| occupies(t))
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
        Ok(nodes.iter().map(|node| sweep_node(node, now)).collect())
    }

    async fn changed(&self, at_most: Duration) {
        // Swarm emits no event when a task starts on another node (task events are not in
        // the swarm scope), so a short sleep between observations is the reaction time.
        tokio::time::sleep(at_most).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GET /nodes` entries of one manager as it joined (Docker 20.10.24), 80 ms apart.
    const JUST_JOINED: &str = r#"{"ID":"zhnl2o","CreatedAt":"2026-11-25T22:17:03.600000000Z","Spec":{"Role":"manager","Availability":"active"},
        "Description":{"Platform":{},"Resources":{},"Engine":{},"TLSInfo":{}},
        "Status":{"State":"unknown"},"ManagerStatus":{"Reachability":"reachable","Addr":"10.77.0.28:2377"}}"#;
    const DESCRIBED: &str = r#"{"ID":"zhnl2o","Spec":{"Role":"manager","Availability":"active"},
        "Description":{"Hostname":"ip-10-77-0-28","Platform":{"Architecture":"x86_64","OS":"linux"},
            "Resources":{},"Engine":{"EngineVersion":"20.10.24+dfsg1","Labels":{"instance-id":"i-65161114a79c4477a"}},"TLSInfo":{}},
        "Status":{"State":"ready"},"ManagerStatus":{"Reachability":"reachable","Addr":"10.77.0.28:2377"}}"#;

    fn node(json: &str) -> Node {
        serde_json::from_str(json).expect("a node as the Engine API lists it")
    }

    /// `seconds` after the node of [`JUST_JOINED`] was created.
    fn after(seconds: i64) -> DateTime<Utc> {
        let created = node(JUST_JOINED).created_at.expect("a creation time");
        let created = DateTime::parse_from_rfc3339(&created).expect("a time");
        created.with_timezone(&Utc) + chrono::TimeDelta::seconds(seconds)
    }

    #[test]
    fn a_node_that_has_just_joined_is_not_yet_described_though_it_lists_an_engine() {
        let joined = node(JUST_JOINED);
        assert!(
            joined
                .description
                .as_ref()
                .and_then(|d| d.engine.as_ref())
                .is_some(),
            "the API lists an empty engine object, not none"
        );
        assert!(describing(&joined, after(0)));
        assert_eq!(engine_label(&joined, INSTANCE_ID_LABEL), None);
    }

    #[test]
    fn a_node_left_undescribed_and_down_is_not_waited_for() {
        let dead = node(&JUST_JOINED.replace(r#""State":"unknown""#, r#""State":"down""#));
        assert!(!describing(&dead, after(0)));
    }

    #[test]
    fn a_node_still_undescribed_a_minute_after_it_was_created_is_not_waited_for() {
        let joined = node(JUST_JOINED);
        assert!(describing(&joined, after(59)));
        assert!(!describing(&joined, after(61)));
    }

    #[test]
    fn a_described_node_carries_its_instance_id() {
        let node = node(DESCRIBED);
        assert!(!describing(&node, after(0)));
        assert_eq!(
            engine_label(&node, INSTANCE_ID_LABEL),
            Some("i-65161114a79c4477a")
        );
        assert!(facts(&node).reachable);
    }

    #[test]
    fn a_down_manager_reads_for_the_sweep_with_its_instance_and_how_long_it_has_been_down() {
        let down = node(
            &DESCRIBED
                .replace(
                    r#""ID":"zhnl2o","#,
                    r#""ID":"zhnl2o","UpdatedAt":"2026-11-25T22:17:13.600000000Z","#,
                )
                .replace(r#""State":"ready""#, r#""State":"down""#)
                .replace(
                    r#""Reachability":"reachable""#,
                    r#""Reachability":"unreachable""#,
                ),
        );
        let read = sweep_node(&down, after(70));
        assert_eq!(read.state, NodeState::Down);
        assert_eq!(read.role, NodeRole::Manager);
        assert!(!read.reachable);
        assert_eq!(
            read.instance_id.as_ref().map(InstanceId::as_str),
            Some("i-65161114a79c4477a")
        );
        assert_eq!(read.down_for, Some(Duration::from_secs(60)));
        let ready = sweep_node(&node(DESCRIBED), after(70));
        assert_eq!(ready.down_for, None);
        assert_eq!(sweep_node(&node(JUST_JOINED), after(0)).instance_id, None);
    }
}
