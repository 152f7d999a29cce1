//! Spot notices, driven: EC2's two-minute interruption warning, or its rebalance
//! recommendation, for an instance of the stack's groups starts the instance's drain at once,
//! through the same decision as a termination hook's ([`swarm_aws::drain::decide`]).
//!
//! A lifecycle hook does not hold back a Spot interruption, and the termination hook may
//! arrive with too little of the two minutes left. So the node is demoted (a manager, quorum
//! permitting), drained and removed as soon as the notice comes; when the hook comes, the
//! node is already out of the swarm and the action completes at once. The group replaces the
//! instance when EC2 reclaims it (or at once, with capacity rebalancing); an instance a
//! recommendation drained that is never reclaimed is replaced by the membership sweep, as an
//! instance in service without a node.

use std::time::Duration;

use swarm_aws::drain::Step;
use swarm_aws::error::Error;
use swarm_aws::event::SpotInterruption;
use swarm_aws::ports::{Groups, LifecycleHooks, SwarmNodes};

use crate::processor::{Outcome, Processor, Subject};

impl<S: SwarmNodes, H: LifecycleHooks + Groups> Processor<S, H> {
    /// Drains the node of the instance `notice` names, if the instance is one of the stack's,
    /// until its node is out of the swarm, or until `budget` runs out while it waits.
    pub async fn drain_ahead(
        &self,
        notice: &SpotInterruption,
        budget: Duration,
    ) -> Result<Outcome, Error> {
        let id = &notice.instance_id;
        // Whose instance: EventBridge sends every Spot notice of the account and region.
        let placed = self.hooks.groups_of(std::slice::from_ref(id)).await?;
        if !placed
            .get(id)
            .is_some_and(|group| self.config().owns(group))
        {
            let step = Step::Done {
                reason: "the instance is not in one of the stack's groups".into(),
            };
            tracing::info!(
                step = step.name(),
                reason = step.reason(),
                "nothing to drain"
            );
            return Ok(Outcome::Finished(step));
        }
        self.follow(Subject::Notice(notice), budget).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fakes::{FakeHooks, FakeSwarm};
    use swarm_aws::event::{LifecycleMessage, parse_message};

    /// A busy worker's instance, in the group `group`.
    fn processor(group: &str) -> (Processor<FakeSwarm, FakeHooks>, SpotInterruption) {
        let body = br#"{"version":"0","id":"1","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","account":"1","time":"2026-12-05T00:00:00Z","region":"us-east-1","resources":[],"detail":{"instance-id":"i-0598c7d356eba48d7","instance-action":"terminate"}}"#;
        let Ok(LifecycleMessage::SpotInterruption(notice)) = parse_message(body) else {
            panic!("the fixture parses");
        };
        let hooks = FakeHooks::default();
        hooks
            .elsewhere
            .lock()
            .expect("groups")
            .insert(notice.instance_id.clone(), group.try_into().expect("valid"));
        let config = Config::from_lookup(|var| {
            (var == crate::config::vars::GROUPS).then(|| "workers".to_owned())
        })
        .expect("valid");
        (
            Processor::new(FakeSwarm::with_busy_worker(), hooks, config),
            notice,
        )
    }

    #[tokio::test]
    async fn a_notice_for_an_instance_of_the_stack_drains_and_removes_its_node_with_no_hook() {
        let (processor, notice) = processor("workers");
        let outcome = processor
            .drain_ahead(&notice, Duration::from_secs(5))
            .await
            .expect("drains");
        assert!(
            matches!(outcome, Outcome::Finished(Step::Complete { .. })),
            "{outcome:?}"
        );
        assert_eq!(
            *processor.swarm.calls.lock().expect("calls"),
            ["pause", "surge", "drain", "restore", "remove"]
        );
        assert!(
            processor
                .hooks
                .completed
                .lock()
                .expect("completed")
                .is_empty()
        );
        assert_eq!(*processor.hooks.heartbeats.lock().expect("heartbeats"), 0);
        // Delivered again: nothing more to do.
        processor
            .drain_ahead(&notice, Duration::from_secs(5))
            .await
            .expect("again");
        assert_eq!(
            *processor.swarm.calls.lock().expect("calls"),
            ["pause", "surge", "drain", "restore", "remove"]
        );
    }

    #[tokio::test]
    async fn a_notice_for_another_groups_instance_is_left_alone() {
        let (processor, notice) = processor("another-stack");
        let outcome = processor
            .drain_ahead(&notice, Duration::from_secs(5))
            .await
            .expect("answers");
        assert!(
            matches!(outcome, Outcome::Finished(Step::Done { .. })),
            "{outcome:?}"
        );
        assert!(processor.swarm.calls.lock().expect("calls").is_empty());
    }
}
