//! The parsing front shared by both fronts (Lambda and `serve`): from one SQS message to what
//! the processor does with it, logged once with the message's identity.
//!
//! Nothing is dropped here: a message that cannot be parsed is *kept* (left for the queue's
//! redrive to the dead-letter queue), with its body in the log so an operator can see it.

use swarm_aws::error::error_chain;
use swarm_aws::event::{
    LifecycleAction, LifecycleMessage, ParseError, SpotInterruption, parse_message,
};

use crate::config::Config;
use crate::metrics::MESSAGES_REJECTED;
use crate::processor::Processor;
use swarm_aws::ports::{LifecycleHooks, SwarmNodes};

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

impl<S: SwarmNodes, H: LifecycleHooks> Processor<S, H> {
    /// What to do with the message `message_id` whose body is `body`: decided, logged, and
    /// counted when it cannot be read. Both fronts take their messages through it.
    pub fn triage(&self, message_id: &str, body: &str) -> Triage {
        let triage = Triage::of_body(body.as_bytes(), self.config());
        triage.log(message_id, body);
        if matches!(triage, Triage::Reject(_)) {
            self.metrics().count(&MESSAGES_REJECTED, &[]);
        }
        triage
    }
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

    /// What a processor of `config()` makes of a message whose body is `body`.
    fn triage(body: &str) -> Triage {
        processor().triage("059f36b4-87a3-44ab-83d2-661975830a7d", body)
    }

    fn processor() -> Processor<crate::fakes::FakeSwarm, crate::fakes::FakeHooks> {
        Processor::new(
            crate::fakes::FakeSwarm::with_busy_worker(),
            crate::fakes::FakeHooks::default(),
            config(),
        )
    }

    #[test]
    fn a_termination_of_an_owned_group_is_an_action() {
        let triage = triage(&fixture("terminate-direct.json"));
        assert!(
            matches!(triage, Triage::Action(ref a) if a.instance_id.as_str() == "i-04c2e1f0a9b8d7c65")
        );
    }

    #[test]
    fn a_test_notification_is_acknowledged() {
        let triage = triage(&fixture("test-notification.json"));
        assert!(matches!(triage, Triage::Acknowledge { .. }));
    }

    #[test]
    fn an_action_of_a_group_this_stack_does_not_own_is_acknowledged_not_processed() {
        // terminate-eventbridge.json is for the manager group, which `config()` does not own.
        let triage = triage(&fixture("terminate-eventbridge.json"));
        assert!(matches!(triage, Triage::Acknowledge { reason } if reason.contains("not one of")));
    }

    #[test]
    fn a_spot_warning_is_passed_on_whatever_the_group() {
        let triage = triage(&fixture("spot-interruption.json"));
        assert!(matches!(triage, Triage::Spot(_)));
    }

    #[test]
    fn a_malformed_or_missing_body_is_rejected_and_so_kept_for_the_dead_letter_queue() {
        let processor = processor();
        assert!(matches!(
            processor.triage("m-1", "not json"),
            Triage::Reject(_)
        ));
        assert!(matches!(
            processor.triage("m-2", ""),
            Triage::Reject(ParseError::Empty)
        ));
        // Counted, for the alarm an operator will want.
        assert!(
            processor
                .metrics()
                .prometheus()
                .lines()
                .any(|l| l == "swarm_lifecycle_messages_rejected_total 2"),
            "{}",
            processor.metrics().prometheus()
        );
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
