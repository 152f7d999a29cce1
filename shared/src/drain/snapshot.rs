//! One reading of the whole swarm, as the Engine API lists it, and what every drain and the
//! membership sweep read from it: the process keeps one, refreshed while anyone waits, so the
//! cost of a poll does not grow with the number of actions in flight.
//!
//! A snapshot is at most four lists, whatever the number of drains, each sized by what is
//! being drained rather than by the swarm: the nodes; every task of the drained nodes (a task
//! being stopped there no longer wants to run, but still occupies its node until it has
//! stopped); the services those tasks belong to; and the tasks those services want running,
//! wherever they are. A drain decides on tasks only once its node drains, so nothing else is
//! read, and when no node drains, the node list is the whole snapshot. Everything here is
//! pure: the adapter fetches the lists, [`Snapshot::view`] reads a drain's facts out of them.

use std::collections::{BTreeMap, HashSet};

use bollard::models::{Node, NodeSpecAvailabilityEnum, Service, ServiceSpec, Task};
use chrono::{DateTime, Utc};

use super::read;
use super::surge;
use super::{ServiceFacts, ServiceMode, SwarmView, TaskFacts};
use crate::ids::InstanceId;
use crate::sweep::SweepNode;

/// The whole swarm, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every node (`GET /nodes`).
    pub nodes: Vec<Node>,
    /// Every task of the nodes [`drained_nodes`] names (`GET /tasks`, `node=...`), whatever its
    /// state: those still stopping occupy their node.
    pub on_drained: Vec<Task>,
    /// The services [`services_of`] those tasks (`GET /services`, `id=...`).
    pub services: Vec<Service>,
    /// Every task those services want running (`GET /tasks`, `desired-state=running`,
    /// `service=...`): where their replicas run, and those that wait for a node.
    pub running: Vec<Task>,
    /// When the node list was read (nodes describe themselves within a grace from then).
    pub read_at: DateTime<Utc>,
}

/// The nodes whose tasks a snapshot lists in full: those set to drain, where tasks are
/// stopping, and those paused for a surge before their drain. Elsewhere, what runs is among
/// the tasks the swarm wants running. Empty when no node drains: then no such list is read at
/// all (a `node` filter without a value would list every task the swarm remembers).
///
/// ```
/// use swarm_aws::drain::snapshot::drained_nodes;
/// let nodes: Vec<bollard::models::Node> = serde_json::from_str(
///     r#"[{"ID":"a","Spec":{"Availability":"drain"}},{"ID":"b","Spec":{"Availability":"active"}}]"#,
/// ).unwrap();
/// assert_eq!(drained_nodes(&nodes), ["a"]);
/// ```
pub fn drained_nodes(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| {
            matches!(
                n.spec.as_ref().and_then(|s| s.availability),
                Some(NodeSpecAvailabilityEnum::DRAIN | NodeSpecAvailabilityEnum::PAUSE)
            )
        })
        .filter_map(|n| n.id.clone())
        .collect()
}

/// The services `tasks` belong to, each once, in order: whose replicas a drain of their node
/// waits for. Empty when there are none: then no service is read (an `id` filter without a
/// value would list them all).
///
/// ```
/// use swarm_aws::drain::snapshot::services_of;
/// let tasks: Vec<bollard::models::Task> = serde_json::from_str(
///     r#"[{"ID":"t1","ServiceID":"web"},{"ID":"t2","ServiceID":"api"},{"ID":"t3","ServiceID":"web"}]"#,
/// ).unwrap();
/// assert_eq!(services_of(&tasks), ["api", "web"]);
/// ```
pub fn services_of(tasks: &[Task]) -> Vec<String> {
    let ids: std::collections::BTreeSet<&str> = tasks
        .iter()
        .filter_map(|t| t.service_id.as_deref())
        .collect();
    ids.into_iter().map(str::to_owned).collect()
}

impl Snapshot {
    /// What a drain of `instance_id` decides on: the managers, the nodes yet to describe
    /// themselves, and, if the instance's node is listed, its tasks that still occupy it and
    /// the services it served with where their replicas run now. Tasks and services are read
    /// for drained nodes only: a drain looks at them once its node drains, not before.
    pub fn view(&self, instance_id: &InstanceId) -> SwarmView {
        let (mut view, node) = read::swarm_view(&self.nodes, instance_id, self.read_at);
        let Some(node) = node else {
            return view;
        };
        // The node's tasks: (drained) those stopping there, and any it is still asked to run.
        // A task in both lists is one task.
        let mut seen = HashSet::new();
        let on_node: Vec<&Task> = self
            .on_drained
            .iter()
            .chain(&self.running)
            .filter(|t| t.node_id.as_deref() == Some(node.id.as_str()))
            .filter(|t| seen.insert(t.id.as_deref()))
            .collect();
        // The services it served (a task of any state names one), each once, with the tasks
        // they want running, gathered in one pass over the list.
        let mut wanted: BTreeMap<&str, Vec<&Task>> = on_node
            .iter()
            .filter_map(|t| t.service_id.as_deref())
            .map(|id| (id, Vec::new()))
            .collect();
        for task in &self.running {
            if let Some(tasks) = task.service_id.as_deref().and_then(|id| wanted.get_mut(id)) {
                tasks.push(task);
            }
        }
        // As they stand now; one removed meanwhile has nothing to bring back.
        let served: BTreeMap<&str, ServiceFacts> = wanted
            .into_iter()
            .filter_map(|(id, running)| Some((id, self.service_facts(id, &running, &node.id)?)))
            .collect();
        view.tasks_on_node = on_node
            .iter()
            .filter(|t| read::occupies(t))
            .map(|t| {
                let service = t.service_id.as_deref().unwrap_or_default();
                TaskFacts {
                    id: t.id.clone().unwrap_or_default(),
                    service: served
                        .get(service)
                        .map_or_else(|| service.to_owned(), |s| s.name.clone()),
                }
            })
            .collect();
        view.services = served.into_values().collect();
        view.node = Some(node);
        view
    }

    /// A service by id, as a drain of `node_id` reads it given the tasks it wants running,
    /// `None` if it is not listed.
    fn service_facts(
        &self,
        service_id: &str,
        running: &[&Task],
        node_id: &str,
    ) -> Option<ServiceFacts> {
        let service = self
            .services
            .iter()
            .find(|s| s.id.as_deref() == Some(service_id))?;
        let default = ServiceSpec::default();
        let spec = service.spec.as_ref().unwrap_or(&default);
        let mode = read::service_mode(spec);
        let (running_elsewhere, unplaceable) = if matches!(mode, ServiceMode::Replicated { .. }) {
            (
                read::running_elsewhere(running.iter().copied(), node_id),
                read::unplaceable(running.iter().copied()),
            )
        } else {
            (0, None)
        };
        Some(ServiceFacts {
            id: service_id.to_owned(),
            name: spec.name.clone().unwrap_or_else(|| service_id.to_owned()),
            mode,
            running_elsewhere,
            unplaceable,
            // What a surge adds for this node: the tasks it is asked to run there.
            on_node: running
                .iter()
                .filter(|t| t.node_id.as_deref() == Some(node_id) && read::occupies(t))
                .count() as u64,
            surge: surge::read(&spec.labels.clone().unwrap_or_default(), node_id),
        })
    }

    /// Every node, as the membership sweep reads it.
    pub fn members(&self) -> Vec<SweepNode> {
        self.nodes
            .iter()
            .map(|node| read::sweep_node(node, self.read_at))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::{Availability, NodeRole};

    const OURS: &str = "i-0aaaaaaaaaaaaaaaa";

    /// A described worker node of `instance`, with its availability.
    fn node(id: &str, instance: &str, availability: &str) -> Node {
        serde_json::from_str(&format!(
            r#"{{"ID":"{id}","Spec":{{"Role":"worker","Availability":"{availability}"}},
                "Description":{{"Hostname":"{id}","Engine":{{"EngineVersion":"20.10.24",
                    "Labels":{{"instance-id":"{instance}"}}}}}},
                "Status":{{"State":"ready"}}}}"#
        ))
        .expect("a node as the Engine API lists it")
    }

    /// A task of `service` on `node`, in `state`, wanted in `desired`.
    fn task(id: &str, service: &str, node: &str, state: &str, desired: &str) -> Task {
        serde_json::from_str(&format!(
            r#"{{"ID":"{id}","ServiceID":"{service}","NodeID":"{node}",
                "DesiredState":"{desired}","Status":{{"State":"{state}"}}}}"#
        ))
        .expect("a task as the Engine API lists it")
    }

    fn service(id: &str, name: &str, mode: &str) -> Service {
        serde_json::from_str(&format!(
            r#"{{"ID":"{id}","Spec":{{"Name":"{name}","Mode":{mode}}}}}"#
        ))
        .expect("a service as the Engine API lists it")
    }

    fn ours() -> InstanceId {
        OURS.try_into().expect("an id")
    }

    /// A swarm of two workers, ours in `availability`, serving `web` (2 replicas) and
    /// `agent` (global).
    fn swarm(availability: &str) -> Snapshot {
        Snapshot {
            nodes: vec![
                node("n1", OURS, availability),
                node("n2", "i-0bbbbbbbbbbbbbbbb", "active"),
            ],
            services: vec![
                service("s-web", "web", r#"{"Replicated":{"Replicas":2}}"#),
                service("s-agent", "agent", r#"{"Global":{}}"#),
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn an_instance_not_in_the_swarm_has_no_node_and_no_tasks() {
        let mut snapshot = swarm("active");
        snapshot.nodes.remove(0);
        let view = snapshot.view(&ours());
        assert_eq!(view.node, None);
        assert!(view.tasks_on_node.is_empty() && view.services.is_empty());
    }

    #[test]
    fn a_drained_nodes_tasks_and_the_services_they_belong_to_read_as_they_stand() {
        let mut snapshot = swarm("drain");
        snapshot.running = vec![
            task("t1", "s-web", "n1", "running", "running"),
            task("t2", "s-web", "n2", "running", "running"),
            task("t3", "s-agent", "n1", "running", "running"),
        ];
        let view = snapshot.view(&ours());
        let node = view.node.expect("listed");
        assert_eq!(
            (node.role, node.availability),
            (NodeRole::Worker, Availability::Drain)
        );
        let tasks: Vec<(&str, &str)> = view
            .tasks_on_node
            .iter()
            .map(|t| (t.id.as_str(), t.service.as_str()))
            .collect();
        assert_eq!(tasks, [("t1", "web"), ("t3", "agent")]);
        let services: Vec<(&str, ServiceMode, u64)> = view
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.mode, s.running_elsewhere))
            .collect();
        assert_eq!(
            services,
            [
                ("agent", ServiceMode::Global, 0),
                ("web", ServiceMode::Replicated { desired: 2 }, 1)
            ]
        );
    }

    #[test]
    fn a_drained_nodes_stopping_tasks_occupy_it_and_its_history_names_what_it_served() {
        // What each task of the drained node is, and whether it still occupies the node.
        let table = [
            // Stopping: no longer wanted, still running. Occupies.
            (task("t1", "s-web", "n1", "running", "shutdown"), true),
            // Stopped: history. Its service is still one the node served.
            (task("t0", "s-web", "n1", "shutdown", "shutdown"), false),
            // A global service's task on its way out.
            (task("t3", "s-agent", "n1", "running", "shutdown"), true),
        ];
        let mut snapshot = swarm("drain");
        snapshot.on_drained = table.iter().map(|(t, _)| t.clone()).collect();
        snapshot.running = vec![
            task("t2", "s-web", "n2", "running", "running"),
            // The replacement, still starting elsewhere: not yet running.
            task("t4", "s-web", "n2", "starting", "running"),
        ];
        let view = snapshot.view(&ours());
        let occupying: Vec<&str> = view.tasks_on_node.iter().map(|t| t.id.as_str()).collect();
        let expected: Vec<&str> = table
            .iter()
            .filter(|(_, occupies)| *occupies)
            .filter_map(|(t, _)| t.id.as_deref())
            .collect();
        assert_eq!(occupying, expected);
        let web = view
            .services
            .iter()
            .find(|s| s.name == "web")
            .expect("served");
        assert_eq!(web.running_elsewhere, 1);
        assert_eq!(web.unplaceable, None);
    }

    #[test]
    fn a_task_in_both_lists_is_one_task() {
        let mut snapshot = swarm("drain");
        let both = task("t1", "s-web", "n1", "running", "running");
        snapshot.running = vec![both.clone()];
        snapshot.on_drained = vec![both];
        assert_eq!(snapshot.view(&ours()).tasks_on_node.len(), 1);
    }

    #[test]
    fn a_service_removed_meanwhile_is_not_waited_for_and_its_task_is_named_by_id() {
        let mut snapshot = swarm("drain");
        snapshot.on_drained = vec![task("t1", "s-gone", "n1", "running", "shutdown")];
        let view = snapshot.view(&ours());
        assert!(view.services.is_empty());
        assert_eq!(view.tasks_on_node[0].service, "s-gone");
    }

    #[test]
    fn a_replica_that_cannot_be_placed_says_why() {
        let mut snapshot = swarm("drain");
        snapshot.on_drained = vec![task("t1", "s-web", "n1", "running", "shutdown")];
        let mut pending = task("t2", "s-web", "", "pending", "running");
        pending.node_id = None;
        if let Some(status) = pending.status.as_mut() {
            status.err = Some("no suitable node (1 node not available for new tasks)".into());
        }
        snapshot.running = vec![pending];
        let web = snapshot.view(&ours()).services.remove(0);
        assert_eq!(web.running_elsewhere, 0);
        assert_eq!(
            web.unplaceable.as_deref(),
            Some("no suitable node (1 node not available for new tasks)")
        );
    }

    #[test]
    fn a_paused_nodes_services_say_what_a_surge_adds_and_what_their_labels_hold() {
        let mut snapshot = swarm("pause");
        snapshot.services[0] = serde_json::from_str(
            r#"{"ID":"s-web","Spec":{"Name":"web","Mode":{"Replicated":{"Replicas":3}},
                "Labels":{"com.docker.aws.surge.replicas":"2","com.docker.aws.surge.node.n1":"1"}}}"#,
        )
        .expect("a service as the Engine API lists it");
        snapshot.running = vec![
            task("t1", "s-web", "n1", "running", "running"),
            task("t2", "s-web", "n2", "running", "running"),
            task("t3", "s-web", "n2", "starting", "running"),
        ];
        let view = snapshot.view(&ours());
        let web = &view.services[0];
        assert_eq!(
            (web.id.as_str(), web.on_node, web.running_elsewhere),
            ("s-web", 1, 1)
        );
        assert_eq!((web.surge.base, web.surge.for_node), (Some(2), Some(1)));
    }

    #[test]
    fn only_drained_and_paused_nodes_have_their_tasks_read_in_full() {
        for (availabilities, drained) in [
            (["active", "active"], vec![]),
            (["drain", "active"], vec!["n1"]),
            // Paused for a surge: what it runs is what the surge adds.
            (["drain", "pause"], vec!["n1", "n2"]),
            (["drain", "drain"], vec!["n1", "n2"]),
        ] {
            let nodes = [
                node("n1", OURS, availabilities[0]),
                node("n2", "i-0bbbbbbbbbbbbbbbb", availabilities[1]),
            ];
            assert_eq!(drained_nodes(&nodes), drained, "{availabilities:?}");
        }
    }

    #[test]
    fn the_sweep_reads_every_node() {
        let members = swarm("active").members();
        let instances: Vec<Option<&str>> = members
            .iter()
            .map(|m| m.instance_id.as_ref().map(InstanceId::as_str))
            .collect();
        assert_eq!(instances, [Some(OURS), Some("i-0bbbbbbbbbbbbbbbb")]);
    }
}
