//! Every branch of the sweep's decision, as a table: a baseline (a healthy swarm of three
//! managers and two workers, every instance in service in the stack's groups), one change per
//! case, and the plan it must give.

use std::time::Duration;

use super::*;
use crate::drain::{NodeRole, NodeState};
use crate::ids::InstanceId;

const MANAGERS: &str = "swarm-Managers-2ZX4CV6BN";
const WORKERS: &str = "swarm-Workers-7QW3ER5TY";

fn instance_id(n: u32) -> InstanceId {
    format!("i-{n:017x}").as_str().try_into().expect("valid id")
}

fn node(id: &str, n: u32, role: NodeRole) -> SweepNode {
    SweepNode {
        id: id.into(),
        instance_id: Some(instance_id(n)),
        role,
        state: NodeState::Ready,
        reachable: role == NodeRole::Manager,
        down_for: None,
    }
}

fn in_service(n: u32, group: &str) -> GroupInstance {
    GroupInstance {
        instance_id: instance_id(n),
        group: group.try_into().expect("valid group"),
        lifecycle: GroupLifecycle::InService,
        unhealthy: false,
        known_for: Duration::from_secs(3600),
    }
}

/// m1..m3 on instances 1..3, w1 and w2 on 4 and 5.
fn baseline() -> SweepObservation {
    SweepObservation {
        nodes: vec![
            node("m1", 1, NodeRole::Manager),
            node("m2", 2, NodeRole::Manager),
            node("m3", 3, NodeRole::Manager),
            node("w1", 4, NodeRole::Worker),
            node("w2", 5, NodeRole::Worker),
        ],
        instances: vec![
            in_service(1, MANAGERS),
            in_service(2, MANAGERS),
            in_service(3, MANAGERS),
            in_service(4, WORKERS),
            in_service(5, WORKERS),
        ],
        outside: Default::default(),
    }
}

/// The node `id` is Down (and, for a manager, unreachable) for `down_for`.
fn down(seen: &mut SweepObservation, id: &str, down_for: u64) {
    let node = seen
        .nodes
        .iter_mut()
        .find(|n| n.id == id)
        .expect("a node of the baseline");
    node.state = NodeState::Down;
    node.reachable = false;
    node.down_for = Some(Duration::from_secs(down_for));
}

/// Instance `n` has left the stack's groups, and EC2 says `outside` of it.
fn left_groups(seen: &mut SweepObservation, n: u32, outside: Outside) {
    seen.instances.retain(|i| i.instance_id != instance_id(n));
    seen.outside.insert(instance_id(n), outside);
}

fn plan(seen: &SweepObservation) -> Plan {
    decide(seen, &SweepPolicy::default())
}

fn names(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|action| match action {
            Action::Demote { node_id, .. } => format!("demote {node_id}"),
            Action::Remove { node_id, .. } => format!("remove {node_id}"),
            Action::MarkUnhealthy { instance_id, .. } => format!("unhealthy {instance_id}"),
        })
        .collect()
}

fn held_reason(plan: &Plan, subject_part: &str) -> String {
    plan.held
        .iter()
        .find(|h| h.subject.contains(subject_part))
        .unwrap_or_else(|| panic!("nothing held about {subject_part}: {plan:?}"))
        .reason
        .clone()
}

#[test]
fn a_healthy_swarm_needs_nothing() {
    assert_eq!(plan(&baseline()), Plan::default());
}

#[test]
fn a_down_worker_whose_instance_is_gone_is_removed() {
    let mut seen = baseline();
    down(&mut seen, "w1", 30);
    left_groups(&mut seen, 4, Outside::Gone);
    assert_eq!(names(&plan(&seen)), ["remove w1"]);
}

#[test]
fn a_worker_whose_instance_is_gone_is_removed_down_or_not_yet() {
    // A demoted manager shows `unknown` until its heartbeat times out; its machine is gone.
    let mut seen = baseline();
    seen.nodes[3].state = NodeState::Other;
    left_groups(&mut seen, 4, Outside::Gone);
    assert_eq!(names(&plan(&seen)), ["remove w1"]);
}

#[test]
fn a_ready_node_is_never_touched_even_when_its_instance_is_gone() {
    let mut seen = baseline();
    left_groups(&mut seen, 4, Outside::Gone);
    left_groups(&mut seen, 1, Outside::Gone);
    assert_eq!(plan(&seen), Plan::default());
}

#[test]
fn an_instance_of_another_group_or_one_auto_scaling_cannot_tell_of_is_never_acted_on() {
    for outside in [Some(Outside::Exists), Some(Outside::Unknown), None] {
        let mut seen = baseline();
        down(&mut seen, "w1", 3600);
        down(&mut seen, "m1", 3600);
        seen.instances
            .retain(|i| i.instance_id != instance_id(4) && i.instance_id != instance_id(1));
        if let Some(outside) = outside {
            seen.outside.insert(instance_id(4), outside);
            seen.outside.insert(instance_id(1), outside);
        }
        let plan = plan(&seen);
        assert!(plan.actions.is_empty(), "{outside:?}: {plan:?}");
        assert!(plan.held.iter().all(|h| h.loud), "{outside:?}: {plan:?}");
        assert_eq!(plan.held.len(), 2, "{outside:?}: {plan:?}");
    }
}

#[test]
fn an_unreachable_manager_whose_instance_is_gone_is_demoted_then_removed() {
    let mut seen = baseline();
    down(&mut seen, "m1", 30);
    left_groups(&mut seen, 1, Outside::Gone);
    let first = plan(&seen);
    assert_eq!(names(&first), ["demote m1"]);
    assert!(
        first.actions[0]
            .reason()
            .contains("2 of the 2 managers left are reachable")
    );
    // The next sweep's fresh look: Raft has dropped it, the node is a Down worker.
    seen.nodes[0].role = NodeRole::Worker;
    assert_eq!(names(&plan(&seen)), ["remove m1"]);
}

#[test]
fn managers_are_demoted_one_at_a_time() {
    let mut seen = baseline();
    seen.nodes.push(node("m4", 6, NodeRole::Manager));
    seen.nodes.push(node("m5", 7, NodeRole::Manager));
    for (id, n) in [("m1", 1), ("m2", 2)] {
        down(&mut seen, id, 30);
        left_groups(&mut seen, n, Outside::Gone);
    }
    let plan = plan(&seen);
    assert_eq!(names(&plan), ["demote m1"]);
    assert!(held_reason(&plan, "m2").contains("one at a time"));
}

#[test]
fn three_lost_managers_each_replaced_by_the_group_leave_three_members_not_six() {
    // Without a sweep, three such losses leave six members with three alive: no quorum. The
    // sweep after each loss demotes the dead one, which the next look removes.
    let mut seen = baseline();
    for (lost, lost_n, new, new_n) in [("m1", 1, "m4", 6), ("m2", 2, "m5", 7), ("m3", 3, "m6", 8)] {
        down(&mut seen, lost, 600);
        left_groups(&mut seen, lost_n, Outside::Gone);
        seen.nodes.push(node(new, new_n, NodeRole::Manager));
        seen.instances.push(in_service(new_n, MANAGERS));
        let plan_now = plan(&seen);
        assert_eq!(names(&plan_now), [format!("demote {lost}")], "{plan_now:?}");
        let demoted = seen.nodes.iter_mut().find(|n| n.id == lost).expect("node");
        demoted.role = NodeRole::Worker;
        assert_eq!(names(&plan(&seen)), [format!("remove {lost}")]);
        seen.nodes.retain(|n| n.id != lost);
    }
    let managers = seen
        .nodes
        .iter()
        .filter(|n| n.role == NodeRole::Manager)
        .count();
    assert_eq!(managers, 3);
    assert_eq!(plan(&seen), Plan::default());
}

#[test]
fn no_manager_change_when_the_quorum_is_already_lost() {
    // Four members, two reachable: no majority, and none comes back by removing one.
    let mut seen = baseline();
    seen.nodes.push(node("m4", 6, NodeRole::Manager));
    seen.instances.push(in_service(6, MANAGERS));
    down(&mut seen, "m1", 600);
    down(&mut seen, "m2", 600);
    left_groups(&mut seen, 1, Outside::Gone);
    let plan = plan(&seen);
    assert!(plan.actions.is_empty(), "{plan:?}");
    let reason = held_reason(&plan, "m1");
    assert!(
        reason.contains("2 of 4 managers are reachable, below the Raft majority of 3"),
        "{reason}"
    );
    assert!(reason.contains("--force-new-cluster"), "{reason}");
    // Nor is a Down manager in service replaced: it may be the one that comes back.
    assert!(held_reason(&plan, "m2").contains("lost its quorum"));
}

#[test]
fn a_reachable_manager_is_left_alone_whatever_ec2_says() {
    let mut seen = baseline();
    seen.nodes[0].state = NodeState::Down;
    left_groups(&mut seen, 1, Outside::Gone);
    let plan = plan(&seen);
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert!(plan.held[0].loud);
}

#[test]
fn a_node_down_past_the_grace_period_on_an_instance_in_service_is_replaced() {
    let mut seen = baseline();
    down(&mut seen, "w1", 299);
    let within = plan(&seen);
    assert!(within.actions.is_empty(), "{within:?}");
    assert!(held_reason(&within, "w1").contains("Down for 299 s"));
    down(&mut seen, "w1", 300);
    let past = plan(&seen);
    assert_eq!(names(&past), [format!("unhealthy {}", instance_id(4))]);
    let Action::MarkUnhealthy { group, node_id, .. } = &past.actions[0] else {
        panic!("{past:?}");
    };
    assert_eq!(group.as_str(), WORKERS);
    assert_eq!(node_id.as_deref(), Some("w1"));
}

#[test]
fn a_down_manager_in_service_is_replaced_only_when_no_other_manager_change_is_under_way() {
    let mut seen = baseline();
    for (id, n) in [("m4", 6), ("m5", 7)] {
        seen.nodes.push(node(id, n, NodeRole::Manager));
        seen.instances.push(in_service(n, MANAGERS));
    }
    down(&mut seen, "m1", 600);
    down(&mut seen, "m2", 600);
    let plan_now = plan(&seen);
    assert_eq!(names(&plan_now), [format!("unhealthy {}", instance_id(1))]);
    assert!(held_reason(&plan_now, "m2").contains("one at a time"));
    // m1's instance is on its way out: m2 waits for the next look after it.
    seen.instances[0].lifecycle = GroupLifecycle::Terminating;
    let later = plan(&seen);
    assert!(later.actions.is_empty(), "{later:?}");
    assert!(held_reason(&later, "m2").contains("one at a time"));
}

#[test]
fn an_instance_already_unhealthy_or_held_by_its_hook_is_left_to_the_group() {
    for (lifecycle, unhealthy) in [
        (GroupLifecycle::InService, true),
        (GroupLifecycle::Terminating, false),
        (GroupLifecycle::Launching, false),
    ] {
        let mut seen = baseline();
        down(&mut seen, "w1", 3600);
        seen.instances[3].lifecycle = lifecycle;
        seen.instances[3].unhealthy = unhealthy;
        assert_eq!(plan(&seen), Plan::default(), "{lifecycle:?} {unhealthy}");
    }
    let mut seen = baseline();
    down(&mut seen, "w1", 3600);
    seen.instances[3].lifecycle = GroupLifecycle::Other;
    let plan = plan(&seen);
    assert!(plan.actions.is_empty() && !plan.held[0].loud, "{plan:?}");
}

#[test]
fn when_most_nodes_are_down_no_instance_is_replaced_but_gone_ones_are_still_removed() {
    let mut seen = baseline();
    for id in ["m1", "w1", "w2"] {
        down(&mut seen, id, 3600);
    }
    left_groups(&mut seen, 5, Outside::Gone);
    let plan = plan(&seen);
    assert_eq!(names(&plan), ["remove w2"]);
    assert!(held_reason(&plan, "w1").contains("more than half"));
    assert!(held_reason(&plan, "m1").contains("more than half"));
}

#[test]
fn an_instance_in_service_that_never_became_a_node_is_replaced_after_the_join_grace() {
    let mut seen = baseline();
    seen.instances.push(GroupInstance {
        known_for: Duration::from_secs(899),
        ..in_service(9, WORKERS)
    });
    assert_eq!(plan(&seen), Plan::default());
    seen.instances[5].known_for = Duration::from_secs(900);
    let plan_now = plan(&seen);
    assert_eq!(names(&plan_now), [format!("unhealthy {}", instance_id(9))]);
    // A node that has not described itself yet may be that instance.
    seen.nodes.push(SweepNode {
        instance_id: None,
        ..node("new", 0, NodeRole::Worker)
    });
    let held = plan(&seen);
    assert!(held.actions.is_empty(), "{held:?}");
    assert!(held_reason(&held, instance_id(9).as_ref()).contains("not described"));
}

#[test]
fn a_down_node_without_an_instance_label_is_an_operators_to_remove() {
    let mut seen = baseline();
    seen.nodes.push(SweepNode {
        instance_id: None,
        state: NodeState::Down,
        down_for: Some(Duration::from_secs(3600)),
        ..node("by-hand", 0, NodeRole::Worker)
    });
    let plan = plan(&seen);
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert!(held_reason(&plan, "by-hand").contains("instance-id"));
}

#[test]
fn an_empty_look_at_the_swarm_decides_nothing() {
    let mut seen = baseline();
    seen.nodes.clear();
    let plan = plan(&seen);
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert!(plan.held[0].loud);
}

#[test]
fn auto_scaling_lifecycle_states_read_as_the_sweep_needs_them() {
    for (state, lifecycle) in [
        ("Pending", GroupLifecycle::Launching),
        ("Pending:Wait", GroupLifecycle::Launching),
        ("Pending:Proceed", GroupLifecycle::Launching),
        ("InService", GroupLifecycle::InService),
        ("Terminating", GroupLifecycle::Terminating),
        ("Terminating:Wait", GroupLifecycle::Terminating),
        ("Terminating:Proceed", GroupLifecycle::Terminating),
        ("Terminated", GroupLifecycle::Terminating),
        ("Standby", GroupLifecycle::Other),
        ("Detaching", GroupLifecycle::Other),
        ("Warmed:Running", GroupLifecycle::Other),
    ] {
        assert_eq!(GroupLifecycle::from_aws_str(state), lifecycle, "{state}");
    }
}

#[test]
fn auto_scaling_health_reads_in_either_spelling() {
    let member = |health: &str| GroupMember {
        instance_id: instance_id(1),
        group: WORKERS.try_into().expect("valid"),
        lifecycle_state: "InService".into(),
        health_status: health.into(),
    };
    for (health, unhealthy) in [
        ("Healthy", false),
        ("HEALTHY", false),
        ("Unhealthy", true),
        ("UNHEALTHY", true),
    ] {
        let read = GroupInstance::read(&member(health), Duration::ZERO);
        assert_eq!(read.unhealthy, unhealthy, "{health}");
        assert_eq!(read.lifecycle, GroupLifecycle::InService);
    }
}

#[test]
fn only_the_instances_of_nodes_not_ready_outside_the_groups_are_looked_up() {
    let mut seen = baseline();
    assert!(seen.unplaced().is_empty());
    down(&mut seen, "w1", 10);
    assert!(seen.unplaced().is_empty(), "w1's instance is in its group");
    seen.instances
        .retain(|i| i.instance_id != instance_id(4) && i.instance_id != instance_id(5));
    assert_eq!(seen.unplaced(), [instance_id(4)], "w2 is Ready");
}

#[test]
fn an_instance_is_gone_when_no_group_holds_it_and_unknown_when_auto_scaling_cannot_say() {
    let placed: std::collections::HashMap<_, _> =
        [(instance_id(1), WORKERS.try_into().expect("valid"))].into();
    assert_eq!(Outside::of(&instance_id(1), Some(&placed)), Outside::Exists);
    assert_eq!(Outside::of(&instance_id(2), Some(&placed)), Outside::Gone);
    assert_eq!(Outside::of(&instance_id(2), None), Outside::Unknown);
}
