//! Notifications that reach the queue through an SNS topic with an SQS subscription.
//!
//! With raw message delivery off (SNS's default), the SQS body is SNS's own JSON envelope:
//! `"Type": "Notification"`, the topic's ARN, and the notification the hook published as the
//! *string* `Message`. With raw delivery on, the body is the notification itself, which the
//! direct parser reads. (SNS developer guide: "Amazon SNS message and JSON formats",
//! "Amazon SNS raw message delivery".)

use super::error::{json_kind, shorten};
use super::fields::Fields;
use super::{Envelope, LifecycleMessage, ParseError};
use serde_json::{Map, Value};

/// The `Type` of an SNS message that carries a published notification.
const NOTIFICATION: &str = "Notification";

/// Whether `object` is SNS's envelope rather than a notification: SNS always sends both
/// `Type` and `TopicArn`, and no Auto Scaling or EventBridge payload has either.
pub(super) fn is_envelope(object: &Map<String, Value>) -> bool {
    object.contains_key("Type") && object.contains_key("TopicArn")
}

pub(super) fn parse(object: Map<String, Value>) -> Result<LifecycleMessage, ParseError> {
    let fields = Fields(&object);
    let kind = fields.required_str("Type")?;
    if kind != NOTIFICATION {
        // A `SubscriptionConfirmation` reaches the queue when the topic is in another account:
        // it must be confirmed by a person, and nothing waits on it here.
        return Err(ParseError::UnknownShape {
            reason: format!(
                "an SNS message of `Type` `{}`, not `{NOTIFICATION}`",
                shorten(kind)
            ),
        });
    }
    let text = fields.required_str("Message")?;
    let value: Value =
        serde_json::from_str(text).map_err(|source| ParseError::SnsMessageNotJson { source })?;
    let Value::Object(notification) = value else {
        return Err(ParseError::WrongType {
            field: "Message",
            reason: format!(
                "expected a JSON object in the string, found a JSON {}",
                json_kind(&value)
            ),
        });
    };
    // SNS does not nest its envelopes: what it carries is the hook's own notification, or an
    // EventBridge event that a rule published to the topic.
    let inner = super::notification(notification).map_err(|source| ParseError::InSnsMessage {
        source: Box::new(source),
    })?;
    Ok(match inner {
        LifecycleMessage::Action(mut action) if action.envelope == Envelope::Direct => {
            action.envelope = Envelope::Sns;
            LifecycleMessage::Action(action)
        }
        other => other,
    })
}
