//! The node bootstrap, run by an instance's user data at boot (and again on reboot, which
//! changes nothing): learn who we are from instance metadata, then, through the cluster
//! record in DynamoDB, either initialise the swarm (the first manager, exactly once, even
//! when every manager boots in the same second) or join it as a manager or a worker.
//!
//! - [`decide`]: the next boot step from what was read, sans IO;
//! - [`run`]: the flow that reads, acts and reads again until the node is in the swarm;
//! - [`retry`]: its error policy: a failed call costs a round, not the boot;
//! - [`tls`]: a manager's Docker API certificate, from the stack's CA (made once).

pub mod decide;
pub mod retry;
pub mod run;
pub mod tls;

/// Why the bootstrap failed. The message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// A setting is missing or wrong.
    #[error("environment variable {var}: {reason}")]
    Config {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The command line is wrong.
    #[error("{0}: usage: bootstrap [tls]")]
    Usage(String),
    /// Instance metadata did not answer.
    #[error("instance metadata: cannot read {what}")]
    Metadata {
        /// The path asked for.
        what: &'static str,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The engine does not carry the instance's label, so the processor could not find it.
    #[error(
        "the Docker engine lacks the label instance-id={expected}: the user data must set it (daemon.json \"labels\") before Docker starts"
    )]
    MissingLabel {
        /// The label value expected.
        expected: String,
    },
    /// A call to DynamoDB or the engine failed.
    #[error(transparent)]
    Adapter(#[from] swarm_aws::error::Error),
    /// The recorded swarm has no manager that answers: starting a second swarm silently
    /// would split the cluster, so the bootstrap stops here.
    #[error(
        "the recorded swarm {swarm_id} has no reachable manager ({managers}); refusing to start a second swarm: bring a manager back, or delete the cluster record to start anew"
    )]
    SwarmGone {
        /// The recorded swarm.
        swarm_id: String,
        /// Its recorded managers.
        managers: String,
        /// The last join failure.
        #[source]
        last: Box<swarm_aws::error::Error>,
    },
    /// Another manager claimed the making of the CA and never wrote it.
    #[error(
        "no Docker API CA after {seconds} s: the manager that claimed it (item `docker-ca` of the cluster table) never wrote it; if it is gone, delete that item and boot again"
    )]
    NoCa {
        /// How long it waited.
        seconds: u64,
        /// The last failed call, if any (each was retried).
        #[source]
        last_error: Option<Box<swarm_aws::error::Error>>,
    },
    /// The address from instance metadata is not an IP address.
    #[error("instance metadata gave `{0}` as the private address")]
    Address(String),
    /// Still waiting when the deadline came.
    #[error("not in the swarm after {seconds} s: {waiting_for}")]
    Timeout {
        /// How long it waited.
        seconds: u64,
        /// What it was waiting for.
        waiting_for: String,
        /// The last failed call, if any (each was retried).
        #[source]
        last_error: Option<Box<swarm_aws::error::Error>>,
    },
}
