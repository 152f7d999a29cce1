//! What one sweep looked at: the swarm's nodes, the stack's groups, and Auto Scaling's word
//! on the instances those groups no longer hold. Plain values, filled in by the adapters or a test table.

use std::collections::{BTreeMap, HashMap};
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

/// One instance of a group as Auto Scaling lists it (`DescribeAutoScalingGroups`), its states
/// as AWS spells them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The instance.
    pub instance_id: InstanceId,
    /// Its group.
    pub group: GroupName,
    /// Its `LifecycleState` (`InService`, `Terminating:Wait`, ...).
    pub lifecycle_state: String,
    /// Its `HealthStatus` (`Healthy` or `Unhealthy`).
    pub health_status: String,
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
    /// How long the processor has known it in service: Auto Scaling's listing carries no
    /// launch time, so the front counts from the first sweep that saw it (a new process starts
    /// counting anew, which only delays a replacement).
    pub known_for: Duration,
}

impl GroupInstance {
    /// Reads what Auto Scaling listed; `known_for` is the front's count.
    pub fn read(member: &GroupMember, known_for: Duration) -> Self {
        Self {
            instance_id: member.instance_id.clone(),
            group: member.group.clone(),
            lifecycle: GroupLifecycle::from_aws_str(&member.lifecycle_state),
            // `Unhealthy` in DescribeAutoScalingGroups, `UNHEALTHY` in
            // DescribeAutoScalingInstances.
            unhealthy: member.health_status.eq_ignore_ascii_case("Unhealthy"),
            known_for,
        }
    }
}

/// What Auto Scaling says of an instance that a node names but none of the stack's groups
/// holds (`DescribeAutoScalingInstances`, which answers for every group of the account and
/// region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// In no group: terminated (through EC2, a Spot reclaim, a hook that timed out) or
    /// detached. Either way it is no longer a machine of the stack.
    Gone,
    /// An instance of another group: never the sweep's to touch.
    Exists,
    /// Auto Scaling could not be asked (the call failed): no action on it.
    Unknown,
}

impl Outside {
    /// What Auto Scaling's answer (`DescribeAutoScalingInstances`: the group of each instance
    /// it knows) says of `id`; `None`: the call failed.
    pub fn of(id: &InstanceId, placed: Option<&HashMap<InstanceId, GroupName>>) -> Self {
        match placed {
            None => Self::Unknown,
            Some(placed) if placed.contains_key(id) => Self::Exists,
            Some(_) => Self::Gone,
        }
    }
}

/// Everything [`super::decide`] looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepObservation {
    /// Every node of the swarm.
    pub nodes: Vec<SweepNode>,
    /// Every instance of the stack's groups.
    pub instances: Vec<GroupInstance>,
    /// For each instance a node names that none of the stack's groups holds: what Auto Scaling
    /// says of it.
    pub outside: BTreeMap<InstanceId, Outside>,
}

impl SweepObservation {
    /// The instances that nodes not Ready name and none of the stack's groups holds, each
    /// once: where Auto Scaling must be asked whether they are gone. (A Ready node is never
    /// acted on, so its instance need not be looked up.)
    pub fn unplaced(&self) -> Vec<InstanceId> {
        let held: std::collections::BTreeSet<&InstanceId> =
            self.instances.iter().map(|i| &i.instance_id).collect();
        let unplaced: std::collections::BTreeSet<&InstanceId> = self
            .nodes
            .iter()
            .filter(|n| n.state != NodeState::Ready)
            .filter_map(|n| n.instance_id.as_ref())
            .filter(|id| !held.contains(id))
            .collect();
        unplaced.into_iter().cloned().collect()
    }
}

/// The sweep's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepPolicy {
    /// How long a node may be Down, its instance still in service, before the instance is
    /// marked unhealthy: a reboot or a short network cut heals by itself.
    pub down_grace: Duration,
    /// How long an instance may be known in service without a swarm node before it is marked
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
