//! [`Queue`] over SQS, with `aws-sdk-sqs`.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::error::Error;
use crate::ports::{Queue, Received};

/// Long polling: the longest wait SQS allows, so an idle consumer costs one call per 20 s.
const LONG_POLL_SECS: i32 = 20;

/// One SQS queue.
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    /// The queue at `url`.
    pub fn new(client: Client, url: String) -> Self {
        Self { client, url }
    }
}

fn failed<E, R>(call: &'static str, error: SdkError<E, R>) -> Error
where
    E: std::error::Error + crate::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    Error::Sqs {
        call,
        source: crate::error::sdk_cause(error),
    }
}

impl Queue for SqsQueue {
    async fn receive(&self, max: u8, visibility: Duration) -> Result<Vec<Received>, Error> {
        let answer = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::from(max.clamp(1, 10)))
            .wait_time_seconds(LONG_POLL_SECS)
            .visibility_timeout(visibility.as_secs().max(1) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| failed("ReceiveMessage", e))?;
        Ok(answer
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| Received {
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
                id: m.message_id.unwrap_or_default(),
                receipt_handle: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), Error> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| failed("DeleteMessage", e))?;
        Ok(())
    }

    async fn show_again(&self, receipt_handle: &str, after: Duration) -> Result<(), Error> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(after.as_secs() as i32)
            .send()
            .await
            .map_err(|e| failed("ChangeMessageVisibility", e))?;
        Ok(())
    }
}
