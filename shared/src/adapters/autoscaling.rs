//! [`LifecycleHooks`] over Auto Scaling, with `aws-sdk-autoscaling`.

use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::error::{ProvideErrorMetadata, SdkError};

use crate::drain::{ActionResult, ActionStatus};
use crate::error::Error;
use crate::event::{LifecycleAction, Transition};
use crate::ports::{Answer, LifecycleHooks};

/// Auto Scaling through the SDK (its endpoint from the standard settings).
pub struct AutoScalingHooks {
    client: Client,
}

impl AutoScalingHooks {
    /// An adapter over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// What AWS answers when the action has already ended (completed, timed out, abandoned):
/// `ValidationError`, "No active Lifecycle Action found with ...".
fn is_no_active_action<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.as_service_error().is_some_and(|e| {
        e.code() == Some("ValidationError")
            && e.message()
                .is_some_and(|m| m.starts_with("No active Lifecycle Action found"))
    })
}

fn failed<E, R>(call: &'static str, error: SdkError<E, R>) -> Error
where
    E: std::error::Error + crate::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    Error::AutoScaling {
        call,
        source: crate::error::sdk_cause(error),
    }
}

impl LifecycleHooks for AutoScalingHooks {
    async fn status(&self, action: &LifecycleAction) -> Result<ActionStatus, Error> {
        let answer = self
            .client
            .describe_auto_scaling_instances()
            .instance_ids(action.instance_id.as_str())
            .send()
            .await
            .map_err(|e| failed("DescribeAutoScalingInstances", e))?;
        let waiting_in = match action.transition {
            Transition::Launching => "Pending:Wait",
            Transition::Terminating => "Terminating:Wait",
        };
        let state = answer
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.lifecycle_state());
        Ok(if state == Some(waiting_in) {
            ActionStatus::Waiting
        } else {
            ActionStatus::Ended
        })
    }

    async fn complete(
        &self,
        action: &LifecycleAction,
        result: ActionResult,
    ) -> Result<Answer, Error> {
        let sent = self
            .client
            .complete_lifecycle_action()
            .auto_scaling_group_name(action.group.as_str())
            .lifecycle_hook_name(action.hook.as_str())
            .lifecycle_action_token(action.token.as_str())
            .instance_id(action.instance_id.as_str())
            .lifecycle_action_result(result.as_aws_str())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Answer::Accepted),
            Err(error) if is_no_active_action(&error) => Ok(Answer::NoActiveAction),
            Err(error) => Err(failed("CompleteLifecycleAction", error)),
        }
    }

    async fn heartbeat(&self, action: &LifecycleAction) -> Result<Answer, Error> {
        let sent = self
            .client
            .record_lifecycle_action_heartbeat()
            .auto_scaling_group_name(action.group.as_str())
            .lifecycle_hook_name(action.hook.as_str())
            .lifecycle_action_token(action.token.as_str())
            .instance_id(action.instance_id.as_str())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Answer::Accepted),
            Err(error) if is_no_active_action(&error) => Ok(Answer::NoActiveAction),
            Err(error) => Err(failed("RecordLifecycleActionHeartbeat", error)),
        }
    }
}
