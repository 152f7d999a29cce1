//! The membership sweep, driven: look at the swarm and the stack's groups, let
//! [`swarm_aws::sweep::decide`] say what heals the membership, and do it.
//!
//! Both fronts run it: `serve` on its own timer and after every completed termination, Lambda
//! on a scheduled rule. Each sweep re-reads everything; every action is idempotent, so a sweep
//! may run twice, in two processes, or beside a drain of the same node.

use std::time::Instant;

use swarm_aws::calls::tallied;
use swarm_aws::error::{Error, error_chain};
use swarm_aws::ids::GroupName;
use swarm_aws::ports::{Groups, LifecycleHooks, SwarmNodes};
use swarm_aws::sweep::{Action, GroupInstance, Outside, Plan, SweepObservation, decide};

use crate::metrics::{SWEEP_ACTIONS, SWEEP_CANNOT_ACT, SWEEPS};
use crate::processor::{Processor, lock};

impl<S: SwarmNodes, H: LifecycleHooks + Groups> Processor<S, H> {
    /// One sweep: look, decide, act. Returns the plan it carried out. A look that fails
    /// decides nothing (an error); an action that fails ends the sweep there (an error), and
    /// the next sweep looks again.
    pub async fn sweep(&self) -> Result<Plan, Error> {
        // The sweep's own calls, counted apart from the drains running beside it: one line a
        // sweep says what it did and what it cost.
        let (plan, calls) = tallied(self.sweep_once()).await;
        let docker_calls = calls.of(swarm_aws::calls::DOCKER);
        let aws_calls = calls.total() - docker_calls;
        let metrics = self.metrics();
        match &plan {
            Ok(plan) => {
                tracing::info!(
                    step = "sweep",
                    actions = plan.actions.len(),
                    held = plan.held.len(),
                    docker_calls,
                    aws_calls,
                    "sweep done"
                );
                metrics.count(&SWEEPS, &["done"]);
                // What an operator must look at: the sweep found it and may not act.
                for _ in plan.held.iter().filter(|held| held.loud) {
                    metrics.count(&SWEEP_CANNOT_ACT, &[]);
                }
            }
            Err(_) => {
                tracing::info!(step = "sweep", docker_calls, aws_calls, "sweep ended early");
                metrics.count(&SWEEPS, &["failed"]);
            }
        }
        plan
    }

    /// [`Processor::sweep`], uncounted.
    async fn sweep_once(&self) -> Result<Plan, Error> {
        // Serialized with the drains' demotions: a demotion here and one there are each
        // decided on a count the other cannot change underneath.
        let _serialized = self.demotions.lock().await;
        let seen = self.look().await?;
        let plan = decide(&seen, &self.config().sweep);
        for held in &plan.held {
            if held.loud {
                tracing::warn!(step = "sweep", subject = %held.subject, reason = %held.reason, "sweep: left alone");
            } else {
                tracing::debug!(step = "sweep", subject = %held.subject, reason = %held.reason, "sweep: left alone");
            }
        }
        for action in &plan.actions {
            self.take(action).await?;
        }
        Ok(plan)
    }

    /// Everything [`decide`] looks at, read now.
    async fn look(&self) -> Result<SweepObservation, Error> {
        let nodes = self.swarm.members().await?;
        let groups: Vec<GroupName> = self.config().groups.iter().cloned().collect();
        let members = self.hooks.instances(&groups).await?;
        // How long each instance has been known: Auto Scaling lists no launch time. An
        // instance no longer listed is forgotten.
        let now = Instant::now();
        let instances: Vec<GroupInstance> = {
            let mut known = lock(&self.known_instances);
            known.retain(|id, _| members.iter().any(|m| &m.instance_id == id));
            members
                .iter()
                .map(|member| {
                    let since = *known.entry(member.instance_id.clone()).or_insert(now);
                    GroupInstance::read(member, now - since)
                })
                .collect()
        };
        let mut seen = SweepObservation {
            nodes,
            instances,
            outside: Default::default(),
        };
        let unplaced = seen.unplaced();
        if !unplaced.is_empty() {
            // Only nodes that are not Ready are ever acted on: only their instances are asked
            // about. A failed call leaves them unknown, which means no action on them.
            let placed = match self.hooks.groups_of(&unplaced).await {
                Ok(placed) => Some(placed),
                Err(error) => {
                    tracing::warn!(step = "sweep", error = %error, cause = error_chain(&error).as_deref(), "cannot tell where the instances of nodes that are not Ready are: nothing is done about them");
                    None
                }
            };
            seen.outside = unplaced
                .into_iter()
                .map(|id| {
                    let outside = Outside::of(&id, placed.as_ref());
                    (id, outside)
                })
                .collect();
        }
        Ok(seen)
    }

    /// Takes one action of a plan.
    async fn take(&self, action: &Action) -> Result<(), Error> {
        let (step, reason) = (action.name(), action.reason());
        self.metrics().count(&SWEEP_ACTIONS, &[step]);
        match action {
            Action::Demote {
                node_id,
                instance_id,
                ..
            } => {
                tracing::warn!(step, node_id, instance_id = %instance_id, reason, "sweep: demoting a lost manager");
                self.swarm.demote(node_id).await
            }
            Action::Remove {
                node_id,
                instance_id,
                ..
            } => {
                tracing::warn!(step, node_id, instance_id = %instance_id, reason, "sweep: removing a lost node");
                self.swarm.remove(node_id).await
            }
            Action::MarkUnhealthy {
                instance_id,
                group,
                node_id,
                ..
            } => {
                tracing::warn!(step, instance_id = %instance_id, asg_name = %group, node_id = node_id.as_deref(), reason, "sweep: marking the instance unhealthy");
                self.hooks.set_unhealthy(instance_id).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fakes::{FakeHooks, FakeSwarm};
    use swarm_aws::drain::{NodeRole, NodeState};
    use swarm_aws::ids::InstanceId;
    use swarm_aws::sweep::SweepNode;

    fn id(n: u32) -> InstanceId {
        format!("i-{n:017x}").as_str().try_into().expect("valid")
    }

    fn node(name: &str, n: u32, role: NodeRole, state: NodeState) -> SweepNode {
        SweepNode {
            id: name.into(),
            instance_id: Some(id(n)),
            role,
            state,
            reachable: role == NodeRole::Manager && state == NodeState::Ready,
            down_for: (state == NodeState::Down).then_some(std::time::Duration::from_secs(60)),
        }
    }

    /// Three managers in service, and two Down workers: one on an instance in no group, one
    /// on an instance of another group.
    fn processor() -> Processor<FakeSwarm, FakeHooks> {
        let swarm = FakeSwarm::with_busy_worker();
        *swarm.members.lock().expect("members") = vec![
            node("m1", 1, NodeRole::Manager, NodeState::Ready),
            node("m2", 2, NodeRole::Manager, NodeState::Ready),
            node("m3", 3, NodeRole::Manager, NodeState::Ready),
            node("lost", 4, NodeRole::Worker, NodeState::Down),
            node("theirs", 5, NodeRole::Worker, NodeState::Down),
        ];
        let hooks = FakeHooks::default();
        *hooks.members.lock().expect("members") = (1..=3)
            .map(|n| swarm_aws::sweep::GroupMember {
                instance_id: id(n),
                group: "managers".try_into().expect("valid"),
                lifecycle_state: "InService".into(),
                health_status: "Healthy".into(),
            })
            .collect();
        hooks
            .elsewhere
            .lock()
            .expect("elsewhere")
            .insert(id(5), "another-stack".try_into().expect("valid"));
        let config = Config::from_lookup(|var| {
            (var == crate::config::vars::GROUPS).then(|| "managers,workers".to_owned())
        })
        .expect("valid");
        Processor::new(swarm, hooks, config)
    }

    #[tokio::test]
    async fn a_lost_node_is_removed_once_however_often_the_sweep_runs() {
        let processor = processor();
        let first = processor.sweep().await.expect("sweeps");
        assert_eq!(first.actions.len(), 1, "{first:?}");
        let again = processor.sweep().await.expect("sweeps");
        assert!(again.actions.is_empty(), "{again:?}");
        assert_eq!(*processor.swarm.calls.lock().expect("calls"), ["remove"]);
        let left: Vec<String> = processor
            .swarm
            .members
            .lock()
            .expect("members")
            .iter()
            .map(|n| n.id.clone())
            .collect();
        assert_eq!(left, ["m1", "m2", "m3", "theirs"]);
    }

    #[tokio::test]
    async fn when_auto_scaling_cannot_say_where_an_instance_is_nothing_is_done() {
        let processor = processor();
        *processor.hooks.groups_of_fails.lock().expect("fails") = true;
        let plan = processor.sweep().await.expect("the look itself succeeded");
        assert!(plan.actions.is_empty(), "{plan:?}");
        assert!(processor.swarm.calls.lock().expect("calls").is_empty());
    }

    #[tokio::test]
    async fn a_completed_termination_asks_for_a_sweep() {
        let processor = processor();
        let body = br#"{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","EC2InstanceId":"i-0598c7d356eba48d7","AutoScalingGroupName":"workers","LifecycleHookName":"drain","LifecycleActionToken":"c613620e-07e2-4ed2-a9e2-ef8258911ade"}"#;
        let Ok(swarm_aws::event::LifecycleMessage::Action(action)) =
            swarm_aws::event::parse_message(body)
        else {
            panic!("the fixture parses");
        };
        processor
            .drive(&action, std::time::Duration::from_secs(5))
            .await
            .expect("drives");
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            processor.sweep_wanted.notified(),
        )
        .await
        .expect("a sweep was asked for");
    }
}
