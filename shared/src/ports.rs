//! The ports: the small traits through which the processor observes and acts, so that its
//! core never imports an SDK. The adapters in [`crate::adapters`] implement them over bollard
//! and the AWS SDK; unit tests use fakes.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use std::collections::HashMap;

use crate::cluster::{ClusterRecord, JoinToken, JoinTokens, Swarm, TokenRole};
use crate::drain::{ActionResult, ActionStatus, SwarmView};
use crate::error::Error;
use crate::event::LifecycleAction;
use crate::ids::{GroupName, InstanceId};
use crate::listeners::{self, Publishing};
use crate::sweep::{GroupMember, SweepNode};

/// The swarm, through a manager.
pub trait SwarmNodes: Send + Sync {
    /// Reads the node of `instance_id` (engine label `instance-id`), the managers, the node's
    /// tasks and the services it served.
    fn observe(
        &self,
        instance_id: &InstanceId,
    ) -> impl Future<Output = Result<SwarmView, Error>> + Send;
    /// Makes a manager a worker (through another manager).
    fn demote(&self, node_id: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Sets a node's availability to `drain`.
    fn drain(&self, node_id: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Sets a node's availability to `pause` (it keeps its tasks and takes no new ones).
    fn pause(&self, node_id: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Scales a service up by `added` for the drain of `node_id`, recorded in its labels
    /// ([`crate::drain::surge`]); done already, it changes nothing.
    fn surge(
        &self,
        service_id: &str,
        node_id: &str,
        added: u64,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Gives a service back its count after the drain of `node_id` (or steps aside when
    /// someone else changed the count); given back already, or gone, it changes nothing.
    fn restore(
        &self,
        service_id: &str,
        node_id: &str,
    ) -> impl Future<Output = Result<Restoration, Error>> + Send;
    /// Removes a (drained, demoted) node from the swarm; a node already gone is not an error.
    fn remove(&self, node_id: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Returns when the swarm may have changed, or after `at_most`.
    fn changed(&self, at_most: Duration) -> impl Future<Output = ()> + Send;
    /// Every node of the swarm, for the membership sweep.
    fn members(&self) -> impl Future<Output = Result<Vec<SweepNode>, Error>> + Send;
    /// The ports every service publishes and their certificate labels, read no earlier than
    /// `not_before` (a service change seen then is in the answer), for the listener sync.
    fn publishing(
        &self,
        not_before: Instant,
    ) -> impl Future<Output = Result<Publishing, Error>> + Send;
    /// Returns `true` when a service was created, updated or removed since `since` (the
    /// managers' event stream: a change made while the caller was busy is not missed; a burst
    /// of changes is one return), or may have been (the stream broke); `false` after
    /// `at_most` of quiet.
    fn services_changed(
        &self,
        since: SystemTime,
        at_most: Duration,
    ) -> impl Future<Output = bool> + Send;
}

/// The stack's Network Load Balancer, its listeners and the sync's target groups, attached
/// to the stack's Auto Scaling groups.
pub trait Balancer: Send + Sync {
    /// What the load balancer has, as [`crate::listeners::decide`] reads it: its listeners,
    /// the sync's target groups and whether the groups have them attached, and the limits.
    /// The swarm's side (`published`, `certificates`) is left empty.
    fn observe(&self) -> impl Future<Output = Result<listeners::Observation, Error>> + Send;
    /// Makes one change. Each is idempotent: made twice, or by two processes, it is made once.
    fn act(&self, action: &listeners::Action) -> impl Future<Output = Result<(), Error>> + Send;
}

/// How a surge's end went, as [`SwarmNodes::restore`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restoration {
    /// The count given back.
    Restored {
        /// The count now.
        replicas: u64,
    },
    /// Someone changed the count during the surge: left as they set it.
    SteppedAside {
        /// The count they set.
        replicas: u64,
        /// The count the surge would have given back.
        expected: u64,
    },
    /// Nothing to give back (given back already, or the service is gone).
    Nothing,
}

/// The stack's Auto Scaling groups, as the membership sweep reads and heals them.
pub trait Groups: Send + Sync {
    /// Every instance of `groups`.
    fn instances(
        &self,
        groups: &[GroupName],
    ) -> impl Future<Output = Result<Vec<GroupMember>, Error>> + Send;
    /// The group each of `instance_ids` is in, whatever group of the account and region; an
    /// instance in none is absent from the answer.
    fn groups_of(
        &self,
        instance_ids: &[InstanceId],
    ) -> impl Future<Output = Result<HashMap<InstanceId, GroupName>, Error>> + Send;
    /// Marks the instance unhealthy: its group replaces it, through its termination hooks.
    fn set_unhealthy(
        &self,
        instance_id: &InstanceId,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// What Auto Scaling answered to a completion or heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Accepted.
    Accepted,
    /// "No active Lifecycle Action found": already completed or timed out. Done, not failed.
    NoActiveAction,
}

/// The lifecycle hooks of Auto Scaling.
pub trait LifecycleHooks: Send + Sync {
    /// Whether the instance still waits on a hook for this transition.
    fn status(
        &self,
        action: &LifecycleAction,
    ) -> impl Future<Output = Result<ActionStatus, Error>> + Send;
    /// Completes the action.
    fn complete(
        &self,
        action: &LifecycleAction,
        result: ActionResult,
    ) -> impl Future<Output = Result<Answer, Error>> + Send;
    /// Restarts the action's heartbeat timeout.
    fn heartbeat(
        &self,
        action: &LifecycleAction,
    ) -> impl Future<Output = Result<Answer, Error>> + Send;
}

/// One message received from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The message id.
    pub id: String,
    /// What deletes it or changes its visibility.
    pub receipt_handle: String,
    /// Its body.
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// The lifecycle queue.
pub trait Queue: Send + Sync {
    /// Long-polls for up to `max` messages, hidden from others for `visibility`.
    fn receive(
        &self,
        max: u8,
        visibility: Duration,
    ) -> impl Future<Output = Result<Vec<Received>, Error>> + Send;
    /// Deletes a handled message.
    fn delete(&self, receipt_handle: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Shows the message again after `after` (zero: now, to another consumer).
    fn show_again(
        &self,
        receipt_handle: &str,
        after: Duration,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Whether a conditional write won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller wrote first: it initialises the swarm.
    Won,
    /// Someone else did.
    Lost,
}

/// The cluster record's store (DynamoDB).
pub trait ClusterStore: Send + Sync {
    /// The record, if any.
    fn read(&self) -> impl Future<Output = Result<Option<ClusterRecord>, Error>> + Send;
    /// Writes `Initializing { owner }` unless a record exists: exactly one caller ever wins.
    fn claim(&self, owner: &str) -> impl Future<Output = Result<Claim, Error>> + Send;
    /// Claims the making of the Docker API's CA for `owner`: exactly one manager wins, and
    /// wins again if it asks again (after a reboot).
    fn claim_ca(&self, owner: &str) -> impl Future<Output = Result<Claim, Error>> + Send;
    /// Replaces the claim of `owner` with the swarm (conditional on the claim being its own).
    fn publish(&self, owner: &str, swarm: &Swarm)
    -> impl Future<Output = Result<(), Error>> + Send;
    /// Removes a manager's address from the recorded swarm (idempotent): it was removed from
    /// the swarm.
    fn remove_manager(&self, address: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Adds a manager's address to the recorded swarm (idempotent).
    fn add_manager(&self, address: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Removes the join tokens a record of an earlier version holds (idempotent): they live in
    /// their secrets now.
    fn forget_tokens(&self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The swarm's join tokens, each a secret of its own, readable only by the roles that join
/// with it (Secrets Manager).
pub trait TokenStore: Send + Sync {
    /// The token for `role`, or `None` while it is not written yet.
    fn read(
        &self,
        role: TokenRole,
    ) -> impl Future<Output = Result<Option<JoinToken>, Error>> + Send;
    /// Writes both tokens (a manager that initialised the swarm, or moves an earlier record's
    /// tokens out). Idempotent.
    fn write(&self, tokens: &JoinTokens) -> impl Future<Output = Result<(), Error>> + Send;
}
