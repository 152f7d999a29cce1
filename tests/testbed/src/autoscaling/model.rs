//! What the emulator knows: launch configurations, groups, their instances and lifecycle
//! hooks, the lifecycle actions in flight, and a history of everything that happened.
//!
//! Plain data behind one mutex (see [`super::Emulator`]); no method here does I/O.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use tokio::time::Instant;

use crate::Role;
pub use swarm_aws::event::Transition;

/// The account moto answers for, used in every ARN the emulator makes.
pub const ACCOUNT_ID: &str = "123456789012";
/// The region of the test bed.
pub const REGION: &str = "us-east-1";

/// Where an instance is in its Auto Scaling lifecycle (the `LifecycleState` of the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LifecycleState {
    /// Launching: its node is being made.
    Pending,
    /// Held by a launch hook.
    #[serde(rename = "Pending:Wait")]
    PendingWait,
    /// Launch hooks done; about to go in service.
    #[serde(rename = "Pending:Proceed")]
    PendingProceed,
    /// Counted as capacity.
    InService,
    /// Termination started.
    Terminating,
    /// Held by a termination hook; its node still runs.
    #[serde(rename = "Terminating:Wait")]
    TerminatingWait,
    /// Termination hooks done; its node is being stopped.
    #[serde(rename = "Terminating:Proceed")]
    TerminatingProceed,
    /// Gone.
    Terminated,
}

impl LifecycleState {
    /// The name the API uses.
    pub fn as_aws_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::PendingWait => "Pending:Wait",
            Self::PendingProceed => "Pending:Proceed",
            Self::InService => "InService",
            Self::Terminating => "Terminating",
            Self::TerminatingWait => "Terminating:Wait",
            Self::TerminatingProceed => "Terminating:Proceed",
            Self::Terminated => "Terminated",
        }
    }

    /// Whether the instance counts toward the group's desired capacity. A terminating instance
    /// does not: Auto Scaling launches its replacement without waiting for it to go.
    pub fn counts_as_capacity(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::PendingWait | Self::PendingProceed | Self::InService
        )
    }

    /// The instance-metadata `autoscaling/target-lifecycle-state`.
    pub fn target(self) -> &'static str {
        if self.counts_as_capacity() {
            "InService"
        } else {
            "Terminated"
        }
    }
}

/// The result of a lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookResult {
    /// Go on (with the remaining hooks, then the transition).
    #[serde(rename = "CONTINUE")]
    Continue,
    /// Launch: the instance is terminated. Terminate: the remaining hooks are skipped.
    #[serde(rename = "ABANDON")]
    Abandon,
}

impl HookResult {
    /// The name the API uses.
    pub fn as_aws_str(self) -> &'static str {
        match self {
            Self::Continue => "CONTINUE",
            Self::Abandon => "ABANDON",
        }
    }

    /// Parses the API's name.
    pub fn from_aws_str(text: &str) -> Option<Self> {
        match text {
            "CONTINUE" => Some(Self::Continue),
            "ABANDON" => Some(Self::Abandon),
            _ => None,
        }
    }
}

/// A launch configuration: what a new instance is, and the user data it boots with.
#[derive(Debug, Clone, Serialize)]
pub struct LaunchConfiguration {
    /// Its name.
    pub name: String,
    /// `arn:aws:autoscaling:...:launchConfiguration:...`.
    pub arn: String,
    /// The image id (recorded, shown; every node runs the test bed's dockerd).
    pub image_id: String,
    /// The instance type (recorded, shown).
    pub instance_type: String,
    /// The user data, base64 as the API takes it; run as the node's boot script.
    pub user_data: Option<String>,
    /// `MetadataOptions.InstanceMetadataTags=enabled`: tags readable from instance metadata.
    pub metadata_tags: bool,
    /// When it was created.
    pub created: DateTime<Utc>,
}

/// A tag of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    /// Its key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Whether instances launched by the group carry it.
    pub propagate_at_launch: bool,
}

/// The tag that tells the test bed whether a group's nodes are managers or workers (their
/// names, `m4` or `w3`, and how the test bed finds a manager to talk to).
pub const ROLE_TAG: &str = "testbed:role";

/// The stack name the test bed's nodes signal (`SIGNAL_STACK`).
pub const TESTBED_STACK: &str = "testbed";

/// An Auto Scaling group.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// `MinSize`.
    pub min: u32,
    /// `MaxSize`.
    pub max: u32,
    /// `DesiredCapacity`.
    pub desired: u32,
    /// Its availability zones, balanced on launch and on scale-in.
    pub zones: Vec<String>,
    /// The launch configuration new instances get.
    pub launch_configuration: String,
    /// Its tags.
    pub tags: Vec<Tag>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// `ForceDelete` in progress: no more launches.
    pub deleting: bool,
    /// The zones of launches whose nodes are being allocated: capacity already.
    pub launching_zones: Vec<String>,
    /// The load balancer target groups attached: an instance is registered when it goes in
    /// service, deregistered when its termination begins.
    pub target_groups: Vec<String>,
    /// Target groups being detached (`Removing`): their instances are deregistering.
    pub detaching: Vec<String>,
}

impl Group {
    /// The role of its nodes, from [`ROLE_TAG`] (workers when absent).
    pub fn role(&self) -> Role {
        match self.tags.iter().find(|t| t.key == ROLE_TAG) {
            Some(tag) if tag.value == "manager" => Role::Manager,
            _ => Role::Worker,
        }
    }
}

/// An instance of a group: a node of the test bed.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    /// The node's instance id.
    pub id: String,
    /// Its group.
    pub group: String,
    /// Its availability zone.
    pub zone: String,
    /// Where it is in its lifecycle.
    pub state: LifecycleState,
    /// The launch configuration it was launched with.
    pub launch_configuration: String,
    /// When it was launched.
    pub launched: DateTime<Utc>,
    /// The test bed node (`w3`).
    pub node: String,
    /// The node's address, by which instance metadata knows who asks.
    pub ip: Ipv4Addr,
    /// Marked `Unhealthy` (`SetInstanceHealth`): the group replaces it.
    pub unhealthy: bool,
}

/// A lifecycle hook.
#[derive(Debug, Clone, Serialize)]
pub struct Hook {
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Launching or terminating.
    pub transition: Transition,
    /// The SQS queue notified, if any.
    pub target_arn: Option<String>,
    /// The role Auto Scaling would assume to publish.
    pub role_arn: Option<String>,
    /// Seconds (API time) before `default_result` applies without a heartbeat.
    pub heartbeat_timeout: u32,
    /// What applies at a timeout.
    pub default_result: HookResult,
    /// Free text passed in every notification.
    pub metadata: Option<String>,
}

impl Hook {
    /// The global timeout: the smaller of 48 hours and 100 times the heartbeat timeout.
    pub fn global_timeout(&self) -> u32 {
        (self.heartbeat_timeout.saturating_mul(100)).min(48 * 3600)
    }
}

/// Why an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// `CompleteLifecycleAction`.
    Completed,
    /// No heartbeat within the heartbeat timeout: the default result applied.
    HeartbeatTimeout,
    /// The global timeout passed: the default result applied.
    GlobalTimeout,
    /// Another hook of the same termination abandoned, so this one was skipped.
    Skipped,
    /// The group was force-deleted.
    GroupDeleted,
}

/// One lifecycle action: an instance held by one hook.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// The token that completes it.
    pub token: String,
    /// The instance held.
    pub instance_id: String,
    /// Its group.
    pub group: String,
    /// The hook.
    pub hook: String,
    /// Launching or terminating.
    pub transition: Transition,
    /// When the heartbeat timeout passes (real time; restarted by a heartbeat).
    #[serde(skip)]
    pub heartbeat_deadline: Instant,
    /// When the global timeout passes (real time; fixed).
    #[serde(skip)]
    pub global_deadline: Instant,
    /// Heartbeats recorded.
    pub heartbeats: u32,
    /// Its result and why, once ended.
    pub outcome: Option<(HookResult, Ending)>,
}

impl Action {
    /// Whether it still holds its instance.
    pub fn is_active(&self) -> bool {
        self.outcome.is_none()
    }
}

/// One line of the history.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When.
    pub at: DateTime<Utc>,
    /// The instance, when it is about one.
    pub instance_id: Option<String>,
    /// The group.
    pub group: String,
    /// What happened, e.g. `Terminating:Wait`, `heartbeat swarm-drain`, `complete CONTINUE`.
    pub what: String,
}

/// Everything the emulator holds.
#[derive(Debug, Default, Serialize)]
pub struct State {
    /// By name.
    pub launch_configurations: BTreeMap<String, LaunchConfiguration>,
    /// By name.
    pub groups: BTreeMap<String, Group>,
    /// By instance id, including terminated ones (their state says so).
    pub instances: BTreeMap<String, Instance>,
    /// By (group, hook name).
    pub hooks: BTreeMap<(String, String), Hook>,
    /// Every action ever started, by token.
    pub actions: BTreeMap<String, Action>,
    /// What happened, in order.
    pub history: Vec<Event>,
    /// CloudFormation signals received (`SignalResource`), in order.
    pub signals: Vec<Signal>,
    /// Rolling updates, by group.
    pub rolling: BTreeMap<String, Rolling>,
    /// Calls to answer as throttled, asked for by a test (`POST /emulator/throttle`).
    pub throttles: Vec<Throttle>,
}

/// Calls of one action about one group to answer `Throttling` ("Rate exceeded"), as Auto
/// Scaling answers a caller over its account's rate.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Throttle {
    /// The API action (`CompleteLifecycleAction`, `DescribeAutoScalingInstances`, ...).
    pub action: String,
    /// The group its calls are about (by `AutoScalingGroupName`, or by the instances asked
    /// about).
    pub group: String,
    /// How many more of its calls to throttle.
    pub remaining: u32,
    /// How many it throttled so far.
    #[serde(default)]
    pub answered: u32,
}

/// A CloudFormation resource signal, as the node bootstrap sends it when it joined.
#[derive(Debug, Clone, Serialize)]
pub struct Signal {
    /// `StackName`.
    pub stack: String,
    /// `LogicalResourceId`: the group.
    pub resource: String,
    /// `UniqueId`: the instance id.
    pub unique_id: String,
    /// SUCCESS or FAILURE.
    pub success: bool,
    /// When it came.
    pub at: DateTime<Utc>,
}

/// Where a rolling update (CloudFormation's `AutoScalingRollingUpdate`) of a group is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rolling {
    /// The launch configuration the group moves to.
    pub launch_configuration: String,
    /// Old instances to replace, in order.
    pub old: Vec<String>,
    /// How many are replaced.
    pub replaced: usize,
    /// The old instance being replaced now.
    pub current_old: Option<String>,
    /// Its replacement.
    pub current_new: Option<String>,
    /// `launching`, `waiting for the new node's signal`, `terminating the old node`, `done`,
    /// or `failed: ...`.
    pub phase: String,
    /// When it started and ended.
    pub started: Option<DateTime<Utc>>,
    /// When it ended (done or failed).
    pub ended: Option<DateTime<Utc>>,
    /// Each replacement: old, new, started, ended.
    pub steps: Vec<RollingStep>,
}

/// One replacement of a rolling update.
#[derive(Debug, Clone, Serialize)]
pub struct RollingStep {
    /// The old instance.
    pub old: String,
    /// The new one.
    pub new: String,
    /// When the new one was asked for.
    pub started: DateTime<Utc>,
    /// When the new one signalled and was in service.
    pub new_ready: Option<DateTime<Utc>>,
    /// When the old one was terminated.
    pub ended: Option<DateTime<Utc>>,
}

impl State {
    /// Records an event.
    pub fn record(&mut self, group: &str, instance_id: Option<&str>, what: impl Into<String>) {
        let what = what.into();
        tracing::info!(asg_name = group, instance_id, what, "event");
        self.history.push(Event {
            at: Utc::now(),
            instance_id: instance_id.map(str::to_owned),
            group: group.to_owned(),
            what,
        });
    }

    /// The instances of `group` that are not terminated, oldest first.
    pub fn members(&self, group: &str) -> Vec<&Instance> {
        let mut members: Vec<&Instance> = self
            .instances
            .values()
            .filter(|i| i.group == group && i.state != LifecycleState::Terminated)
            .collect();
        members.sort_by_key(|i| i.launched);
        members
    }

    /// The hooks of `group` on `transition`.
    pub fn hooks_of(&self, group: &str, transition: Transition) -> Vec<Hook> {
        self.hooks
            .values()
            .filter(|h| h.group == group && h.transition == transition)
            .cloned()
            .collect()
    }

    /// Sets an instance's state and records it.
    pub fn set_state(&mut self, instance_id: &str, state: LifecycleState) {
        let Some(instance) = self.instances.get_mut(instance_id) else {
            return;
        };
        instance.state = state;
        let group = instance.group.clone();
        self.record(&group, Some(instance_id), state.as_aws_str());
    }
}

/// The ARN of a group, in the shape AWS gives it.
pub fn group_arn(name: &str, uuid: &str) -> String {
    format!(
        "arn:aws:autoscaling:{REGION}:{ACCOUNT_ID}:autoScalingGroup:{uuid}:autoScalingGroupName/{name}"
    )
}

/// The ARN of a launch configuration.
pub fn launch_configuration_arn(name: &str, uuid: &str) -> String {
    format!(
        "arn:aws:autoscaling:{REGION}:{ACCOUNT_ID}:launchConfiguration:{uuid}:launchConfigurationName/{name}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(heartbeat_timeout: u32) -> Hook {
        Hook {
            name: "h".into(),
            group: "g".into(),
            transition: Transition::Terminating,
            target_arn: None,
            role_arn: None,
            heartbeat_timeout,
            default_result: HookResult::Abandon,
            metadata: None,
        }
    }

    #[test]
    fn the_global_timeout_is_the_smaller_of_48_hours_and_100_heartbeat_timeouts() {
        assert_eq!(hook(30).global_timeout(), 3000);
        assert_eq!(hook(3600).global_timeout(), 48 * 3600);
        assert_eq!(hook(7200).global_timeout(), 48 * 3600);
        assert_eq!(hook(1728).global_timeout(), 48 * 3600);
    }

    #[test]
    fn only_pending_and_in_service_instances_count_as_capacity() {
        use LifecycleState::*;
        for state in [Pending, PendingWait, PendingProceed, InService] {
            assert!(state.counts_as_capacity(), "{state:?}");
        }
        for state in [Terminating, TerminatingWait, TerminatingProceed, Terminated] {
            assert!(!state.counts_as_capacity(), "{state:?}");
        }
    }
}
