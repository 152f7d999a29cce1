//! The decision: one pure function from an [`Observation`] to the next [`Step`].

use std::fmt;
use std::time::Duration;

use super::observation::{
    ActionStatus, Availability, NodeFacts, NodeRole, NodeState, Observation, ServiceFacts,
    ServiceMode,
};
use crate::event::Transition;

/// How a lifecycle action is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionResult {
    /// Go on: the launch enters service, the termination proceeds.
    Continue,
    /// Give up: the launch is terminated (and replaced).
    Abandon,
}

impl ActionResult {
    /// The name Auto Scaling uses.
    pub fn as_aws_str(self) -> &'static str {
        match self {
            Self::Continue => "CONTINUE",
            Self::Abandon => "ABANDON",
        }
    }
}

/// What a waiting action waits for: the kind of its reason, for metrics and alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WaitFor {
    /// A launching instance to become a Ready node.
    Join,
    /// Nodes that have just joined to describe themselves (one may be the instance).
    Describe,
    /// The node's tasks to stop and its services' replicas to run elsewhere.
    Tasks,
    /// The managers to keep a Raft majority without this one (a demotion held back).
    Quorum,
    /// The replicas a surge added to run elsewhere before the node drains.
    Surge,
}

impl WaitFor {
    /// Its name in metrics (`reason` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Describe => "describe",
            Self::Tasks => "tasks",
            Self::Quorum => "quorum",
            Self::Surge => "surge",
        }
    }
}

/// The next thing to do for one lifecycle action, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing left to do: the message can go.
    Done {
        /// Why.
        reason: String,
    },
    /// Demote the manager first, so Raft keeps its majority when it goes.
    Demote {
        /// The swarm node.
        node_id: String,
        /// Why now.
        reason: String,
    },
    /// Set the node's availability to `pause`: it keeps its tasks and takes no new ones, so
    /// the replicas a surge adds start elsewhere.
    Pause {
        /// The swarm node.
        node_id: String,
        /// Why.
        reason: String,
    },
    /// Scale each service up by its tasks on the node (recorded in its labels).
    Surge {
        /// The swarm node.
        node_id: String,
        /// Each service's id and name, and the replicas to add.
        services: Vec<(String, String, u64)>,
        /// Why.
        reason: String,
    },
    /// Give each service back the count it had before the surge for this node.
    Restore {
        /// The swarm node.
        node_id: String,
        /// Each service's id and name.
        services: Vec<(String, String)>,
        /// Why.
        reason: String,
    },
    /// Set the node's availability to `drain`: Swarm moves its tasks away.
    Drain {
        /// The swarm node.
        node_id: String,
        /// Why.
        reason: String,
    },
    /// Come back later (the processor follows the swarm meanwhile).
    Wait {
        /// What kind of thing is awaited.
        on: WaitFor,
        /// What is awaited.
        reason: String,
        /// Whether to record a lifecycle action heartbeat now.
        heartbeat: bool,
    },
    /// Remove the drained node from the swarm.
    RemoveNode {
        /// The swarm node.
        node_id: String,
        /// Why.
        reason: String,
        /// Whether the drain deadline forced it (tasks may not all run elsewhere): log loudly.
        forced: bool,
    },
    /// Complete the lifecycle action.
    Complete {
        /// With which result.
        result: ActionResult,
        /// Why.
        reason: String,
        /// Whether the deadline forced it: log loudly.
        forced: bool,
    },
}

impl Step {
    /// A short name for logs and metrics (the `step` field).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Done { .. } => "done",
            Self::Demote { .. } => "demote",
            Self::Pause { .. } => "pause",
            Self::Surge { .. } => "surge",
            Self::Restore { .. } => "restore",
            Self::Drain { .. } => "drain",
            Self::Wait { .. } => "wait",
            Self::RemoveNode { .. } => "remove_node",
            Self::Complete { .. } => "complete",
        }
    }

    /// Why this step.
    pub fn reason(&self) -> &str {
        match self {
            Self::Done { reason }
            | Self::Demote { reason, .. }
            | Self::Pause { reason, .. }
            | Self::Surge { reason, .. }
            | Self::Restore { reason, .. }
            | Self::Drain { reason, .. }
            | Self::Wait { reason, .. }
            | Self::RemoveNode { reason, .. }
            | Self::Complete { reason, .. } => reason,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name(), self.reason())
    }
}

/// Decides the next step for the action `seen` describes.
pub fn decide(seen: &Observation) -> Step {
    if seen.action == ActionStatus::Ended {
        return Step::Done {
            reason: "the lifecycle action is no longer open (completed elsewhere, timed out, or the instance is gone)".into(),
        };
    }
    match seen.transition {
        Transition::Terminating => terminating(seen),
        Transition::Launching => launching(seen),
    }
}

fn launching(seen: &Observation) -> Step {
    match &seen.swarm.node {
        Some(node) if node.state == NodeState::Ready => Step::Complete {
            result: ActionResult::Continue,
            reason: format!("node {} joined the swarm and is ready", node.id),
            forced: false,
        },
        _ if past_deadline(seen) => Step::Complete {
            result: ActionResult::Abandon,
            reason: format!(
                "the instance is not a ready swarm node after {}: Auto Scaling replaces it",
                secs(seen.elapsed)
            ),
            forced: true,
        },
        Some(_) => wait(
            seen,
            WaitFor::Join,
            "the node joined the swarm but is not ready yet".into(),
        ),
        None => wait(
            seen,
            WaitFor::Join,
            "the instance has not joined the swarm yet".into(),
        ),
    }
}

fn terminating(seen: &Observation) -> Step {
    let Some(node) = &seen.swarm.node else {
        // A node that has just joined lists without its engine labels for a moment: the
        // instance may be it, and completing now would leave a manager in Raft for good.
        if seen.swarm.undescribed_nodes > 0 && !past_deadline(seen) {
            return wait(
                seen,
                WaitFor::Describe,
                format!(
                    "{} swarm node(s) have not described themselves yet: the instance may be one of them",
                    seen.swarm.undescribed_nodes
                ),
            );
        }
        return Step::Complete {
            result: ActionResult::Continue,
            reason: "the instance has no node in the swarm (never joined, or drained and removed)"
                .into(),
            forced: false,
        };
    };
    if node.role == NodeRole::Manager {
        return demotion(seen, node);
    }
    if node.availability != Availability::Drain {
        return before_drain(seen, node);
    }
    // Drained: the surges for this node are over once Swarm has taken the node's tasks out of
    // their services (they no longer count as wanted there). Given back then, while the
    // drain's own replacements are still pending or starting, Swarm's scale-down removes those
    // first (it prefers tasks not running, all else equal) and keeps the surged replicas that
    // serve. Given back before, it could remove a surged replica and keep the node's task,
    // whose stop then leaves the service without a running one. Waiting for the replacements
    // instead would need room for both, which a service that fills its nodes (host ports,
    // constraints) does not have.
    let (surged, reaching): (Vec<&ServiceFacts>, Vec<&ServiceFacts>) = seen
        .swarm
        .services
        .iter()
        .filter(|s| s.surge.for_node.is_some())
        .partition(|s| s.on_node == 0);
    if !surged.is_empty() {
        return Step::Restore {
            node_id: node.id.clone(),
            reason: format!(
                "the node is drained: {} given back the count before the surge",
                names(surged.iter().map(|s| s.name.as_str()))
            ),
            services: surged
                .iter()
                .map(|s| (s.id.clone(), s.name.clone()))
                .collect(),
        };
    }
    if !reaching.is_empty() && !past_deadline(seen) {
        return wait(
            seen,
            WaitFor::Tasks,
            format!(
                "the drain has not reached the tasks of {} on the node yet: their count is given back after",
                names(reaching.iter().map(|s| s.name.as_str()))
            ),
        );
    }
    let pending = still_moving(seen, node);
    if pending.is_empty() {
        return Step::RemoveNode {
            node_id: node.id.clone(),
            reason: "drained: every task it ran runs elsewhere".into(),
            forced: false,
        };
    }
    let pending = pending.join("; ");
    if past_deadline(seen) {
        return Step::RemoveNode {
            node_id: node.id.clone(),
            reason: format!(
                "drain deadline of {} passed after {}, and still {pending}",
                secs(seen.deadline),
                secs(seen.elapsed)
            ),
            forced: true,
        };
    }
    wait(seen, WaitFor::Tasks, pending)
}

/// Before the drain, the surge: the node paused (so new replicas go elsewhere), each
/// replicated service with tasks on it scaled up by those tasks, and the drain once the new
/// replicas run (healthy, where the service has a health check: Swarm counts a task running
/// only then). A service whose new replicas cannot be placed, or are not running after a
/// third of the drain deadline, is drained as it stands, and the reason says so. Without the
/// surge (the stack's setting, a Down node), the drain at once, as Swarm does it.
fn before_drain(seen: &Observation, node: &NodeFacts) -> Step {
    let drain = |reason: String| Step::Drain {
        node_id: node.id.clone(),
        reason,
    };
    // A Down node's tasks cannot serve anyway. A manager just demoted reads neither Ready nor
    // Down for a moment while it reconnects as a worker: its tasks still run, and are surged.
    if !seen.surge || node.state == NodeState::Down {
        return drain("Swarm reschedules its tasks on the other nodes".into());
    }
    if node.availability == Availability::Active {
        return Step::Pause {
            node_id: node.id.clone(),
            reason:
                "its replicated services are scaled up before it drains: new replicas go elsewhere"
                    .into(),
        };
    }
    let to_surge: Vec<(String, String, u64)> = seen
        .swarm
        .services
        .iter()
        .filter(|s| surgeable(s) && s.surge.for_node.is_none())
        .map(|s| (s.id.clone(), s.name.clone(), s.on_node))
        .collect();
    if !to_surge.is_empty() {
        return Step::Surge {
            node_id: node.id.clone(),
            reason: format!(
                "{} scaled up by their tasks on the node, so none is ever down",
                names(to_surge.iter().map(|(_, name, _)| name.as_str()))
            ),
            services: to_surge,
        };
    }
    let surged = seen
        .swarm
        .services
        .iter()
        .filter(|s| s.surge.for_node.is_some());
    let (stuck, starting): (Vec<&ServiceFacts>, Vec<&ServiceFacts>) = surged
        .filter(|s| match s.mode {
            ServiceMode::Replicated { desired } => s.running_elsewhere + s.on_node < desired,
            _ => false,
        })
        .partition(|s| s.unplaceable.is_some());
    let patience = seen.deadline / 3;
    if !starting.is_empty() && seen.elapsed < patience {
        return wait(
            seen,
            WaitFor::Surge,
            starting
                .iter()
                .map(|s| match s.mode {
                    ServiceMode::Replicated { desired } => format!(
                        "service {}: {} of {} replicas running elsewhere before the drain",
                        s.name,
                        s.running_elsewhere,
                        desired.saturating_sub(s.on_node)
                    ),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    let mut reason = "the surge is running elsewhere: Swarm moves the node's tasks away".to_owned();
    for service in &stuck {
        reason.push_str(&format!(
            "; service {} drained as it stands, its new replicas cannot be placed ({})",
            service.name,
            service.unplaceable.as_deref().unwrap_or_default()
        ));
    }
    for service in &starting {
        reason.push_str(&format!(
            "; service {} drained as it stands, its new replicas not running after {}",
            service.name,
            secs(patience)
        ));
    }
    drain(reason)
}

/// Whether a service is scaled up before its node drains: replicated (a global service's
/// task never moves, a job's runs to its end), with tasks on the node, and not opted out.
fn surgeable(service: &ServiceFacts) -> bool {
    matches!(service.mode, ServiceMode::Replicated { .. })
        && service.on_node > 0
        && !service.surge.opted_out
}

/// Names, comma-separated.
fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// A manager goes only demoted, and is demoted only while the managers left keep a
/// reachable Raft majority (swarmkit refuses otherwise too; saying why beats a refusal).
fn demotion(seen: &Observation, node: &NodeFacts) -> Step {
    let blocked = if seen.swarm.managers <= 1 {
        "it is the only manager: demoting it would end the swarm; waiting for another manager to join".to_owned()
    } else {
        let members_after = seen.swarm.managers - 1;
        let reachable_after = seen
            .swarm
            .reachable_managers
            .saturating_sub(u32::from(node.reachable));
        let majority = members_after / 2 + 1;
        if reachable_after >= majority {
            return Step::Demote {
                node_id: node.id.clone(),
                reason: format!(
                    "{reachable_after} of the {members_after} managers left are reachable, a majority ({majority} needed)"
                ),
            };
        }
        format!(
            "demoting it would leave {reachable_after} reachable of {members_after} managers, below the Raft majority of {majority}: waiting for a manager to come back or join"
        )
    };
    if past_deadline(seen) {
        return Step::Complete {
            result: ActionResult::Continue,
            reason: format!(
                "drain deadline of {} passed after {} with the manager still in Raft: {blocked}",
                secs(seen.deadline),
                secs(seen.elapsed)
            ),
            forced: true,
        };
    }
    wait(seen, WaitFor::Quorum, blocked)
}

/// What the drain still waits for: tasks running on the node, replicated services not back
/// to their count elsewhere. Global services and jobs are not waited for: they never move.
fn still_moving(seen: &Observation, node: &NodeFacts) -> Vec<String> {
    let mut pending = Vec::new();
    // A Down node's tasks cannot report that they stopped: only their replacements count.
    if node.state != NodeState::Down && !seen.swarm.tasks_on_node.is_empty() {
        let mut services: Vec<&str> = seen
            .swarm
            .tasks_on_node
            .iter()
            .map(|t| t.service.as_str())
            .collect();
        services.sort_unstable();
        services.dedup();
        pending.push(format!(
            "{} task(s) still running on the node ({})",
            seen.swarm.tasks_on_node.len(),
            services.join(", ")
        ));
    }
    for service in &seen.swarm.services {
        let ServiceMode::Replicated { desired } = service.mode else {
            continue;
        };
        if service.running_elsewhere < desired {
            let mut line = format!(
                "service {}: {} of {desired} replicas running elsewhere",
                service.name, service.running_elsewhere
            );
            if let Some(why) = &service.unplaceable {
                line.push_str(&format!(" (cannot be placed: {why})"));
            }
            pending.push(line);
        }
    }
    pending
}

fn wait(seen: &Observation, on: WaitFor, reason: String) -> Step {
    Step::Wait {
        on,
        reason,
        heartbeat: seen
            .since_heartbeat
            .is_none_or(|since| since >= seen.heartbeat_every),
    }
}

fn past_deadline(seen: &Observation) -> bool {
    seen.elapsed >= seen.deadline
}

fn secs(duration: Duration) -> String {
    format!("{:.0} s", duration.as_secs_f64())
}
