//! The rules that read the Docker Engine API's payloads, pure: from bollard's models (as
//! `GET /nodes`, `GET /tasks` and `GET /services/ID` answer) to the facts [`super::decide`]
//! and the membership sweep decide on. The adapter only fetches; what a payload means is
//! decided here, and tested here, by tables of payloads as the Engine API writes them.

use bollard::models::{
    Node, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState as BollardNodeState, Reachability,
    ServiceSpec, Task, TaskState,
};
use chrono::{DateTime, Utc};

use super::{Availability, NodeFacts, NodeRole, NodeState, ServiceMode, SwarmView};
use crate::ids::InstanceId;
use crate::sweep::SweepNode;

/// The engine label that carries a node's EC2 instance id (the node bootstrap sets it).
pub const INSTANCE_ID_LABEL: &str = "instance-id";

/// How long a node may list without a description before it is taken for a join that died
/// halfway. A live one describes itself within a tenth of a second, or within the seconds a
/// leader election takes when the leader it was describing itself to went away.
pub const DESCRIBE_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

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
pub fn describing(node: &Node, now: DateTime<Utc>) -> bool {
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

/// A node as the drain reads it: its role, availability, state and reachability.
pub fn node_facts(node: &Node) -> NodeFacts {
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
pub fn sweep_node(node: &Node, now: DateTime<Utc>) -> SweepNode {
    let facts = node_facts(node);
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

/// Whether another manager may answer a call that failed so: no answer at all (connection,
/// timeout), or 503, which a manager answers when it is a manager no longer or has lost its
/// leader. Any other answer (not found, conflict, bad request) would be the same everywhere.
pub fn another_manager_may_answer(error: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    match error {
        E::DockerResponseServerError { status_code, .. } => *status_code == 503,
        E::JsonDataError { .. } | E::JsonSerdeError { .. } => false,
        _ => true,
    }
}

/// Whether a node update was refused because the node changed since it was read (another
/// update came first): read it again and retry.
pub fn out_of_sequence(error: &bollard::errors::Error) -> bool {
    matches!(error, bollard::errors::Error::DockerResponseServerError { message, .. }
        if message.contains("update out of sequence"))
}

/// Whether a call failed because what it names is not there (any more): HTTP 404.
pub fn not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The node a call names that is not (or no longer) in the swarm, if that is why it failed:
/// a task list filtered on a node removed meanwhile is answered 404, `node ID not found`.
pub fn missing_node(error: &bollard::errors::Error) -> Option<&str> {
    match error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        } => message.strip_prefix("node ")?.strip_suffix(" not found"),
        _ => None,
    }
}

/// A task that occupies its node: assigned and not yet stopped.
pub fn occupies(task: &Task) -> bool {
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

/// What a service is, by its spec: replicated (with its desired count), global, or a job.
pub fn service_mode(spec: &ServiceSpec) -> ServiceMode {
    let mode = spec.mode.clone().unwrap_or_default();
    match (&mode.replicated, &mode.global) {
        (Some(replicated), _) => ServiceMode::Replicated {
            desired: replicated.replicas.unwrap_or(1).max(0) as u64,
        },
        (None, Some(_)) => ServiceMode::Global,
        _ => ServiceMode::Job,
    }
}

/// How many of a service's `tasks` (those it wants running) run on a node other than
/// `node_id`.
pub fn running_elsewhere<'a>(tasks: impl IntoIterator<Item = &'a Task>, node_id: &str) -> u64 {
    tasks
        .into_iter()
        .filter(|t| t.node_id.as_deref() != Some(node_id))
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .count() as u64
}

/// Why a service's task cannot be placed, if one is pending for want of a suitable node
/// (placement constraints, `max_replicas_per_node`, resources): it will not run elsewhere
/// until the operator changes something.
pub fn unplaceable<'a>(tasks: impl IntoIterator<Item = &'a Task>) -> Option<String> {
    tasks
        .into_iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::PENDING))
        .filter_map(|t| t.status.as_ref().and_then(|s| s.err.clone()))
        .find(|err| err.contains("no suitable node"))
}

/// The swarm as a drain of `instance_id` reads it from its node list, at `now`: the managers
/// and how many are reachable, the nodes yet to describe themselves (one may be the
/// instance's), and the instance's node if it is listed. Tasks and services are left to fill.
pub fn swarm_view(
    nodes: &[Node],
    instance_id: &InstanceId,
    now: DateTime<Utc>,
) -> (SwarmView, Option<NodeFacts>) {
    let managers: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.manager_status.is_some())
        .collect();
    let view = SwarmView {
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
    let node = nodes
        .iter()
        .find(|n| engine_label(n, INSTANCE_ID_LABEL) == Some(instance_id.as_str()))
        .map(node_facts);
    (view, node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        assert!(node_facts(&node).reachable);
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

    fn task(json: &str) -> Task {
        serde_json::from_str(json).expect("a task as the Engine API lists it")
    }

    #[test]
    fn a_task_occupies_its_node_from_assigned_until_it_stops() {
        for (state, occupies_it) in [
            ("new", false),
            ("pending", false),
            ("assigned", true),
            ("accepted", true),
            ("preparing", true),
            ("ready", true),
            ("starting", true),
            ("running", true),
            ("complete", false),
            ("shutdown", false),
            ("failed", false),
            ("rejected", false),
            ("orphaned", false),
        ] {
            let read = task(&format!(r#"{{"ID":"t1","Status":{{"State":"{state}"}}}}"#));
            assert_eq!(occupies(&read), occupies_it, "{state}");
        }
    }

    #[test]
    fn a_call_goes_to_another_manager_only_when_another_may_answer_differently() {
        use bollard::errors::Error as E;
        let server = |status_code: u16, message: &str| E::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        };
        for (error, another) in [
            (server(503, "This node is not a swarm manager."), true),
            (
                server(
                    503,
                    "rpc error: code = Unknown desc = The swarm does not have a leader",
                ),
                true,
            ),
            (E::RequestTimeoutError, true),
            (
                E::IOError {
                    err: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
                },
                true,
            ),
            (server(404, "node xyz not found"), false),
            (server(500, "update out of sequence"), false),
            (server(400, "invalid filter"), false),
        ] {
            assert_eq!(another_manager_may_answer(&error), another, "{error}");
        }
        assert!(out_of_sequence(&server(
            500,
            "rpc error: code = Unknown desc = update out of sequence"
        )));
        assert!(!out_of_sequence(&server(
            503,
            "This node is not a swarm manager."
        )));
        // As Docker 20.10 answers a task list filtered on a node removed meanwhile.
        assert_eq!(
            missing_node(&server(404, "node gxty0wfkqgbb9zhrneblgbznb not found")),
            Some("gxty0wfkqgbb9zhrneblgbznb")
        );
        assert_eq!(missing_node(&server(404, "service web not found")), None);
        assert_eq!(
            missing_node(&server(500, "node gxty0wfkqgbb9zhrneblgbznb not found")),
            None
        );
    }

    #[test]
    fn a_service_reads_as_its_mode_and_where_its_replicas_run() {
        let replicated: ServiceSpec =
            serde_json::from_str(r#"{"Name":"web","Mode":{"Replicated":{"Replicas":4}}}"#)
                .expect("spec");
        assert_eq!(
            service_mode(&replicated),
            ServiceMode::Replicated { desired: 4 }
        );
        let global: ServiceSpec =
            serde_json::from_str(r#"{"Name":"agent","Mode":{"Global":{}}}"#).expect("spec");
        assert_eq!(service_mode(&global), ServiceMode::Global);
        let job: ServiceSpec =
            serde_json::from_str(r#"{"Name":"once","Mode":{"ReplicatedJob":{}}}"#).expect("spec");
        assert_eq!(service_mode(&job), ServiceMode::Job);

        let tasks = [
            task(r#"{"ID":"a","NodeID":"drained","Status":{"State":"running"}}"#),
            task(r#"{"ID":"b","NodeID":"other","Status":{"State":"running"}}"#),
            task(r#"{"ID":"c","NodeID":"other","Status":{"State":"starting"}}"#),
            task(
                r#"{"ID":"d","Status":{"State":"pending","Err":"no suitable node (max replicas per node limit exceed)"}}"#,
            ),
        ];
        assert_eq!(running_elsewhere(&tasks, "drained"), 1);
        assert_eq!(
            unplaceable(&tasks).as_deref(),
            Some("no suitable node (max replicas per node limit exceed)")
        );
        assert_eq!(unplaceable(&tasks[..3]), None);
    }

    #[test]
    fn the_swarm_reads_as_its_managers_and_the_instances_node() {
        let other = DESCRIBED
            .replace("zhnl2o", "other")
            .replace("i-65161114a79c4477a", "i-0000000000000000a")
            .replace(
                r#""Reachability":"reachable""#,
                r#""Reachability":"unreachable""#,
            );
        let nodes = [node(DESCRIBED), node(&other), node(JUST_JOINED)];
        let ours: InstanceId = "i-65161114a79c4477a".try_into().expect("an id");
        let (view, found) = swarm_view(&nodes, &ours, after(0));
        assert_eq!((view.managers, view.reachable_managers), (3, 2));
        assert_eq!(view.undescribed_nodes, 1);
        assert_eq!(found.map(|n| n.id), Some("zhnl2o".to_owned()));
        let absent: InstanceId = "i-0ffffffffffffffff".try_into().expect("an id");
        assert!(swarm_view(&nodes, &absent, after(0)).1.is_none());
    }
}
