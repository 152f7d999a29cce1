//! Fakes of the ports, for unit tests of the processor's own logic (the drive loop, the
//! fronts' bookkeeping). They model just enough of a swarm to move: a drain empties the node
//! and its replicas come back elsewhere at once; a removal takes the node away. The real
//! swarm is exercised by the end-to-end tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use swarm_aws::drain::{
    ActionResult, ActionStatus, Availability, NodeFacts, NodeRole, NodeState, ServiceFacts,
    ServiceMode, SwarmView, TaskFacts,
};
use swarm_aws::error::Error;
use swarm_aws::event::LifecycleAction;
use swarm_aws::ids::{GroupName, InstanceId};
use swarm_aws::listeners::{self, Listener, Observation, Publishing, TargetGroup};
use swarm_aws::ports::{
    Answer, Balancer, Groups, LifecycleHooks, Queue, Received, Restoration, SwarmNodes,
};
use swarm_aws::sweep::{GroupMember, SweepNode};

/// One worker running one replica of a 2-replica service, in a 3-manager swarm.
pub struct FakeSwarm {
    pub view: Mutex<SwarmView>,
    pub calls: Mutex<Vec<String>>,
    /// Every node, for the sweep; a removal takes one away.
    pub members: Mutex<Vec<SweepNode>>,
    /// What the services publish, for the listener sync.
    pub publishing: Mutex<Publishing>,
}

impl FakeSwarm {
    pub fn with_busy_worker() -> Self {
        Self {
            view: Mutex::new(SwarmView {
                node: Some(NodeFacts {
                    id: "node-w1".into(),
                    role: NodeRole::Worker,
                    availability: Availability::Active,
                    state: NodeState::Ready,
                    reachable: false,
                }),
                undescribed_nodes: 0,
                managers: 3,
                reachable_managers: 3,
                tasks_on_node: vec![TaskFacts {
                    id: "t1".into(),
                    service: "web".into(),
                }],
                services: vec![ServiceFacts {
                    id: "svc-web".into(),
                    name: "web".into(),
                    mode: ServiceMode::Replicated { desired: 2 },
                    running_elsewhere: 1,
                    unplaceable: None,
                    on_node: 1,
                    surge: Default::default(),
                }],
            }),
            calls: Mutex::new(Vec::new()),
            members: Mutex::new(Vec::new()),
            publishing: Mutex::new(Publishing::default()),
        }
    }

    fn call(&self, what: &str) {
        self.calls.lock().expect("calls").push(what.to_owned());
    }
}

impl SwarmNodes for FakeSwarm {
    async fn observe(&self, _instance_id: &InstanceId) -> Result<SwarmView, Error> {
        Ok(self.view.lock().expect("view").clone())
    }

    async fn demote(&self, _node_id: &str) -> Result<(), Error> {
        self.call("demote");
        Ok(())
    }

    async fn drain(&self, _node_id: &str) -> Result<(), Error> {
        self.call("drain");
        let mut view = self.view.lock().expect("view");
        if let Some(node) = view.node.as_mut() {
            node.availability = Availability::Drain;
        }
        view.tasks_on_node.clear();
        // Every replica runs elsewhere at once.
        for service in &mut view.services {
            if let ServiceMode::Replicated { desired } = service.mode {
                service.running_elsewhere = desired;
            }
            service.on_node = 0;
        }
        Ok(())
    }

    async fn pause(&self, _node_id: &str) -> Result<(), Error> {
        self.call("pause");
        let mut view = self.view.lock().expect("view");
        if let Some(node) = view.node.as_mut() {
            node.availability = Availability::Pause;
        }
        Ok(())
    }

    async fn surge(&self, service_id: &str, _node_id: &str, added: u64) -> Result<(), Error> {
        self.call("surge");
        // The new replicas run elsewhere at once.
        let mut view = self.view.lock().expect("view");
        for service in view.services.iter_mut().filter(|s| s.id == service_id) {
            if let ServiceMode::Replicated { desired } = service.mode {
                service.surge.base = Some(desired);
                service.surge.for_node = Some(added);
                service.mode = ServiceMode::Replicated {
                    desired: desired + added,
                };
                service.running_elsewhere += added;
            }
        }
        Ok(())
    }

    async fn restore(&self, service_id: &str, _node_id: &str) -> Result<Restoration, Error> {
        self.call("restore");
        let mut view = self.view.lock().expect("view");
        for service in view.services.iter_mut().filter(|s| s.id == service_id) {
            if let (Some(added), ServiceMode::Replicated { desired }) =
                (service.surge.for_node.take(), service.mode)
            {
                service.mode = ServiceMode::Replicated {
                    desired: desired - added,
                };
                return Ok(Restoration::Restored {
                    replicas: desired - added,
                });
            }
        }
        Ok(Restoration::Nothing)
    }

    async fn remove(&self, node_id: &str) -> Result<(), Error> {
        self.call("remove");
        self.view.lock().expect("view").node = None;
        self.members
            .lock()
            .expect("members")
            .retain(|n| n.id != node_id);
        Ok(())
    }

    async fn changed(&self, at_most: Duration) {
        tokio::time::sleep(at_most).await;
    }

    async fn members(&self) -> Result<Vec<SweepNode>, Error> {
        Ok(self.members.lock().expect("members").clone())
    }

    async fn publishing(&self, _not_before: std::time::Instant) -> Result<Publishing, Error> {
        Ok(self.publishing.lock().expect("publishing").clone())
    }

    async fn services_changed(&self, _since: std::time::SystemTime, at_most: Duration) -> bool {
        tokio::time::sleep(at_most).await;
        false
    }
}

/// Auto Scaling holding one instance until its action is completed; for the sweep, the
/// stack's groups and where other instances are.
#[derive(Default)]
pub struct FakeHooks {
    pub completed: Mutex<Vec<ActionResult>>,
    pub heartbeats: Mutex<u32>,
    /// The instances of the stack's groups.
    pub members: Mutex<Vec<GroupMember>>,
    /// Instances of other groups.
    pub elsewhere: Mutex<HashMap<InstanceId, GroupName>>,
    /// Whether `groups_of` fails.
    pub groups_of_fails: Mutex<bool>,
    /// Instances marked unhealthy.
    pub unhealthy: Mutex<Vec<InstanceId>>,
    /// `DescribeAutoScalingInstances` calls made (`status`).
    pub status_reads: Mutex<u32>,
    /// Whether the action ended elsewhere (completed by another processor, timed out).
    pub ended_elsewhere: Mutex<bool>,
}

impl LifecycleHooks for FakeHooks {
    async fn status(&self, _action: &LifecycleAction) -> Result<ActionStatus, Error> {
        *self.status_reads.lock().expect("reads") += 1;
        let ended = *self.ended_elsewhere.lock().expect("ended");
        Ok(
            if self.completed.lock().expect("completed").is_empty() && !ended {
                ActionStatus::Waiting
            } else {
                ActionStatus::Ended
            },
        )
    }

    async fn complete(
        &self,
        _action: &LifecycleAction,
        result: ActionResult,
    ) -> Result<Answer, Error> {
        let mut completed = self.completed.lock().expect("completed");
        completed.push(result);
        Ok(if completed.len() == 1 {
            Answer::Accepted
        } else {
            Answer::NoActiveAction
        })
    }

    async fn heartbeat(&self, _action: &LifecycleAction) -> Result<Answer, Error> {
        *self.heartbeats.lock().expect("heartbeats") += 1;
        Ok(Answer::Accepted)
    }
}

impl Groups for FakeHooks {
    async fn instances(&self, _groups: &[GroupName]) -> Result<Vec<GroupMember>, Error> {
        Ok(self.members.lock().expect("members").clone())
    }

    async fn groups_of(
        &self,
        instance_ids: &[InstanceId],
    ) -> Result<HashMap<InstanceId, GroupName>, Error> {
        if *self.groups_of_fails.lock().expect("fails") {
            return Err(Error::MalformedRecord(
                "the fake's Auto Scaling is down".into(),
            ));
        }
        let elsewhere = self.elsewhere.lock().expect("elsewhere");
        Ok(instance_ids
            .iter()
            .filter_map(|id| elsewhere.get(id).map(|g| (id.clone(), g.clone())))
            .collect())
    }

    async fn set_unhealthy(&self, instance_id: &InstanceId) -> Result<(), Error> {
        self.unhealthy
            .lock()
            .expect("unhealthy")
            .push(instance_id.clone());
        Ok(())
    }
}

/// A queue that only remembers which messages were shown again, and after how long.
#[derive(Default)]
pub struct FakeQueue {
    pub shown_again: Mutex<Vec<(String, Duration)>>,
}

impl Queue for FakeQueue {
    async fn receive(&self, _max: u8, _visibility: Duration) -> Result<Vec<Received>, Error> {
        Ok(Vec::new())
    }

    async fn delete(&self, _receipt_handle: &str) -> Result<(), Error> {
        Ok(())
    }

    async fn show_again(&self, receipt_handle: &str, after: Duration) -> Result<(), Error> {
        self.shown_again
            .lock()
            .expect("shown again")
            .push((receipt_handle.to_owned(), after));
        Ok(())
    }
}

/// A load balancer that does what it is asked, as ELB and Auto Scaling would; a change of a
/// port in `refuse` fails (an ACM certificate that does not exist, say).
#[derive(Default)]
pub struct FakeBalancer {
    pub state: Mutex<Observation>,
    pub refuse: Vec<u16>,
}

impl FakeBalancer {
    pub fn at_limits() -> Self {
        Self {
            state: Mutex::new(Observation {
                max_listeners: 50,
                max_target_groups: 50,
                ..Observation::default()
            }),
            refuse: Vec::new(),
        }
    }
}

impl Balancer for FakeBalancer {
    async fn observe(&self) -> Result<Observation, Error> {
        Ok(self.state.lock().expect("state").clone())
    }

    async fn act(&self, action: &listeners::Action) -> Result<(), Error> {
        use listeners::Action::*;
        let mut state = self.state.lock().expect("state");
        match action {
            CreateTargetGroup { port, protocol } => state.target_groups.push(TargetGroup {
                arn: format!("tg-{port}"),
                port: *port,
                protocol: protocol.clone(),
                attached: false,
                detaching: false,
            }),
            AttachTargetGroup { arn } => {
                for group in state.target_groups.iter_mut().filter(|g| g.arn == *arn) {
                    group.attached = true;
                }
            }
            CreateListener {
                port,
                protocol,
                target_group,
            } => {
                if self.refuse.contains(port) {
                    return Err(Error::MalformedRecord(format!("port {port} refused")));
                }
                state.listeners.push(Listener {
                    arn: format!("listener-{port}"),
                    port: *port,
                    protocol: protocol.clone(),
                    target_group: Some(target_group.clone()),
                    ours: true,
                });
            }
            ModifyListener { .. } => {}
            DeleteListener { arn } => state.listeners.retain(|l| l.arn != *arn),
            DetachTargetGroup { arn } => {
                for group in state.target_groups.iter_mut().filter(|g| g.arn == *arn) {
                    group.attached = false;
                }
            }
            DeleteTargetGroup { arn } => state.target_groups.retain(|g| g.arn != *arn),
        }
        Ok(())
    }
}
