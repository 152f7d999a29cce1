//! [`SwarmNodes`] over the Docker Engine API of the swarm's managers, with `bollard`.
//!
//! The adapter is given several manager endpoints (`unix:///...`, or `tcp://host:2376` with
//! mutual TLS). Every call goes to the first one that answers as a manager of the swarm and is
//! not the node being acted on (a manager being demoted or removed cannot be asked to do it
//! to itself, and soon will not answer); an endpoint that does not answer within a second or
//! two is passed over. The manager found is then used as it is, over its long-lived
//! connection, with no probe before each call: the managers are probed again only when a call
//! to it fails in a way another manager may not.
//!
//! Every drain and the membership sweep read the swarm from one [`Snapshot`], refreshed by
//! one reader while anyone waits (one to four list calls, whatever the number of drains), and
//! read again after every change this process makes. When the listener sync runs, the
//! snapshot carries every service too (one list call), and the managers' event stream says
//! when a service changed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bollard::Docker;
use bollard::models::{LocalNodeState, Node, NodeSpec, NodeSpecAvailabilityEnum, NodeSpecRoleEnum};
use bollard::query_parameters::{
    DeleteNodeOptions, EventsOptionsBuilder, ListServicesOptions, ListTasksOptions,
    UpdateNodeOptions,
};
use chrono::Utc;
use futures_util::StreamExt;

use super::dynamodb::DynamoStore;
use super::engine_json;
use crate::calls::{self, Outcome};
use crate::cluster::{ClusterRecord, SWARM_PORT};
use crate::drain::SwarmView;
use crate::drain::read;
use crate::drain::snapshot::{Snapshot, drained_nodes, services_of};
use crate::drain::surge;
use crate::error::Error;
use crate::ids::InstanceId;
use crate::listeners::Publishing;
use crate::ports::{ClusterStore, Restoration, SwarmNodes};
use crate::sweep::SweepNode;

/// The managers' Engine API over mutual TLS (the stack opens it to the processor only).
pub const MANAGER_TLS_PORT: u16 = 2376;
/// How long a manager may take to answer the probe before the next one is tried.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of every other Engine API call, in seconds.
const CALL_TIMEOUT_SECS: u64 = 30;
/// Tries of a node update answered "update out of sequence" (someone else updated it).
const UPDATE_TRIES: usize = 5;
/// How long a call to the manager that answered last may take before the managers are
/// probed again: a manager lost with its instance drops packets rather than refusing.
const KNOWN_MANAGER_TIMEOUT: Duration = Duration::from_secs(10);
/// How old a snapshot may be, by default, for a drain to decide on it: the processor's poll.
const FRESH_FOR: Duration = Duration::from_millis(100);

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
    /// The manager that answered last (its endpoint and node id): used without a probe, and
    /// probed first when the managers are probed again, so a dead manager costs its timeout
    /// once, not on every call.
    preferred: Mutex<Option<Manager>>,
    /// The swarm acted on: the recorded one, or else the first a manager answered for. A
    /// manager of another swarm is never used: there, every node would look absent, and an
    /// action would be completed with nothing drained.
    swarm_id: Mutex<Option<String>>,
    /// The last snapshot, behind the lock its one reader holds while it reads the next.
    snapshot: tokio::sync::Mutex<Option<Taken>>,
    /// Changes this process made to the swarm: a snapshot read before the last one is stale.
    changes: AtomicU64,
    /// How old a snapshot may be for a drain to decide on it.
    fresh_for: Duration,
    /// Whether snapshots list every service (the listener sync asked once), not only those
    /// the drains served.
    all_services: AtomicBool,
    /// Where the managers' event stream resumes (Docker's `since`, `seconds.nanoseconds`):
    /// the events of a service that changed while the sync worked are replayed, not lost.
    events_since: Mutex<Option<String>>,
}

/// A manager found by a probe.
#[derive(Debug, Clone)]
struct Manager {
    endpoint: String,
    /// Its swarm node id: a call about that node goes to another manager.
    node_id: Option<String>,
}

/// A snapshot and when it was taken.
struct Taken {
    snapshot: Arc<Snapshot>,
    /// When its reading started.
    started: Instant,
    /// How long the reading took.
    took: Duration,
    /// The count of this process's changes when it started.
    changes: u64,
    /// Whether it lists every service.
    all_services: bool,
}

/// How long the event stream is followed after a service event for more of the same burst
/// (`docker stack deploy` changes many services at once): one sync for them all.
const EVENT_BURST: Duration = Duration::from_millis(200);

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
            snapshot: tokio::sync::Mutex::new(None),
            changes: AtomicU64::new(0),
            fresh_for: FRESH_FOR,
            all_services: AtomicBool::new(false),
            events_since: Mutex::new(None),
        }
    }

    /// How old a snapshot may be for a drain to decide on it (the processor's poll interval;
    /// 100 ms if not set).
    pub fn fresh_for(mut self, fresh_for: Duration) -> Self {
        self.fresh_for = fresh_for;
        self
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
        let failed = |source| Error::Endpoint {
            endpoint: endpoint.to_owned(),
            source,
        };
        let client = if endpoint.starts_with("unix://") {
            Docker::connect_with_unix(endpoint, CALL_TIMEOUT_SECS, version).map_err(failed)?
        } else if let Some(tls) = &self.tls {
            super::mutual_tls::client(endpoint, tls, CALL_TIMEOUT_SECS)?
        } else {
            Docker::connect_with_http(endpoint, CALL_TIMEOUT_SECS, version).map_err(failed)?
        };
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
        let preferred = lock(&self.preferred).clone().map(|m| m.endpoint);
        let endpoints = lock(&self.endpoints).clone();
        let order = preferred
            .iter()
            .chain(endpoints.iter().filter(|e| Some(*e) != preferred.as_ref()));
        for endpoint in order {
            match self.probe(endpoint, exclude).await {
                Ok((client, node_id)) => {
                    *lock(&self.preferred) = Some(Manager {
                        endpoint: endpoint.clone(),
                        node_id,
                    });
                    return Some(client);
                }
                Err(why) => tried.push(format!("{endpoint}: {why}")),
            }
        }
        None
    }

    /// The manager that answered last, unless it is `exclude`: asked without a probe.
    fn known_manager(&self, exclude: Option<&str>) -> Option<Docker> {
        let known = lock(&self.preferred).clone()?;
        if exclude.is_some() && known.node_id.as_deref() == exclude {
            return None;
        }
        self.client(&known.endpoint).ok()
    }

    /// One Engine API call (`call` names it in errors) through a manager other than
    /// `exclude`: the one that answered last, as it is; when that fails in a way another
    /// manager may not (no answer, not a manager any more), the managers are probed again and
    /// the call is made once more through the one found.
    async fn call<T, F, Fut>(
        &self,
        exclude: Option<&str>,
        call: &'static str,
        request: F,
    ) -> Result<T, Error>
    where
        F: Fn(Docker) -> Fut,
        Fut: Future<Output = Result<T, bollard::errors::Error>>,
    {
        if let Some(client) = self.known_manager(exclude) {
            match tokio::time::timeout(KNOWN_MANAGER_TIMEOUT, request(client)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(source)) if !read::another_manager_may_answer(&source) => {
                    return Err(Error::Docker { call, source });
                }
                Ok(Err(error)) => {
                    tracing::info!(call, %error, "the manager failed: looking for one again");
                }
                Err(_) => tracing::info!(
                    call,
                    timeout = ?KNOWN_MANAGER_TIMEOUT,
                    "the manager did not answer: looking for one again"
                ),
            }
            lock(&self.preferred).take();
        }
        let client = self.manager(exclude).await?;
        request(client)
            .await
            .map_err(|source| Error::Docker { call, source })
    }

    /// The swarm as it stands: the last snapshot if it is fresh, else a new one. Fresh: no
    /// change made by this process since it started, and it started within
    /// [`DockerSwarm::fresh_for`] of this ask, or within twice the time its reading took,
    /// whichever is longer (so that in a swarm so large a reading takes longer than a poll,
    /// reading still takes at most half the time). One reader at a time: whoever waited for
    /// it takes what it read.
    async fn snapshot(&self) -> Result<Arc<Snapshot>, Error> {
        self.snapshot_since(None).await
    }

    /// [`DockerSwarm::snapshot`], and when `not_before` is given, one whose reading started
    /// no earlier (a service event seen then is in it).
    async fn snapshot_since(&self, not_before: Option<Instant>) -> Result<Arc<Snapshot>, Error> {
        let asked = Instant::now();
        let mut slot = self.snapshot.lock().await;
        let changes = self.changes.load(Ordering::SeqCst);
        let all_services = self.all_services.load(Ordering::SeqCst);
        if let Some(taken) = slot.as_ref()
            && taken.changes == changes
            && taken.started + self.fresh_for.max(taken.took * 2) >= asked
            && not_before.is_none_or(|t| taken.started >= t)
            // A snapshot of the drains' services only is no list of every service.
            && taken.all_services >= all_services
        {
            return Ok(taken.snapshot.clone());
        }
        let started = Instant::now();
        let snapshot = Arc::new(self.read_snapshot(all_services).await?);
        *slot = Some(Taken {
            snapshot: snapshot.clone(),
            started,
            took: started.elapsed(),
            changes,
            all_services,
        });
        Ok(snapshot)
    }

    /// Reads a snapshot: the nodes; if any drains, every task of the drained nodes; if those
    /// belong to services, the services (every service when `all_services`) and the tasks
    /// they want running, at once.
    async fn read_snapshot(&self, all_services: bool) -> Result<Snapshot, Error> {
        let read_at = Utc::now();
        let mut nodes = self.list_nodes(None).await?;
        let on_drained = loop {
            let drained = drained_nodes(&nodes);
            if drained.is_empty() {
                break Vec::new();
            }
            match self.list_tasks(&pairs("node", &drained)).await {
                // A drained node removed since the node list (another drain finished): it is
                // gone, from the snapshot too, and the others' tasks are listed again.
                Err(Error::Docker { ref source, .. })
                    if let Some(gone) = read::missing_node(source)
                        && drained.iter().any(|id| id == gone) =>
                {
                    tracing::debug!(node_id = gone, "a drained node went meanwhile");
                    nodes.retain(|n| n.id.as_deref() != Some(gone));
                }
                listed => break listed?,
            }
        };
        let served = services_of(&on_drained);
        let (services, running) = if served.is_empty() && !all_services {
            (Vec::new(), Vec::new())
        } else {
            let by_id = if all_services {
                None
            } else {
                filters(&pairs("id", &served))
            };
            let mut running = pairs("service", &served);
            running.push(("desired-state", "running"));
            tokio::try_join!(
                self.call(None, "list services", |m| {
                    let options = by_id.clone().map(|f| ListServicesOptions {
                        filters: Some(f),
                        ..Default::default()
                    });
                    async move { counted("GET /services", m.list_services(options)).await }
                }),
                async {
                    if served.is_empty() {
                        Ok(Vec::new())
                    } else {
                        self.list_tasks(&running).await
                    }
                },
            )?
        };
        Ok(Snapshot {
            nodes,
            on_drained,
            services,
            running,
            read_at,
        })
    }

    /// Every node of the swarm, through a manager other than `exclude`.
    async fn list_nodes(&self, exclude: Option<&str>) -> Result<Vec<Node>, Error> {
        self.call(exclude, "list nodes", |m| async move {
            counted("GET /nodes", m.list_nodes(None)).await
        })
        .await
    }

    /// The tasks that match every filter key (and any value of a key).
    async fn list_tasks(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<bollard::models::Task>, Error> {
        self.call(None, "list tasks", |m| async move {
            let options = ListTasksOptions {
                filters: filters(pairs),
            };
            counted("GET /tasks", m.list_tasks(Some(options))).await
        })
        .await
    }

    /// Counts a change this process made to the swarm: snapshots read before it are stale.
    fn changed_by_us(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// A client of `endpoint` and its node id, if it answers as a manager of the swarm and
    /// is not `exclude`.
    async fn probe(
        &self,
        endpoint: &str,
        exclude: Option<&str>,
    ) -> Result<(Docker, Option<String>), String> {
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
        Ok((client, swarm.node_id))
    }

    /// Updates a replicated service's count and labels as `change` says (`None`: nothing to
    /// change), carrying its version and the rest of its spec exactly as it stands now (read
    /// and written as the Engine API's JSON, [`super::engine_json`]), so that nothing another
    /// writer set is reverted or lost; read again when the answer is "update out of sequence".
    /// A service gone, or not replicated, is left alone. Whether it changed.
    async fn update_service(
        &self,
        service_id: &str,
        mut change: impl FnMut(u64, &HashMap<String, String>) -> Option<surge::Scaled>,
    ) -> Result<bool, Error> {
        let failed = |call, source| Error::Docker { call, source };
        for tries in 1..=UPDATE_TRIES {
            let endpoint = self.manager_endpoint().await?;
            let tls = self.tls.as_ref().filter(|_| endpoint.starts_with("tcp://"));
            let path = format!("/services/{service_id}");
            let read = engine_json::call(
                &endpoint,
                tls,
                hyper::Method::GET,
                &path,
                None,
                "GET /services/ID",
            )
            .await;
            let service = match read {
                Ok(service) => service,
                Err(source) if read::not_found(&source) => return Ok(false),
                Err(source) if read::another_manager_may_answer(&source) => {
                    lock(&self.preferred).take();
                    continue;
                }
                Err(source) => return Err(failed("inspect service", source)),
            };
            let version = service["Version"]["Index"].as_u64().unwrap_or_default();
            let mut spec = service["Spec"].clone();
            let Some(replicas) = spec["Mode"]["Replicated"]["Replicas"].as_u64() else {
                return Ok(false);
            };
            let labels: HashMap<String, String> =
                serde_json::from_value(spec["Labels"].clone()).unwrap_or_default();
            let Some(scaled) = change(replicas, &labels) else {
                return Ok(false);
            };
            spec["Mode"]["Replicated"]["Replicas"] = scaled.replicas.into();
            spec["Labels"] = serde_json::to_value(scaled.labels).unwrap_or_default();
            let written = engine_json::call(
                &endpoint,
                tls,
                hyper::Method::POST,
                &format!("{path}/update?version={version}"),
                Some(&spec),
                "POST /services/ID/update",
            )
            .await;
            match written {
                Ok(_) => {
                    self.changed_by_us();
                    return Ok(true);
                }
                Err(source) if read::out_of_sequence(&source) && tries < UPDATE_TRIES => {}
                Err(source) if read::another_manager_may_answer(&source) => {
                    lock(&self.preferred).take();
                }
                Err(source) => return Err(failed("update service", source)),
            }
        }
        Err(Error::NoManager {
            tried: format!("the update of service {service_id} did not go through"),
        })
    }

    /// The endpoint of the manager that answered last, or of one found now.
    async fn manager_endpoint(&self) -> Result<String, Error> {
        if let Some(known) = lock(&self.preferred).clone() {
            return Ok(known.endpoint);
        }
        self.manager(None).await?;
        lock(&self.preferred)
            .clone()
            .map(|m| m.endpoint)
            .ok_or_else(|| Error::NoManager {
                tried: "a manager answered and was forgotten at once".into(),
            })
    }

    /// Updates a node's spec with `change`, carrying its version, reading it again when the
    /// answer is "update out of sequence" (someone else updated the node meanwhile).
    async fn update_node(
        &self,
        node_id: &str,
        change: impl Fn(&mut NodeSpec),
    ) -> Result<(), Error> {
        let exclude = Some(node_id);
        let mut tries = 0;
        loop {
            tries += 1;
            let node = self
                .call(exclude, "inspect node", |m| async move {
                    counted("GET /nodes/ID", m.inspect_node(node_id)).await
                })
                .await?;
            let version = node.version.and_then(|v| v.index).unwrap_or_default();
            let mut spec = node.spec.unwrap_or_default();
            change(&mut spec);
            let updated = self
                .call(exclude, "update node", |m| {
                    let spec = spec.clone();
                    async move {
                        let options = UpdateNodeOptions {
                            version: version as i64,
                        };
                        counted(
                            "POST /nodes/ID/update",
                            m.update_node(node_id, spec, options),
                        )
                        .await
                    }
                })
                .await;
            match updated {
                Ok(()) => {
                    self.changed_by_us();
                    return Ok(());
                }
                Err(Error::Docker { source, .. })
                    if tries < UPDATE_TRIES && read::out_of_sequence(&source) =>
                {
                    tracing::debug!(
                        node_id,
                        tries,
                        "update out of sequence: reading the node again"
                    );
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// A std mutex of plain data: a panic elsewhere leaves it usable.
/// How long a broken event stream waits before it is opened again.
const EVENT_RETRY: Duration = Duration::from_secs(1);

/// A `seconds.nanoseconds` time, to compare two.
fn as_seconds(time: &str) -> f64 {
    time.parse().unwrap_or(0.0)
}

/// A time as the Engine API's `since` takes it: `seconds.nanoseconds` since the epoch.
fn docker_time(at: SystemTime) -> String {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", since.as_secs(), since.subsec_nanos())
}

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
    let sent = Instant::now();
    let result = call.await;
    calls::record_timed(
        calls::DOCKER,
        api,
        Outcome::of_docker(&result),
        Some(sent.elapsed()),
    );
    result
}

/// `key` paired with each of `values`, for [`filters`].
fn pairs<'a>(key: &'a str, values: &'a [String]) -> Vec<(&'a str, &'a str)> {
    values.iter().map(|v| (key, v.as_str())).collect()
}

/// The Engine API's list filters: a task (or service) matches every key, and any value of a
/// key.
fn filters(pairs: &[(&str, &str)]) -> Option<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in pairs {
        map.entry((*key).to_owned())
            .or_default()
            .push((*value).to_owned());
    }
    Some(map)
}

impl SwarmNodes for DockerSwarm {
    async fn observe(&self, instance_id: &InstanceId) -> Result<SwarmView, Error> {
        Ok(self.snapshot().await?.view(instance_id))
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

    async fn pause(&self, node_id: &str) -> Result<(), Error> {
        self.update_node(node_id, |spec| {
            spec.availability = Some(NodeSpecAvailabilityEnum::PAUSE)
        })
        .await
    }

    async fn surge(&self, service_id: &str, node_id: &str, added: u64) -> Result<(), Error> {
        self.update_service(service_id, |replicas, labels| {
            surge::surged(replicas, labels, node_id, added)
        })
        .await
        .map(drop)
    }

    async fn restore(&self, service_id: &str, node_id: &str) -> Result<Restoration, Error> {
        let mut outcome = Restoration::Nothing;
        self.update_service(service_id, |replicas, labels| {
            match surge::restored(replicas, labels, node_id)? {
                surge::Restored::Restored(scaled) => {
                    outcome = Restoration::Restored {
                        replicas: scaled.replicas,
                    };
                    Some(scaled)
                }
                surge::Restored::SteppedAside { scaled, expected } => {
                    outcome = Restoration::SteppedAside {
                        replicas: scaled.replicas,
                        expected,
                    };
                    Some(scaled)
                }
            }
        })
        .await?;
        Ok(outcome)
    }

    async fn remove(&self, node_id: &str) -> Result<(), Error> {
        let exclude = Some(node_id);
        // Its address, to forget it in the cluster record once it is gone: a manager's
        // address there would send later joins and lookups to a dead machine.
        let address = self
            .call(exclude, "inspect node", |m| async move {
                counted("GET /nodes/ID", m.inspect_node(node_id)).await
            })
            .await
            .ok()
            .and_then(|n| n.status?.addr);
        // Forced: the node is drained (no tasks) but its daemon may still be up, as the
        // instance waits in Terminating:Wait until the hook completes. One already gone
        // (404) is removed.
        self.call(exclude, "remove node", |m| async move {
            match counted(
                "DELETE /nodes/ID",
                m.delete_node(node_id, Some(DeleteNodeOptions { force: true })),
            )
            .await
            {
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(()),
                other => other,
            }
        })
        .await?;
        self.changed_by_us();
        // An address is forgotten only while no other node has it: a terminated instance's
        // private address may already belong to its replacement.
        let taken = match &address {
            Some(address) => self.list_nodes(exclude).await?.iter().any(|n| {
                n.id.as_deref() != Some(node_id)
                    && n.status.as_ref().and_then(|s| s.addr.as_deref()) == Some(address)
            }),
            None => false,
        };
        if let Some(address) = address.filter(|_| !taken) {
            let endpoint = format!("tcp://{address}:{MANAGER_TLS_PORT}");
            lock(&self.endpoints).retain(|e| *e != endpoint);
            {
                let mut preferred = lock(&self.preferred);
                if preferred.as_ref().is_some_and(|m| m.endpoint == endpoint) {
                    *preferred = None;
                }
            }
            if let Some(directory) = &self.directory {
                directory
                    .remove_manager(&format!("{address}:{SWARM_PORT}"))
                    .await?;
            }
        }
        Ok(())
    }

    async fn members(&self) -> Result<Vec<SweepNode>, Error> {
        Ok(self.snapshot().await?.members())
    }

    async fn publishing(&self, not_before: Instant) -> Result<Publishing, Error> {
        self.all_services.store(true, Ordering::SeqCst);
        let snapshot = self.snapshot_since(Some(not_before)).await?;
        Ok(crate::listeners::read::published(&snapshot.services))
    }

    async fn services_changed(&self, since: SystemTime, at_most: Duration) -> bool {
        let opened = SystemTime::now();
        // From the caller's `since`, a second back (the managers' clocks are not this one's),
        // or from just after the last event this adapter returned for, whichever is later.
        let asked = docker_time(since - Duration::from_secs(1));
        let since = match lock(&self.events_since).clone() {
            Some(cursor) if as_seconds(&cursor) > as_seconds(&asked) => cursor,
            _ => asked,
        };
        let client = match self.known_manager(None) {
            Some(client) => client,
            None => match self.manager(None).await {
                Ok(client) => client,
                Err(error) => {
                    tracing::debug!(error = %error, "no manager for the event stream");
                    tokio::time::sleep(at_most.min(EVENT_RETRY)).await;
                    return true;
                }
            },
        };
        let options = EventsOptionsBuilder::new()
            .since(&since)
            .filters(&HashMap::from([("type", vec!["service"])]))
            .build();
        let mut stream = client.events(Some(options));
        let mut last = None;
        let mut wait = at_most;
        loop {
            match tokio::time::timeout(wait, stream.next()).await {
                // A service changed: a little longer for the rest of its burst.
                Ok(Some(Ok(event))) => {
                    last = event.time_nano.or(last);
                    wait = EVENT_BURST;
                }
                // The stream broke (the manager went): maybe changed; retried a little later.
                Ok(Some(Err(error))) => {
                    tracing::debug!(error = %error, "the event stream broke");
                    lock(&self.preferred).take();
                    tokio::time::sleep(at_most.min(EVENT_RETRY)).await;
                    return true;
                }
                Ok(None) => {
                    tokio::time::sleep(at_most.min(EVENT_RETRY)).await;
                    return true;
                }
                // Quiet for `wait`: the burst is over, or nothing changed at all.
                Err(_) => break,
            }
        }
        let next = match last {
            // Just after the last one seen: it is not replayed.
            Some(nanos) => {
                let next = nanos + 1;
                format!(
                    "{}.{:09}",
                    next.div_euclid(1_000_000_000),
                    next.rem_euclid(1_000_000_000)
                )
            }
            // Nothing since `since`: nothing to replay before the last second either.
            None => docker_time(opened - Duration::from_secs(1)),
        };
        *lock(&self.events_since) = Some(next);
        last.is_some()
    }

    async fn changed(&self, at_most: Duration) {
        // Swarm emits no event when a task starts on another node (task events are not in
        // the swarm scope), so a short sleep between observations is the reaction time.
        tokio::time::sleep(at_most).await;
    }
}
