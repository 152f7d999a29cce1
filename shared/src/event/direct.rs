//! Notifications that a lifecycle hook publishes straight to its SQS target.

use super::fields::Fields;
use super::{Envelope, LifecycleAction, LifecycleMessage, ParseError, Transition, parse_time};
use serde_json::{Map, Value};

/// The `Event` value of the notification sent when a hook is created.
const TEST_NOTIFICATION: &str = "autoscaling:TEST_NOTIFICATION";

pub(super) fn parse(object: Map<String, Value>) -> Result<LifecycleMessage, ParseError> {
    let fields = Fields(&object);
    if let Some(event) = fields.optional_str("Event")? {
        if event == TEST_NOTIFICATION {
            let group = fields
                .optional_str("AutoScalingGroupName")?
                .map(|name| {
                    name.try_into().map_err(|source| ParseError::InvalidId {
                        field: "AutoScalingGroupName",
                        source,
                    })
                })
                .transpose()?;
            return Ok(LifecycleMessage::TestNotification { group });
        }
        // Auto Scaling's *scaling* notifications (EC2_INSTANCE_LAUNCH, ...) also carry `Event`;
        // they are not lifecycle actions and nothing waits on them.
        return Err(ParseError::UnknownShape {
            reason: format!(
                "`Event` is `{}`, not `{TEST_NOTIFICATION}`, and there is no `LifecycleTransition`",
                super::error::shorten(event)
            ),
        });
    }
    if !object.contains_key("LifecycleTransition") {
        return Err(ParseError::UnknownShape {
            reason: format!(
                "expected `LifecycleTransition`, `Event` or `detail-type`, found {}",
                fields.names()
            ),
        });
    }
    action(&fields, Envelope::Direct).map(LifecycleMessage::Action)
}

/// Reads a lifecycle action from its fields; the direct notification and EventBridge's
/// `detail` use the same names.
pub(super) fn action(
    fields: &Fields<'_>,
    envelope: Envelope,
) -> Result<LifecycleAction, ParseError> {
    Ok(LifecycleAction {
        transition: Transition::parse(fields.required_str("LifecycleTransition")?)?,
        instance_id: fields.required_id("EC2InstanceId")?,
        group: fields.required_id("AutoScalingGroupName")?,
        hook: fields.required_id("LifecycleHookName")?,
        token: fields.required_id("LifecycleActionToken")?,
        time: parse_time("Time", fields.optional_str("Time")?)?,
        metadata: fields
            .optional_str("NotificationMetadata")?
            .map(str::to_owned),
        envelope,
    })
}
