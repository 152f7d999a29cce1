//! What one sweep looked at: the swarm's nodes, the stack's groups, and EC2's word on the
//! instances the groups no longer hold. Plain values, filled in by the adapters or a test table.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::drain::{NodeRole, NodeState};
use crate::ids::{GroupName, InstanceId};

/// One node of the swarm, as a manager lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepNode {
    /// Its swarm node id.
    pub id: String,
    /// Its engine's `instance-id` label; `None` for a node that has not described itself yet,
    /// or that was joined by hand without the label.
    pub instance_id: Option<InstanceId>,
    /// Manager or worker (the spec's role).
    pub role: NodeRole,
    /// Ready, Down or other.
    pub state: NodeState,
    /// For a manager: whether Raft reaches it.
    pub reachable: bool,
    /// How long it has been Down (since the node object last changed), when it is Down.
    pub down_for: Option<Duration>,
}

/// Where an instance of the stack's groups is in its life, from Auto Scaling's
/// `LifecycleState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupLifecycle {
    /// `Pending`, `Pending:Wait`, `Pending:Proceed`: the launch hook owns it.
    Launching,
    /// `InService`.
    InService,
    /// `Terminating`, `Terminating:Wait`, `Terminating:Proceed`, `Terminated`: the
    /// termination hook (the drain) owns it.
    Terminating,
    /// Standby, detaching, warm pool: an operator's business, not the sweep's.
    Other,
}

impl GroupLifecycle {
    /// Reads Auto Scaling's `LifecycleState` value.
    pub fn from_aws_str(state: &str) -> Self {
        match state {
            "Pending" | "Pending:Wait" | "Pending:Proceed" => Self::Launching,
            "InService" => Self::InService,
            s if s.starts_with("Terminat") => Self::Terminating,
            _ => Self::Other,
        }
    }
}

/// One instance of the stack's groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    /// The instance.
    pub instance_id: InstanceId,
    /// Its group, one of the stack's.
    pub group: GroupName,
    /// Where it is in its life.
    pub lifecycle: GroupLifecycle,
    /// Whether Auto Scaling already counts it unhealthy (it is being replaced).
    pub unhealthy: bool,
    /// Time since it was launched.
    pub age: Duration,
}

/// EC2's word on an instance that a node names but none of the stack's groups holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// Terminated, shutting down, or unknown to EC2: the machine is gone.
    Gone,
    /// It exists: an instance of another group, or one detached by an operator.
    Exists,
    /// EC2 could not be asked (the call failed): no action on it.
    Unknown,
}

/// Everything [`super::decide`] looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepObservation {
    /// Every node of the swarm.
    pub nodes: Vec<SweepNode>,
    /// Every instance of the stack's groups.
    pub instances: Vec<GroupInstance>,
    /// For each instance a node names that no group holds: what EC2 says of it.
    pub outside: BTreeMap<InstanceId, Outside>,
}

/// The sweep's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepPolicy {
    /// How long a node may be Down, its instance still in service, before the instance is
    /// marked unhealthy: a reboot or a short network cut heals by itself.
    pub down_grace: Duration,
    /// How old an in-service instance may be without a swarm node before it is marked
    /// unhealthy: the launch hook's deadline and then some, so a joining node is never taken
    /// for a lost one.
    pub join_grace: Duration,
}

impl Default for SweepPolicy {
    fn default() -> Self {
        Self {
            down_grace: Duration::from_secs(300),
            join_grace: Duration::from_secs(900),
        }
    }
}
