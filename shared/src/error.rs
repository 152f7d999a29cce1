//! Why an adapter call failed. Each variant names the call and keeps its cause.

/// The causes of an error, outermost first (what `Error::sources` will give once stable).
pub fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(error.source(), |cause| cause.source())
}

/// The causes of an error, outermost first, joined: `tracing` shows only `Display`, and a
/// top line such as "`swarm join` failed" says nothing without them.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    causes(error)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// A failure of the outside world, as the adapters meet it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No configured Docker endpoint is a reachable swarm manager (other than the one being
    /// removed).
    #[error("no swarm manager answers; tried: {tried}")]
    NoManager {
        /// Each endpoint and why it was passed over.
        tried: String,
    },
    /// A Docker endpoint setting cannot be used.
    #[error("Docker endpoint `{endpoint}` cannot be used")]
    Endpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// Why.
        #[source]
        source: bollard::errors::Error,
    },
    /// A Docker Engine API call failed.
    #[error("Docker Engine API call `{call}` failed")]
    Docker {
        /// The call (`update node`, `list tasks`, ...).
        call: &'static str,
        /// The client's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// An Auto Scaling call failed.
    #[error("Auto Scaling call `{call}` failed")]
    AutoScaling {
        /// The action.
        call: &'static str,
        /// The SDK's error, with its context.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A DynamoDB call failed.
    #[error("DynamoDB call `{call}` failed")]
    DynamoDb {
        /// The action.
        call: &'static str,
        /// The SDK's error, with its context.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The cluster record in the table is not one this code wrote.
    #[error("the cluster record is malformed: {0}")]
    MalformedRecord(String),
    /// An SQS call failed.
    #[error("SQS call `{call}` failed")]
    Sqs {
        /// The action.
        call: &'static str,
        /// The SDK's error, with its context.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A certificate of the Docker API cannot be made.
    #[error("certificate: cannot {what}")]
    Certificate {
        /// The step.
        what: &'static str,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// A Secrets Manager call failed.
    #[error("Secrets Manager call `{call}` on {secret} failed")]
    SecretsManager {
        /// The action.
        call: &'static str,
        /// The secret's id (its ARN or name; never its value).
        secret: String,
        /// The SDK's error, with its context.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A secret holds something this code did not write.
    #[error("secret {secret} is malformed: {reason}")]
    MalformedSecret {
        /// The secret's id.
        secret: String,
        /// What is wrong (never the value).
        reason: String,
    },
    /// A CloudFormation call failed.
    #[error("CloudFormation call `{call}` failed")]
    CloudFormation {
        /// The action.
        call: &'static str,
        /// The SDK's error, with its context.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS material for the Docker API cannot be read or written.
    #[error("TLS material for the Docker API: {what}")]
    Tls {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
