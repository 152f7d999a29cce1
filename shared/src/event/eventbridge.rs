//! Events that an EventBridge rule forwards to the queue.

use super::error::{a_json_kind, shorten};
use super::fields::Fields;
use super::{Envelope, LifecycleMessage, ParseError, SpotInterruption, SpotNotice, direct};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};

const AUTOSCALING: &str = "aws.autoscaling";
const EC2: &str = "aws.ec2";
const TERMINATE_ACTION: &str = "EC2 Instance-terminate Lifecycle Action";
const LAUNCH_ACTION: &str = "EC2 Instance-launch Lifecycle Action";
const SPOT_WARNING: &str = "EC2 Spot Instance Interruption Warning";
const REBALANCE: &str = "EC2 Instance Rebalance Recommendation";

/// Whether `object` is an EventBridge event: every one has a `detail-type`, and no Auto
/// Scaling notification has.
pub(super) fn is_event(object: &Map<String, Value>) -> bool {
    object.contains_key("detail-type")
}

pub(super) fn parse(object: Map<String, Value>) -> Result<LifecycleMessage, ParseError> {
    let event: EventBridgeEvent<Value> =
        serde_json::from_value(Value::Object(object)).map_err(|err| ParseError::UnknownShape {
            reason: format!("not an EventBridge event: {err}"),
        })?;
    let Value::Object(detail) = &event.detail else {
        return Err(ParseError::WrongType {
            field: "detail",
            reason: format!("expected an object, found {}", a_json_kind(&event.detail)),
        });
    };
    let detail = Fields(detail);
    match (event.source.as_str(), event.detail_type.as_str()) {
        (AUTOSCALING, TERMINATE_ACTION | LAUNCH_ACTION) => {
            let mut action = direct::action(&detail, Envelope::EventBridge)?;
            // EventBridge carries the time on the envelope, not in `detail`.
            action.time = action.time.or(event.time);
            Ok(LifecycleMessage::Action(action))
        }
        (EC2, SPOT_WARNING) => Ok(LifecycleMessage::SpotInterruption(SpotInterruption {
            instance_id: detail.required_id("instance-id")?,
            notice: SpotNotice::InterruptionWarning,
            action: detail.required_str("instance-action")?.to_owned(),
            time: event.time,
        })),
        (EC2, REBALANCE) => Ok(LifecycleMessage::SpotInterruption(SpotInterruption {
            instance_id: detail.required_id("instance-id")?,
            notice: SpotNotice::RebalanceRecommendation,
            action: String::new(),
            time: event.time,
        })),
        (source, detail_type) => Err(ParseError::UnsupportedEvent {
            source_name: shorten(source),
            detail_type: shorten(detail_type),
        }),
    }
}
