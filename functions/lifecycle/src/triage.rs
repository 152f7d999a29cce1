//! The parsing front shared by both fronts (Lambda and `serve`): from one SQS message to what
//! the processor does with it, logged once with the message's identity.
//!
//! Nothing is dropped here: a message that cannot be parsed is *kept* (left for the queue's
//! redrive to the dead-letter queue), with its body in the log so an operator can see it.

use aws_lambda_events::event::sqs::SqsMessage;
use swarm_aws::error::error_chain;
use swarm_aws::event::{
    LifecycleAction, LifecycleMessage, ParseError, SpotInterruption, parse_message,
};

use crate::config::Config;

/// What to do with one message.
#[derive(Debug)]
pub enum Triage {
    /// Nothing waits on it (a test notification, another stack's group): delete it.
    Acknowledge {
        /// Why, for the log.
        reason: &'static str,
    },
    /// A lifecycle action of one of our groups: drain or admit the instance.
    Action(LifecycleAction),
    /// A Spot instance is about to be reclaimed, or at risk: drain it now, ahead of any hook.
    Spot(SpotInterruption),
    /// Unreadable: keep it (do not delete) so that SQS redrives it to the dead-letter queue.
    Reject(ParseError),
}

impl Triage {
    /// Decides what to do with a message body.
    pub fn of_body(body: &[u8], config: &Config) -> Self {
        match parse_message(body) {
            Err(error) => Self::Reject(error),
            Ok(LifecycleMessage::TestNotification { .. }) => Self::Acknowledge {
                reason: "test notification: the hook can publish to the queue",
            },
            Ok(LifecycleMessage::Action(action)) if !config.owns(&action.group) => {
                Self::Acknowledge {
                    reason: "the group is not one of this stack's groups",
                }
            }
            Ok(LifecycleMessage::Action(action)) => Self::Action(action),
            Ok(LifecycleMessage::SpotInterruption(spot)) => Self::Spot(spot),
        }
    }

    /// Decides what to do with a record of a Lambda SQS event, and logs the decision.
    pub fn of_record(record: &SqsMessage, config: &Config) -> Self {
        let message_id = record.message_id.as_deref().unwrap_or("-");
        let body = record.body.as_deref().unwrap_or_default();
        let triage = Self::of_body(body.as_bytes(), config);
        triage.log(message_id, body);
        triage
    }

    /// Logs the decision with the fixed fields; a rejected message is logged with its body,
    /// because that log line is all an operator has to find out who sent it.
    pub fn log(&self, message_id: &str, body: &str) {
        match self {
            Self::Acknowledge { reason } => {
                tracing::info!(
                    message_id,
                    step = "acknowledge",
                    reason,
                    "message needs no action"
                );
            }
            Self::Action(action) => tracing::info!(
                message_id,
                step = "triage",
                instance_id = %action.instance_id,
                asg_name = %action.group,
                hook_name = %action.hook,
                transition = action.transition.as_aws_str(),
                "lifecycle action received"
            ),
            Self::Spot(spot) => tracing::warn!(
                message_id,
                step = "triage",
                instance_id = %spot.instance_id,
                notice = ?spot.notice,
                action = %spot.action,
                "spot notice received: draining ahead of the interruption"
            ),
            Self::Reject(error) => tracing::error!(
                message_id,
                step = "reject",
                error = %error,
                cause = error_chain(error).as_deref(),
                body_bytes = body.len(),
                body = &*logged_body(body),
                "malformed message kept for the dead-letter queue"
            ),
        }
    }
}

/// The most of a rejected body one log line carries. CloudWatch Logs cuts an event at 256 KB,
/// and a line that large buries every other; the first few KiB say who sent it.
pub const LOGGED_BODY_BYTES: usize = 4096;

/// The body as logged: whole up to [`LOGGED_BODY_BYTES`], else its prefix (cut on a character
/// boundary) and `…`; the log line gives the whole size beside it.
fn logged_body(body: &str) -> std::borrow::Cow<'_, str> {
    if body.len() <= LOGGED_BODY_BYTES {
        return body.into();
    }
    let mut end = LOGGED_BODY_BYTES;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|var| {
            (var == crate::config::vars::GROUPS).then(|| "swarm-Workers-7QW3ER5TY".to_owned())
        })
        .expect("valid config")
    }

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../shared/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn record(body: Option<&str>) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some("059f36b4-87a3-44ab-83d2-661975830a7d".to_owned());
        record.body = body.map(str::to_owned);
        record
    }

    #[test]
    fn a_termination_of_an_owned_group_is_an_action() {
        let triage = Triage::of_record(&record(Some(&fixture("terminate-direct.json"))), &config());
        assert!(
            matches!(triage, Triage::Action(ref a) if a.instance_id.as_str() == "i-04c2e1f0a9b8d7c65")
        );
    }

    #[test]
    fn a_test_notification_is_acknowledged() {
        let triage =
            Triage::of_record(&record(Some(&fixture("test-notification.json"))), &config());
        assert!(matches!(triage, Triage::Acknowledge { .. }));
    }

    #[test]
    fn an_action_of_a_group_this_stack_does_not_own_is_acknowledged_not_processed() {
        // terminate-eventbridge.json is for the manager group, which `config()` does not own.
        let triage = Triage::of_record(
            &record(Some(&fixture("terminate-eventbridge.json"))),
            &config(),
        );
        assert!(matches!(triage, Triage::Acknowledge { reason } if reason.contains("not one of")));
    }

    #[test]
    fn a_spot_warning_is_passed_on_whatever_the_group() {
        let triage =
            Triage::of_record(&record(Some(&fixture("spot-interruption.json"))), &config());
        assert!(matches!(triage, Triage::Spot(_)));
    }

    #[test]
    fn a_malformed_or_missing_body_is_rejected_and_so_kept_for_the_dead_letter_queue() {
        assert!(matches!(
            Triage::of_record(&record(Some("not json")), &config()),
            Triage::Reject(_)
        ));
        assert!(matches!(
            Triage::of_record(&record(None), &config()),
            Triage::Reject(ParseError::Empty)
        ));
    }

    #[test]
    fn the_error_chain_names_every_cause() {
        let Triage::Reject(error) = Triage::of_body(br#"{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","EC2InstanceId":"x"}"#, &config()) else {
            panic!("expected a rejection");
        };
        assert!(
            error_chain(&error)
                .unwrap_or_default()
                .contains("must start with `i-`")
        );
    }
}
