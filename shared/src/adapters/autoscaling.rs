//! [`LifecycleHooks`] and [`Groups`] over Auto Scaling, with `aws-sdk-autoscaling`.

use std::collections::HashMap;

use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_autoscaling::types::AutoScalingInstanceDetails;

use crate::batch::Batched;

use crate::drain::{ActionResult, ActionStatus};
use crate::error::Error;
use crate::event::LifecycleAction;
use crate::ids::{GroupName, InstanceId};
use crate::ports::{Answer, Groups, LifecycleHooks};
use crate::sweep::GroupMember;

/// The most instance ids `DescribeAutoScalingInstances` takes in one call.
const INSTANCES_PER_CALL: usize = 50;

/// Auto Scaling through the SDK (its endpoint from the standard settings).
pub struct AutoScalingHooks {
    client: Client,
    /// The instances' lifecycle states, read for every drain that asks at once in one call.
    states: Batched<InstanceId, String>,
}

impl AutoScalingHooks {
    /// An adapter over `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            states: Batched::default(),
        }
    }

    /// What Auto Scaling says of each of `instance_ids` (those in no group are not in the
    /// answer), 50 to a call.
    async fn describe(
        &self,
        instance_ids: &[InstanceId],
    ) -> Result<Vec<AutoScalingInstanceDetails>, Error> {
        let mut described = Vec::new();
        for chunk in instance_ids.chunks(INSTANCES_PER_CALL) {
            let answer = self
                .client
                .describe_auto_scaling_instances()
                .set_instance_ids(Some(
                    chunk.iter().map(|id| id.as_str().to_owned()).collect(),
                ))
                .max_records(INSTANCES_PER_CALL as i32)
                .send()
                .await
                .map_err(|e| failed("DescribeAutoScalingInstances", e))?;
            described.extend(answer.auto_scaling_instances.unwrap_or_default());
        }
        Ok(described)
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

/// An Auto Scaling call's failure, its SDK error read for an operator.
pub(crate) fn failed<E, R>(call: &'static str, error: SdkError<E, R>) -> Error
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
        let state = self
            .states
            .get(action.instance_id.clone(), |ids| async move {
                let described = self.describe(&ids).await?;
                Ok(described
                    .iter()
                    .filter_map(|i| {
                        let id = InstanceId::try_from(i.instance_id()?).ok()?;
                        Some((id, i.lifecycle_state()?.to_owned()))
                    })
                    .collect())
            })
            .await?;
        Ok(ActionStatus::of_lifecycle_state(
            action.transition,
            state.as_deref(),
        ))
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

impl Groups for AutoScalingHooks {
    async fn instances(&self, groups: &[GroupName]) -> Result<Vec<GroupMember>, Error> {
        let mut members = Vec::new();
        // Paginated: a page holds up to 50 groups, and the stack has two.
        let mut pages = self
            .client
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(
                groups.iter().map(|g| g.as_str().to_owned()).collect(),
            ))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed("DescribeAutoScalingGroups", e))?;
            for group in page.auto_scaling_groups() {
                let Some(name) = group
                    .auto_scaling_group_name()
                    .and_then(|g| GroupName::try_from(g).ok())
                else {
                    continue;
                };
                for instance in group.instances() {
                    // An id Auto Scaling gives is valid; one that is not is no instance of ours.
                    let Some(instance_id) = instance
                        .instance_id()
                        .and_then(|id| InstanceId::try_from(id).ok())
                    else {
                        continue;
                    };
                    members.push(GroupMember {
                        instance_id,
                        group: name.clone(),
                        lifecycle_state: instance
                            .lifecycle_state()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        health_status: instance.health_status().unwrap_or_default().to_owned(),
                    });
                }
            }
        }
        Ok(members)
    }

    async fn groups_of(
        &self,
        instance_ids: &[InstanceId],
    ) -> Result<HashMap<InstanceId, GroupName>, Error> {
        Ok(self
            .describe(instance_ids)
            .await?
            .iter()
            .filter_map(|instance| {
                Some((
                    InstanceId::try_from(instance.instance_id()?).ok()?,
                    GroupName::try_from(instance.auto_scaling_group_name()?).ok()?,
                ))
            })
            .collect())
    }

    async fn set_unhealthy(&self, instance_id: &InstanceId) -> Result<(), Error> {
        self.client
            .set_instance_health()
            .instance_id(instance_id.as_str())
            .health_status("Unhealthy")
            // The instance has been Down past the sweep's own grace period already.
            .should_respect_grace_period(false)
            .send()
            .await
            .map_err(|e| failed("SetInstanceHealth", e))?;
        Ok(())
    }
}
