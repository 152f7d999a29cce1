//! The notifications a lifecycle hook publishes to its SQS target, field for field as the EC2
//! Auto Scaling user guide documents them (and as `../shared/aws-samples` shows), sent to
//! moto's queue with `aws-sdk-sqs`.

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::model::{ACCOUNT_ID, Action, Group, Hook, Transition};

/// The message of one lifecycle action.
pub fn lifecycle_message(action: &Action, hook: &Hook, request_id: &str) -> String {
    // A launch goes from EC2 into the group; a termination from the group to EC2.
    let (origin, destination) = match action.transition {
        Transition::Launching => ("EC2", "AutoScalingGroup"),
        Transition::Terminating => ("AutoScalingGroup", "EC2"),
    };
    let mut message = json!({
        "Origin": origin,
        "Destination": destination,
        "Service": "AWS Auto Scaling",
        "Time": now(),
        "AccountId": ACCOUNT_ID,
        "LifecycleTransition": action.transition.as_aws_str(),
        "RequestId": request_id,
        "LifecycleActionToken": action.token,
        "EC2InstanceId": action.instance_id,
        "LifecycleHookName": hook.name,
        "AutoScalingGroupName": action.group,
    });
    if let (Some(metadata), Value::Object(fields)) = (&hook.metadata, &mut message) {
        fields.insert(
            "NotificationMetadata".into(),
            Value::String(metadata.clone()),
        );
    }
    message.to_string()
}

/// The test notification sent when a hook is put.
pub fn test_message(group: &Group, request_id: &str) -> String {
    json!({
        "AccountId": ACCOUNT_ID,
        "RequestId": request_id,
        "AutoScalingGroupARN": group.arn,
        "AutoScalingGroupName": group.name,
        "Service": "AWS Auto Scaling",
        "Event": "autoscaling:TEST_NOTIFICATION",
        "Time": now(),
    })
    .to_string()
}

/// EC2's Spot notice for `instance_id` as an EventBridge rule delivers it to a queue:
/// `EC2 Spot Instance Interruption Warning` (`instance-action: terminate`) when `warning`,
/// else `EC2 Instance Rebalance Recommendation`. (EC2 user guide: Spot instance interruption
/// notices, EC2 instance rebalance recommendations.)
pub fn spot_notice(instance_id: &str, zone: &str, warning: bool) -> String {
    let (detail_type, detail) = if warning {
        (
            "EC2 Spot Instance Interruption Warning",
            json!({ "instance-id": instance_id, "instance-action": "terminate" }),
        )
    } else {
        (
            "EC2 Instance Rebalance Recommendation",
            json!({ "instance-id": instance_id }),
        )
    };
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": ACCOUNT_ID,
        // EventBridge times have second precision.
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": [format!("arn:aws:ec2:{zone}:instance/{instance_id}")],
        "detail": detail,
    })
    .to_string()
}

/// Sends `body` to the queue `target_arn` names (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
pub async fn send(sqs: &aws_sdk_sqs::Client, target_arn: &str, body: String) -> Result<(), String> {
    let mut parts = target_arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("sqs"), Some(_region), Some(account), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(format!("{target_arn} is not an SQS queue ARN"));
    };
    let url = sqs
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| format!("queue {name} not found: {}", short(&e)))?
        .queue_url
        .ok_or_else(|| format!("queue {name} has no URL"))?;
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| format!("cannot send to {name}: {}", short(&e)))?;
    Ok(())
}

/// An SDK error in one line: the service's code and message, or the client's own words.
fn short<E, R>(error: &aws_sdk_sqs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or_default()
        ),
        None => aws_sdk_sqs::error::DisplayErrorContext(error).to_string(),
    }
}

/// Now, with the millisecond precision of direct notifications.
fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscaling::model::HookResult;
    use swarm_aws::event::{LifecycleMessage, parse_message};

    fn hook(metadata: Option<&str>) -> Hook {
        Hook {
            name: "drain".into(),
            group: "workers".into(),
            transition: Transition::Terminating,
            target_arn: None,
            role_arn: None,
            heartbeat_timeout: 60,
            default_result: HookResult::Continue,
            metadata: metadata.map(str::to_owned),
        }
    }

    #[test]
    fn a_termination_message_parses_with_the_products_event_model() {
        let action = Action {
            token: "c613620e-07e2-4ed2-a9e2-ef8258911ade".into(),
            instance_id: "i-0598c7d356eba48d7".into(),
            group: "workers".into(),
            hook: "drain".into(),
            transition: Transition::Terminating,
            heartbeat_deadline: tokio::time::Instant::now(),
            global_deadline: tokio::time::Instant::now(),
            heartbeats: 0,
            outcome: None,
        };
        let body = lifecycle_message(&action, &hook(Some("{\"role\":\"worker\"}")), "r-1");
        let LifecycleMessage::Action(parsed) = parse_message(body.as_bytes()).expect("parses")
        else {
            panic!("not an action: {body}");
        };
        assert_eq!(parsed.instance_id.as_str(), "i-0598c7d356eba48d7");
        assert_eq!(parsed.token.as_str(), action.token);
        assert_eq!(parsed.metadata.as_deref(), Some("{\"role\":\"worker\"}"));
        assert!(body.contains("\"Origin\":\"AutoScalingGroup\""));
    }

    #[test]
    fn a_test_notification_parses_as_one() {
        let group = Group {
            name: "workers".into(),
            arn: crate::autoscaling::model::group_arn("workers", "u"),
            min: 0,
            max: 1,
            desired: 0,
            zones: vec![],
            launch_configuration: "lc".into(),
            tags: vec![],
            created: Utc::now(),
            deleting: false,
            launching_zones: Vec::new(),
            target_groups: Vec::new(),
            detaching: Vec::new(),
        };
        let parsed = parse_message(test_message(&group, "r").as_bytes()).expect("parses");
        assert!(
            matches!(parsed, LifecycleMessage::TestNotification { group: Some(g) } if g.as_str() == "workers")
        );
    }
}
