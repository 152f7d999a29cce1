//! Why an adapter call failed. Each variant names the call and keeps its cause.

/// What every AWS SDK error tells of the service's answer (one trait, re-exported by each
/// SDK crate).
pub(crate) use aws_sdk_dynamodb::error::ProvideErrorMetadata;

/// The causes of an error, outermost first (what `Error::sources` will give once stable).
pub fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(error.source(), |cause| cause.source())
}

/// The causes of an error, outermost first, joined: `tracing` shows only `Display`, and a
/// top line such as "`swarm join` failed" says nothing without them. `None` when the error
/// has no cause, so that a log line leaves the field out rather than end in `cause=""`
/// (`tracing` records nothing for a `None` field).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let chain = causes(error)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    (!chain.is_empty()).then_some(chain)
}

/// The cause of a failed AWS SDK call as an operator reads it: each message of its chain
/// once (the SDK states a service's message at two levels), the service's error code and
/// message when the chain lacks them, and the request id. Not the SDK's
/// `DisplayErrorContext`, which adds the whole raw HTTP response, headers and all, to
/// every log line.
pub(crate) fn sdk_cause<E>(error: E) -> Box<dyn std::error::Error + Send + Sync>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let mut messages = vec![error.to_string()];
    for cause in causes(&error) {
        let message = cause.to_string();
        if messages.last() != Some(&message) {
            messages.push(message);
        }
    }
    let mut text = messages.join(": ");
    let meta = error.meta();
    for detail in [meta.code(), meta.message()].into_iter().flatten() {
        if !text.contains(detail) {
            text.push_str(&format!(": {detail}"));
        }
    }
    if let Some(id) = meta.extra("aws_request_id") {
        text.push_str(&format!(" (request id {id})"));
    }
    text.into()
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
    /// An Elastic Load Balancing call failed.
    #[error("Elastic Load Balancing call `{call}` failed")]
    LoadBalancing {
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::{ErrorMetadata, SdkError};
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::types::error::ResourceNotFoundException;

    #[test]
    fn a_service_error_reads_as_its_message_once_and_its_request_id_without_the_raw_response() {
        let meta = ErrorMetadata::builder()
            .code("ResourceNotFoundException")
            .message("Requested resource not found")
            .custom("aws_request_id", "req-1")
            .build();
        let service = GetItemError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Requested resource not found")
                .meta(meta)
                .build(),
        );
        let error: SdkError<GetItemError, String> =
            SdkError::service_error(service, "RAW RESPONSE".to_owned());
        let cause = sdk_cause(error).to_string();
        assert!(!cause.contains("RAW RESPONSE"), "{cause}");
        assert_eq!(
            cause.matches("Requested resource not found").count(),
            1,
            "{cause}"
        );
        assert!(cause.contains("ResourceNotFoundException"), "{cause}");
        assert!(cause.ends_with(" (request id req-1)"), "{cause}");
    }

    #[test]
    fn a_timeout_reads_as_what_timed_out() {
        let error: SdkError<GetItemError, String> = SdkError::timeout_error("connect timed out");
        let cause = sdk_cause(error).to_string();
        assert!(cause.contains("connect timed out"), "{cause}");
        assert!(!cause.contains("request id"), "{cause}");
    }
}
