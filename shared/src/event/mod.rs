//! The lifecycle event model: one parser from an SQS message body to a typed
//! [`LifecycleMessage`].
//!
//! Shapes understood (see the EC2 Auto Scaling user guide, "Amazon EC2 Auto Scaling lifecycle
//! hooks" and "Use EventBridge to handle Auto Scaling events"):
//! - a lifecycle hook whose notification target is the SQS queue itself (PascalCase fields);
//! - `autoscaling:TEST_NOTIFICATION`, sent once when a hook is created;
//! - the same lifecycle action routed through an EventBridge rule (payload under `detail`);
//! - EC2's Spot interruption warning through EventBridge;
//! - any of these published to an SNS topic that the queue subscribes to: SNS's envelope with
//!   the notification as its string `Message` (raw message delivery off), or the notification
//!   itself (raw delivery on).
//!
//! Unknown fields are ignored (AWS adds fields without notice); every required field that is
//! missing or invalid is named in the error, so the log line of a rejected message says what is
//! wrong with it.

mod direct;
mod error;
mod eventbridge;
mod fields;
mod sns;

pub use error::ParseError;

use crate::ids::{ActionToken, GroupName, HookName, InstanceId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The largest body SQS accepts (256 KiB); anything larger did not come from SQS.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What one SQS message tells the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LifecycleMessage {
    /// `autoscaling:TEST_NOTIFICATION`: proof that the hook can publish; acknowledge it.
    TestNotification {
        /// The group whose hook was created, when the notification names it.
        group: Option<GroupName>,
    },
    /// An instance waits in `Pending:Wait` or `Terminating:Wait` for this action to complete.
    Action(LifecycleAction),
    /// EC2 will reclaim a Spot instance in about two minutes, or advises rebalancing away
    /// from it.
    SpotInterruption(SpotInterruption),
}

/// Which way an instance is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// `autoscaling:EC2_INSTANCE_LAUNCHING`: the instance waits in `Pending:Wait`.
    Launching,
    /// `autoscaling:EC2_INSTANCE_TERMINATING`: the instance waits in `Terminating:Wait`.
    Terminating,
}

impl Transition {
    /// The name Auto Scaling gives this transition.
    pub fn as_aws_str(self) -> &'static str {
        match self {
            Self::Launching => "autoscaling:EC2_INSTANCE_LAUNCHING",
            Self::Terminating => "autoscaling:EC2_INSTANCE_TERMINATING",
        }
    }

    /// The transition Auto Scaling calls `name`, if it is one of the two.
    pub fn from_aws_str(name: &str) -> Option<Self> {
        [Self::Launching, Self::Terminating]
            .into_iter()
            .find(|t| t.as_aws_str() == name)
    }

    fn parse(value: &str) -> Result<Self, ParseError> {
        Self::from_aws_str(value)
            .ok_or_else(|| ParseError::UnknownTransition(error::shorten(value)))
    }
}

/// How the notification reached the queue; both carry the same action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Envelope {
    /// The hook's notification target is the queue.
    Direct,
    /// An EventBridge rule forwarded the Auto Scaling event to the queue.
    EventBridge,
    /// The hook's notification target is an SNS topic, and the queue subscribes to it with raw
    /// message delivery off (with it on, the body is the notification: [`Envelope::Direct`]).
    Sns,
}

/// One pending lifecycle action of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleAction {
    /// Launching or terminating.
    pub transition: Transition,
    /// The instance waiting on the hook.
    pub instance_id: InstanceId,
    /// Its Auto Scaling group.
    pub group: GroupName,
    /// The hook that holds it.
    pub hook: HookName,
    /// The token that completes exactly this action.
    pub token: ActionToken,
    /// When Auto Scaling published the action (milliseconds direct, seconds via EventBridge).
    pub time: Option<DateTime<Utc>>,
    /// The hook's `NotificationMetadata`, free text, absent when the hook has none.
    pub metadata: Option<String>,
    /// How it arrived.
    pub envelope: Envelope,
}

/// Which of EC2's Spot notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotNotice {
    /// "EC2 Spot Instance Interruption Warning": reclaimed in about two minutes.
    InterruptionWarning,
    /// "EC2 Instance Rebalance Recommendation": at elevated risk of interruption, possibly
    /// earlier than the warning, with no lead time promised.
    RebalanceRecommendation,
}

/// EC2's notice that a Spot instance is about to be, or at risk of being, reclaimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpotInterruption {
    /// The instance.
    pub instance_id: InstanceId,
    /// Which notice.
    pub notice: SpotNotice,
    /// For a warning: `terminate`, `stop` or `hibernate`; empty for a recommendation.
    pub action: String,
    /// When the notice was issued.
    pub time: Option<DateTime<Utc>>,
}

/// Parses one SQS message body.
///
/// Takes bytes, not `&str`, because the body arrives from the network: invalid UTF-8 is an
/// error to report, not a panic.
pub fn parse_message(body: &[u8]) -> Result<LifecycleMessage, ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(ParseError::TooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|source| ParseError::NotUtf8 { source })?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| ParseError::NotJson { source })?;
    let serde_json::Value::Object(object) = value else {
        return Err(ParseError::NotAnObject {
            found: error::json_kind(&value),
        });
    };
    if sns::is_envelope(&object) {
        sns::parse(object)
    } else {
        notification(object)
    }
}

/// Parses a notification as Auto Scaling or EventBridge publish it, whether it reached the
/// queue straight or inside SNS's envelope.
fn notification(
    object: serde_json::Map<String, serde_json::Value>,
) -> Result<LifecycleMessage, ParseError> {
    if eventbridge::is_event(&object) {
        eventbridge::parse(object)
    } else {
        direct::parse(object)
    }
}

/// Parses an RFC 3339 time field, naming the field when it is not one.
fn parse_time(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<DateTime<Utc>>, ParseError> {
    value
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ParseError::InvalidField {
                    field,
                    reason: format!("`{}` is not an RFC 3339 time", error::shorten(text)),
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests;
