//! What the processor observed before it decides: plain values, filled in by the adapters
//! (or by a test table).

use std::time::Duration;

use super::surge::Surge;
use crate::event::Transition;

/// Auto Scaling's view of the action: is the instance still held by the hook?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionStatus {
    /// The instance waits (`Pending:Wait` / `Terminating:Wait`): the action is open.
    Waiting,
    /// The instance has moved on (completed elsewhere, timed out, gone): nothing to complete.
    Ended,
}

impl ActionStatus {
    /// The action's state from the instance's lifecycle state as Auto Scaling describes it
    /// (`None`: the instance is in no group any more): open while the instance waits on the
    /// hook of `transition`.
    ///
    /// ```
    /// use swarm_aws::drain::ActionStatus;
    /// use swarm_aws::event::Transition;
    /// let open = ActionStatus::of_lifecycle_state(Transition::Terminating, Some("Terminating:Wait"));
    /// assert_eq!(open, ActionStatus::Waiting);
    /// ```
    pub fn of_lifecycle_state(transition: Transition, state: Option<&str>) -> Self {
        let waiting_in = match transition {
            Transition::Launching => "Pending:Wait",
            Transition::Terminating => "Terminating:Wait",
        };
        if state == Some(waiting_in) {
            Self::Waiting
        } else {
            Self::Ended
        }
    }
}

/// A swarm node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// A Raft member.
    Manager,
    /// Runs tasks only.
    Worker,
}

/// A swarm node's availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Takes tasks.
    Active,
    /// Keeps its tasks, takes no new ones.
    Pause,
    /// Its tasks are moved away.
    Drain,
}

/// A swarm node's state as the managers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Heartbeating.
    Ready,
    /// Lost: its tasks will not report stopping.
    Down,
    /// Anything else (unknown, disconnected).
    Other,
}

/// The swarm node of the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// Its swarm node id.
    pub id: String,
    /// Manager or worker (the spec's role: what it is, or is becoming).
    pub role: NodeRole,
    /// Its availability.
    pub availability: Availability,
    /// Its state.
    pub state: NodeState,
    /// For a manager: whether Raft reaches it.
    pub reachable: bool,
}

/// A task that still runs (or is starting) on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    /// The task's id.
    pub id: String,
    /// The name of its service.
    pub service: String,
}

/// How a service schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceMode {
    /// A number of replicas, placed anywhere allowed.
    Replicated {
        /// Replicas the service wants.
        desired: u64,
    },
    /// One task per eligible node: its task on a drained node stops and is not replaced.
    Global,
    /// Jobs run to completion: nothing to bring back.
    Job,
}

/// A service that had a task on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFacts {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// How it schedules.
    pub mode: ServiceMode,
    /// Its tasks running on other nodes than the instance's.
    pub running_elsewhere: u64,
    /// Why the scheduler cannot place a missing replica, when it says so (`no suitable
    /// node (...)`).
    pub unplaceable: Option<String>,
    /// Its tasks that occupy the node.
    pub on_node: u64,
    /// What its labels say of the surges before drains.
    pub surge: Surge,
}

/// What the swarm says about one instance's node, as the adapter read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwarmView {
    /// The instance's swarm node, `None` when it is not (or no longer) in the swarm.
    pub node: Option<NodeFacts>,
    /// Nodes that have joined but not yet described themselves (no engine labels yet): the
    /// instance may be one of them, so "not in the swarm" cannot be concluded while any is.
    pub undescribed_nodes: u32,
    /// Raft members (managers) in the swarm, the instance's node included if it is one.
    pub managers: u32,
    /// Of those, how many Raft reaches.
    pub reachable_managers: u32,
    /// Tasks still running or starting on the node.
    pub tasks_on_node: Vec<TaskFacts>,
    /// The services that had a task on the node, and where their tasks run now.
    pub services: Vec<ServiceFacts>,
}

/// Everything [`super::decide`] looks at for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Launching or terminating.
    pub transition: Transition,
    /// Whether the hook still holds the instance.
    pub action: ActionStatus,
    /// What the swarm says of the instance's node and of the managers.
    pub swarm: SwarmView,
    /// Time since Auto Scaling opened the action.
    pub elapsed: Duration,
    /// How long a drain (or a launch's join) may take before the deadline policy applies.
    pub deadline: Duration,
    /// Time since this processor last recorded a heartbeat for the action, `None` if never.
    pub since_heartbeat: Option<Duration>,
    /// How often to heartbeat while waiting (well inside the hook's heartbeat timeout).
    pub heartbeat_every: Duration,
    /// Whether replicated services are scaled up before the node drains (the stack's
    /// setting; a service may still opt out).
    pub surge: bool,
}
