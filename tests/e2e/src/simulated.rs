//! A swarm larger than this machine holds, generated and served as the Engine API serves it:
//! nodes, services and tasks with the fields and sizes Docker 20.10 writes, behind `GET /info`,
//! `GET /nodes`, `GET /services` and `GET /tasks` with the list filters the processor uses.
//! `bench-view` points the processor's own adapter at it to measure what one refresh of its
//! view of the swarm costs at 100, 1,000 and 5,000 nodes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The shape of a simulated swarm.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Nodes, three of them managers.
    pub nodes: usize,
    /// Tasks each node runs.
    pub tasks_per_node: usize,
    /// Replicated services the tasks belong to.
    pub services: usize,
    /// Nodes set to drain, their tasks stopping (terminations in flight).
    pub draining: usize,
    /// Stopped tasks each slot of a drained node remembers (Swarm keeps 5 by default, the
    /// running one included).
    pub history: usize,
}

/// The swarm's payloads, serialized once; what was served, counted.
pub struct Simulated {
    info: String,
    nodes: String,
    /// Each service, serialized, by id.
    services: HashMap<String, String>,
    /// The tasks wanted running, serialized, by service id.
    running_by_service: HashMap<String, Vec<String>>,
    /// Every task of each drained node, serialized, by node id.
    tasks_by_node: HashMap<String, Vec<String>>,
    /// Nodes removed since the node list was made: still listed, but a task list filtered on
    /// one is answered `404 node ID not found`, as Docker answers once a node is gone.
    pub gone: std::sync::Mutex<Vec<String>>,
    /// Bytes of the bodies served.
    pub bytes: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
}

/// The node id of node `n`.
pub fn node_id(n: usize) -> String {
    format!("simnode{n:018}")
}

/// The instance id of node `n` (its engine label).
pub fn instance_id(n: usize) -> String {
    format!("i-{n:017x}")
}

fn service_id(s: usize) -> String {
    format!("simsvc{s:019}")
}

fn node(n: usize, drained: bool) -> serde_json::Value {
    let manager = n < 3;
    let mut node = json!({
        "ID": node_id(n),
        "Version": {"Index": 1000 + n},
        "CreatedAt": "2026-12-01T10:00:00.000000000Z",
        "UpdatedAt": "2026-12-05T10:00:00.000000000Z",
        "Spec": {
            "Labels": {"e2e.group": "sim"},
            "Role": if manager { "manager" } else { "worker" },
            "Availability": if drained { "drain" } else { "active" }
        },
        "Description": {
            "Hostname": format!("ip-10-0-{}-{}", n / 250, n % 250 + 4),
            "Platform": {"Architecture": "x86_64", "OS": "linux"},
            "Resources": {"NanoCPUs": 2_000_000_000_u64, "MemoryBytes": 8_222_879_744_u64},
            "Engine": {
                "EngineVersion": "20.10.24+dfsg1",
                "Labels": {"instance-id": instance_id(n), "os": "linux", "region": "eu-west-1"},
                "Plugins": [
                    {"Type": "Log", "Name": "awslogs"}, {"Type": "Log", "Name": "json-file"},
                    {"Type": "Log", "Name": "local"}, {"Type": "Network", "Name": "bridge"},
                    {"Type": "Network", "Name": "host"}, {"Type": "Network", "Name": "overlay"},
                    {"Type": "Volume", "Name": "local"}
                ]
            },
            "TLSInfo": {
                "TrustRoot": "-----BEGIN CERTIFICATE-----\nMIIBazCCARCgAwIBAgIUQ0y9kV8sXQ2T0w3Xb4n6dTQ8b6owCgYIKoZIzj0EAwIw\nEzERMA8GA1UEAxMIc3dhcm0tY2EwHhcNMjYxMjAxMTAwMDAwWhcNNDYxMTI2MTAw\n-----END CERTIFICATE-----\n",
                "CertIssuerSubject": "MBMxETAPBgNVBAMTCHN3YXJtLWNh",
                "CertIssuerPublicKey": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3wqHk8c1vQfVq8H6oZ4x1c5Yb1x0p2sKf0rQ4f0t"
            }
        },
        "Status": {"State": "ready", "Addr": format!("10.0.{}.{}", n / 250, n % 250 + 4)}
    });
    if manager {
        node["ManagerStatus"] = json!({
            "Leader": n == 0, "Reachability": "reachable",
            "Addr": format!("10.0.0.{}:2377", n + 4)
        });
    }
    node
}

fn service(s: usize, replicas: usize) -> serde_json::Value {
    json!({
        "ID": service_id(s),
        "Version": {"Index": 5000 + s},
        "CreatedAt": "2026-12-01T11:00:00.000000000Z",
        "UpdatedAt": "2026-12-05T11:00:00.000000000Z",
        "Spec": {
            "Name": format!("app-{s}"),
            "Labels": {"com.docker.stack.namespace": "prod", "team": "payments"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "registry.example.com/app@sha256:4b8ba5d6ea4a8ef2e3f7d2b2b5b0c4a3e1c2d3f4a5b6c7d8e9f00112233445566",
                    "Env": ["PORT=8080", "LOG_LEVEL=info", format!("SERVICE=app-{s}")],
                    "Init": false, "StopGracePeriod": 10_000_000_000_u64,
                    "DNSConfig": {}, "Isolation": "default"
                },
                "Resources": {"Limits": {"MemoryBytes": 268_435_456}, "Reservations": {}},
                "RestartPolicy": {"Condition": "any", "Delay": 5_000_000_000_u64, "MaxAttempts": 0},
                "Placement": {"Platforms": [{"Architecture": "amd64", "OS": "linux"}]},
                "Networks": [{"Target": "prodnet0000000000000000001"}],
                "ForceUpdate": 0, "Runtime": "container"
            },
            "Mode": {"Replicated": {"Replicas": replicas}},
            "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000_u64, "MaxFailureRatio": 0, "Order": "stop-first"},
            "EndpointSpec": {"Mode": "vip"}
        },
        "Endpoint": {"Spec": {"Mode": "vip"}, "VirtualIPs": [{"NetworkID": "prodnet0000000000000000001", "Addr": format!("10.1.{}.{}/16", s / 250, s % 250 + 2)}]}
    })
}

fn task(
    id: &str,
    s: usize,
    n: usize,
    slot: usize,
    state: &str,
    desired: &str,
) -> serde_json::Value {
    json!({
        "ID": id,
        "Version": {"Index": 9000},
        "CreatedAt": "2026-12-05T11:00:00.000000000Z",
        "UpdatedAt": "2026-12-05T11:00:05.000000000Z",
        "Labels": {},
        "Spec": {
            "ContainerSpec": {
                "Image": "registry.example.com/app@sha256:4b8ba5d6ea4a8ef2e3f7d2b2b5b0c4a3e1c2d3f4a5b6c7d8e9f00112233445566",
                "Labels": {"com.docker.stack.namespace": "prod"},
                "Env": ["PORT=8080", "LOG_LEVEL=info", format!("SERVICE=app-{s}")],
                "Init": false, "StopGracePeriod": 10_000_000_000_u64, "DNSConfig": {}, "Isolation": "default"
            },
            "Resources": {"Limits": {"MemoryBytes": 268_435_456}, "Reservations": {}},
            "RestartPolicy": {"Condition": "any", "Delay": 5_000_000_000_u64, "MaxAttempts": 0},
            "Placement": {"Platforms": [{"Architecture": "amd64", "OS": "linux"}]},
            "Networks": [{"Target": "prodnet0000000000000000001"}],
            "ForceUpdate": 0
        },
        "ServiceID": service_id(s),
        "Slot": slot,
        "NodeID": node_id(n),
        "Status": {
            "Timestamp": "2026-12-05T11:00:05.000000000Z",
            "State": state,
            "Message": if state == "running" { "started" } else { "shutdown" },
            "ContainerStatus": {"ContainerID": format!("{id:0>64}"), "PID": 4242, "ExitCode": 0},
            "PortStatus": {}
        },
        "DesiredState": desired,
        "NetworksAttachments": [{
            "Network": {"ID": "prodnet0000000000000000001", "Spec": {"Name": "prod", "Driver": "overlay"}},
            "Addresses": [format!("10.1.{}.{}/16", n % 250, slot % 250 + 2)]
        }]
    })
}

impl Simulated {
    /// Generates a swarm of `shape`: every node runs its tasks, spread over the services;
    /// the last `draining` nodes are drained, their tasks stopping and their history kept.
    pub fn generate(shape: Shape) -> Self {
        let total = shape.nodes * shape.tasks_per_node;
        let first_drained = shape.nodes - shape.draining;
        let mut running_by_service: HashMap<String, Vec<String>> = HashMap::new();
        let mut tasks_by_node: HashMap<String, Vec<String>> = HashMap::new();
        let mut replicas = vec![0; shape.services];
        for n in 0..shape.nodes {
            for i in 0..shape.tasks_per_node {
                let k = n * shape.tasks_per_node + i;
                let s = k % shape.services;
                replicas[s] += 1;
                let id = format!("simtask{k:018}");
                if n < first_drained {
                    running_by_service
                        .entry(service_id(s))
                        .or_default()
                        .push(task(&id, s, n, k, "running", "running").to_string());
                    continue;
                }
                // Drained: the task is stopping, and the slot remembers earlier ones.
                let on_node = tasks_by_node.entry(node_id(n)).or_default();
                on_node.push(task(&id, s, n, k, "running", "shutdown").to_string());
                for h in 0..shape.history {
                    let old = format!("simold{h}{k:017}");
                    on_node.push(task(&old, s, n, k, "shutdown", "shutdown").to_string());
                }
            }
        }
        let services = (0..shape.services)
            .map(|s| (service_id(s), service(s, replicas[s]).to_string()))
            .collect();
        let nodes: Vec<serde_json::Value> = (0..shape.nodes)
            .map(|n| node(n, n >= first_drained))
            .collect();
        debug_assert_eq!(replicas.iter().sum::<usize>(), total);
        Self {
            info: json!({
                "ID": "SIM", "Name": "ip-10-0-0-4", "ServerVersion": "20.10.24+dfsg1",
                "Swarm": {
                    "NodeID": node_id(0), "NodeAddr": "10.0.0.4", "LocalNodeState": "active",
                    "ControlAvailable": true, "Nodes": shape.nodes, "Managers": 3,
                    "Cluster": {"ID": "simulatedswarm000000000001"}
                }
            })
            .to_string(),
            nodes: serde_json::Value::Array(nodes).to_string(),
            services,
            running_by_service,
            tasks_by_node,
            gone: std::sync::Mutex::new(Vec::new()),
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// Serves the Engine API on `listener` until the process ends.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) -> Result<()> {
        let app = Router::new().fallback(answer).with_state(self);
        axum::serve(listener, app).await?;
        Ok(())
    }

    /// Binds a loopback port and serves there in the background; returns the address.
    pub async fn spawn(self: Arc<Self>) -> Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(self.serve(listener));
        Ok(addr)
    }

    fn body(&self, parts: impl IntoIterator<Item = String>) -> Response {
        let body = format!("[{}]", parts.into_iter().collect::<Vec<_>>().join(","));
        self.json(body)
    }

    fn json(&self, body: String) -> Response {
        self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        ([("content-type", "application/json")], body).into_response()
    }
}

/// The list filters of a request (`filters={"key":["value",...]}`).
fn filters(query: &HashMap<String, String>) -> HashMap<String, Vec<String>> {
    query
        .get("filters")
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_default()
}

/// Answers one Engine API request (the path after its `/v1.xx` prefix).
async fn answer(
    State(sim): State<Arc<Simulated>>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = uri.path();
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.split_once('/').map_or(path, |(_, rest)| rest);
    let filters = filters(&query);
    let values = |key: &str| filters.get(key).cloned().unwrap_or_default();
    match path {
        "info" => sim.json(sim.info.clone()),
        "nodes" => sim.json(sim.nodes.clone()),
        "services" => {
            let ids = values("id");
            let all = ids.is_empty();
            sim.body(
                sim.services
                    .iter()
                    .filter(|(id, _)| all || ids.contains(id))
                    .map(|(_, s)| s.clone()),
            )
        }
        "tasks" => {
            let nodes = values("node");
            let gone = sim
                .gone
                .lock()
                .map(|gone| nodes.iter().find(|n| gone.contains(n)).cloned())
                .unwrap_or_default();
            if let Some(gone) = gone {
                let body = json!({ "message": format!("node {gone} not found") }).to_string();
                return (
                    StatusCode::NOT_FOUND,
                    [("content-type", "application/json")],
                    body,
                )
                    .into_response();
            }
            if !nodes.is_empty() {
                return sim.body(
                    nodes
                        .iter()
                        .filter_map(|n| sim.tasks_by_node.get(n))
                        .flatten()
                        .cloned(),
                );
            }
            // Wanted running, of the services named (of all when none is).
            let services = values("service");
            let all = services.is_empty();
            sim.body(
                sim.running_by_service
                    .iter()
                    .filter(|(id, _)| all || services.contains(id))
                    .flat_map(|(_, tasks)| tasks.iter().cloned()),
            )
        }
        _ => (StatusCode::NOT_FOUND, "not simulated").into_response(),
    }
}
