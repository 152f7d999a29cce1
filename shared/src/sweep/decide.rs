//! The decision: one pure function from a [`SweepObservation`] to a [`Plan`].

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use super::observation::{
    GroupInstance, GroupLifecycle, Outside, SweepNode, SweepObservation, SweepPolicy,
};
use crate::drain::{NodeRole, NodeState};
use crate::ids::{GroupName, InstanceId};

/// One thing the sweep does, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Demote an unreachable manager whose instance is gone: Raft drops the dead member. The
    /// next sweep, on a fresh look, removes the node.
    Demote {
        /// The swarm node.
        node_id: String,
        /// The instance it ran on.
        instance_id: InstanceId,
        /// Why, with the majority it keeps.
        reason: String,
    },
    /// Remove a worker (or demoted manager) that is not Ready and whose instance is gone, and
    /// forget its address in the cluster record.
    Remove {
        /// The swarm node.
        node_id: String,
        /// The instance it ran on.
        instance_id: InstanceId,
        /// Why.
        reason: String,
    },
    /// Mark an instance of the stack's groups unhealthy (`SetInstanceHealth`): the group
    /// replaces it, through its termination hook, so the drain removes its node.
    MarkUnhealthy {
        /// The instance.
        instance_id: InstanceId,
        /// Its group.
        group: GroupName,
        /// Its swarm node, when it has one.
        node_id: Option<String>,
        /// Why.
        reason: String,
    },
}

impl Action {
    /// A short name for logs and metrics (the `step` field).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Demote { .. } => "sweep_demote",
            Self::Remove { .. } => "sweep_remove",
            Self::MarkUnhealthy { .. } => "sweep_mark_unhealthy",
        }
    }

    /// Why.
    pub fn reason(&self) -> &str {
        match self {
            Self::Demote { reason, .. }
            | Self::Remove { reason, .. }
            | Self::MarkUnhealthy { reason, .. } => reason,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name(), self.reason())
    }
}

/// Something the sweep saw amiss and left alone, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The node or instance it is about.
    pub subject: String,
    /// Why nothing is done.
    pub reason: String,
    /// Whether an operator should hear of it (a warning), not only a routine wait.
    pub loud: bool,
}

/// What one sweep does, and what it saw and left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The actions, in the order to take them.
    pub actions: Vec<Action>,
    /// What was left alone, and why.
    pub held: Vec<Held>,
}

impl Plan {
    fn hold(&mut self, subject: impl fmt::Display, reason: String, loud: bool) {
        self.held.push(Held {
            subject: subject.to_string(),
            reason,
            loud,
        });
    }
}

/// Decides what one sweep does about what it `seen`.
pub fn decide(seen: &SweepObservation, policy: &SweepPolicy) -> Plan {
    let mut plan = Plan::default();
    if seen.nodes.is_empty() {
        // A swarm always lists the manager that answered: an empty list is a wrong look, and
        // every instance would seem to have no node.
        plan.hold(
            "the swarm",
            "it lists no node: nothing is decided on an empty look".into(),
            true,
        );
        return plan;
    }
    let groups: HashMap<&InstanceId, &GroupInstance> = seen
        .instances
        .iter()
        .map(|instance| (&instance.instance_id, instance))
        .collect();
    let mut look = Look::of(seen);
    let mut nodes: Vec<&SweepNode> = seen.nodes.iter().collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    for node in nodes {
        if node.state == NodeState::Ready {
            continue;
        }
        let Some(instance_id) = &node.instance_id else {
            if node.state == NodeState::Down {
                plan.hold(
                    format!("node {}", node.id),
                    "it is Down and names no instance (no `instance-id` label): a node joined by hand is an operator's to remove".into(),
                    true,
                );
            }
            continue;
        };
        match groups.get(instance_id) {
            Some(instance) => in_group(&mut plan, &mut look, node, instance, policy),
            None => match seen.outside.get(instance_id) {
                Some(Outside::Gone) => gone(&mut plan, &mut look, node, instance_id),
                Some(Outside::Exists) => plan.hold(
                    format!("node {} ({instance_id})", node.id),
                    "its instance belongs to another group: left alone".into(),
                    true,
                ),
                Some(Outside::Unknown) | None => plan.hold(
                    format!("node {} ({instance_id})", node.id),
                    "Auto Scaling could not say whether its instance is gone: no action until it can".into(),
                    true,
                ),
            },
        }
    }
    never_joined(&mut plan, &look, seen, policy);
    plan
}

/// What the whole look says, and what this sweep has already decided about the managers.
struct Look<'a> {
    /// Raft members.
    managers: u32,
    /// Of those, reachable.
    reachable: u32,
    /// Whether a manager change (demotion, or a manager's instance marked unhealthy) is
    /// already in this plan or under way: one at a time, each on a fresh look.
    manager_change: bool,
    /// Whether more than half of the nodes are Down: then a network fault is likelier than
    /// lost machines, and no instance is marked unhealthy (as Kubernetes stops evicting in a
    /// zone where most nodes are not ready).
    mostly_down: bool,
    /// Instances some node names.
    named: BTreeSet<&'a InstanceId>,
    /// Nodes that have not described themselves (no label) and are not Down.
    undescribed: usize,
}

impl<'a> Look<'a> {
    fn of(seen: &'a SweepObservation) -> Self {
        let managers: Vec<&SweepNode> = seen
            .nodes
            .iter()
            .filter(|n| n.role == NodeRole::Manager)
            .collect();
        let down = seen
            .nodes
            .iter()
            .filter(|n| n.state == NodeState::Down)
            .count();
        let terminating: BTreeSet<&InstanceId> = seen
            .instances
            .iter()
            .filter(|i| i.lifecycle == GroupLifecycle::Terminating || i.unhealthy)
            .map(|i| &i.instance_id)
            .collect();
        Self {
            managers: u32::try_from(managers.len()).unwrap_or(u32::MAX),
            reachable: u32::try_from(managers.iter().filter(|n| n.reachable).count())
                .unwrap_or(u32::MAX),
            // A manager's instance already on its way out is a change under way: its drain
            // demotes it, and the next one waits for that.
            manager_change: managers.iter().any(|n| {
                n.instance_id
                    .as_ref()
                    .is_some_and(|id| terminating.contains(id))
            }),
            mostly_down: down * 2 > seen.nodes.len(),
            named: seen
                .nodes
                .iter()
                .filter_map(|n| n.instance_id.as_ref())
                .collect(),
            undescribed: seen
                .nodes
                .iter()
                .filter(|n| n.instance_id.is_none() && n.state != NodeState::Down)
                .count(),
        }
    }
}

impl Look<'_> {
    /// Whether the reachable managers are a majority of the membership as it is now.
    fn has_quorum(&self) -> bool {
        self.managers > 0 && self.reachable > self.managers / 2
    }

    fn quorum_lost(&self) -> String {
        format!(
            "{} of {} managers are reachable, below the Raft majority of {}: the swarm has lost its quorum, which no removal or replacement restores (`docker swarm init --force-new-cluster` on a surviving manager does)",
            self.reachable,
            self.managers,
            self.managers / 2 + 1
        )
    }
}

/// A node that is not Ready, whose instance one of the stack's groups holds.
fn in_group(
    plan: &mut Plan,
    look: &mut Look<'_>,
    node: &SweepNode,
    instance: &GroupInstance,
    policy: &SweepPolicy,
) {
    let subject = format!("node {} ({})", node.id, instance.instance_id);
    match instance.lifecycle {
        // Its hook owns it: the drain (or the launch's admission) decides.
        GroupLifecycle::Terminating | GroupLifecycle::Launching => return,
        GroupLifecycle::Other => {
            plan.hold(
                subject,
                "its instance is in standby or leaving its group: an operator's to decide".into(),
                false,
            );
            return;
        }
        GroupLifecycle::InService => {}
    }
    if instance.unhealthy || node.state != NodeState::Down {
        return;
    }
    let down_for = node.down_for.unwrap_or_default();
    if down_for < policy.down_grace {
        plan.hold(
            subject,
            format!(
                "Down for {}, its instance in service: replaced once Down for {}",
                secs(down_for),
                secs(policy.down_grace)
            ),
            false,
        );
        return;
    }
    if look.mostly_down {
        plan.hold(subject, mostly_down(), true);
        return;
    }
    if node.role == NodeRole::Manager {
        if !look.has_quorum() {
            // Replacing it would destroy a member that may yet come back and bring the
            // quorum with it; its replacement could not join a swarm without one anyway.
            plan.hold(subject, look.quorum_lost(), true);
            return;
        }
        if look.manager_change {
            plan.hold(subject, one_manager_at_a_time(), false);
            return;
        }
        look.manager_change = true;
    }
    plan.actions.push(Action::MarkUnhealthy {
        instance_id: instance.instance_id.clone(),
        group: instance.group.clone(),
        node_id: Some(node.id.clone()),
        reason: format!(
            "its node has been Down for {} while the instance is in service (a dead daemon, or a machine cut off): the group replaces it",
            secs(down_for)
        ),
    });
}

/// A node that is not Ready, whose instance is in no group.
fn gone(plan: &mut Plan, look: &mut Look<'_>, node: &SweepNode, instance_id: &InstanceId) {
    let subject = format!("node {} ({instance_id})", node.id);
    if node.role == NodeRole::Worker {
        // Not Ready (the caller passes no Ready node): Down, or `unknown` as a demoted manager
        // is until its heartbeat times out. Its machine is gone either way: waiting for Down
        // would only keep a dead node in the swarm half a minute longer.
        plan.actions.push(Action::Remove {
            node_id: node.id.clone(),
            instance_id: instance_id.clone(),
            reason: "it is not Ready and its instance is gone".into(),
        });
        return;
    }
    if node.reachable {
        plan.hold(
            subject,
            "its instance is in no group, yet Raft reaches it: left alone".into(),
            true,
        );
        return;
    }
    if look.manager_change {
        plan.hold(subject, one_manager_at_a_time(), false);
        return;
    }
    // A demotion is a Raft configuration change: it commits only through a majority of the
    // membership as it is now (swarmkit's `CanRemoveMember` then also holds: the dead member
    // leaves, the reachable count stays).
    if !look.has_quorum() {
        plan.hold(subject, look.quorum_lost(), true);
        return;
    }
    let members_after = look.managers - 1;
    let majority = members_after / 2 + 1;
    look.manager_change = true;
    plan.actions.push(Action::Demote {
        node_id: node.id.clone(),
        instance_id: instance_id.clone(),
        reason: format!(
            "an unreachable manager whose instance is gone: {} of the {members_after} managers left are reachable, a majority ({majority} needed)",
            look.reachable
        ),
    });
}

/// Instances in service that no node names, long after their launch.
fn never_joined(plan: &mut Plan, look: &Look<'_>, seen: &SweepObservation, policy: &SweepPolicy) {
    for instance in &seen.instances {
        if instance.lifecycle != GroupLifecycle::InService
            || instance.unhealthy
            || look.named.contains(&instance.instance_id)
            || instance.known_for < policy.join_grace
        {
            continue;
        }
        let subject = instance.instance_id.to_string();
        if look.undescribed > 0 {
            plan.hold(
                subject,
                format!(
                    "no node names it, but {} node(s) have not described themselves yet: it may be one of them",
                    look.undescribed
                ),
                false,
            );
            continue;
        }
        plan.actions.push(Action::MarkUnhealthy {
            instance_id: instance.instance_id.clone(),
            group: instance.group.clone(),
            node_id: None,
            reason: format!(
                "in service for {} and never a swarm node (its launch hook timed out, or its node left): the group replaces it",
                secs(instance.known_for)
            ),
        });
    }
}

fn one_manager_at_a_time() -> String {
    "another manager change is under way: managers are changed one at a time, each on a fresh look"
        .into()
}

fn mostly_down() -> String {
    "more than half of the swarm's nodes are Down: a network fault is likelier than lost machines, so no instance is replaced".into()
}

fn secs(duration: Duration) -> String {
    format!("{:.0} s", duration.as_secs_f64())
}
