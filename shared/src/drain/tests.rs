//! Every branch of the drain decision, as a table: an observation built from a baseline (a
//! ready, active worker of a healthy 3-manager swarm, its hook open, nothing on it), one
//! change per row, and the step it must give.

use std::time::Duration;

use super::*;
use crate::event::Transition;

fn worker() -> NodeFacts {
    NodeFacts {
        id: "node-w1".into(),
        role: NodeRole::Worker,
        availability: Availability::Active,
        state: NodeState::Ready,
        reachable: false,
    }
}

fn manager() -> NodeFacts {
    NodeFacts {
        role: NodeRole::Manager,
        reachable: true,
        id: "node-m1".into(),
        ..worker()
    }
}

fn drained(node: NodeFacts) -> NodeFacts {
    NodeFacts {
        availability: Availability::Drain,
        ..node
    }
}

fn baseline() -> Observation {
    Observation {
        transition: Transition::Terminating,
        action: ActionStatus::Waiting,
        swarm: SwarmView {
            node: Some(worker()),
            undescribed_nodes: 0,
            managers: 3,
            reachable_managers: 3,
            tasks_on_node: vec![],
            services: vec![],
        },
        elapsed: Duration::from_secs(10),
        deadline: Duration::from_secs(900),
        since_heartbeat: Some(Duration::from_secs(1)),
        heartbeat_every: Duration::from_secs(60),
        surge: false,
    }
}

fn web(running_elsewhere: u64, unplaceable: Option<&str>) -> ServiceFacts {
    ServiceFacts {
        id: String::new(),
        name: "web".into(),
        mode: ServiceMode::Replicated { desired: 4 },
        running_elsewhere,
        unplaceable: unplaceable.map(str::to_owned),
        on_node: 0,
        surge: Default::default(),
    }
}

fn task(service: &str) -> TaskFacts {
    TaskFacts {
        id: format!("task-of-{service}"),
        service: service.into(),
    }
}

/// What a row expects: the step's name, and words its reason must contain.
struct Expect {
    step: &'static str,
    says: &'static str,
}

fn check(name: &str, seen: Observation, expect: Expect) {
    let step = decide(&seen);
    assert_eq!(step.name(), expect.step, "{name}: got {step}");
    assert!(
        step.reason().contains(expect.says),
        "{name}: the reason `{}` does not say `{}`",
        step.reason(),
        expect.says
    );
}

#[test]
fn every_branch_of_a_termination() {
    let rows: Vec<(&str, Observation, Expect)> = vec![
        (
            "an action completed elsewhere needs nothing more",
            Observation {
                action: ActionStatus::Ended,
                ..baseline()
            },
            Expect {
                step: "done",
                says: "no longer open",
            },
        ),
        (
            "an instance not in the swarm is completed at once",
            Observation {
                swarm: SwarmView {
                    node: None,
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "complete",
                says: "no node in the swarm",
            },
        ),
        (
            "an instance not found while a node has not described itself yet waits",
            Observation {
                swarm: SwarmView {
                    node: None,
                    undescribed_nodes: 1,
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "wait",
                says: "1 swarm node(s) have not described themselves yet",
            },
        ),
        (
            "past the deadline an undescribed node no longer holds the completion",
            Observation {
                swarm: SwarmView {
                    node: None,
                    undescribed_nodes: 1,
                    ..baseline().swarm
                },
                elapsed: Duration::from_secs(901),
                ..baseline()
            },
            Expect {
                step: "complete",
                says: "no node in the swarm",
            },
        ),
        (
            "an active worker is drained first",
            baseline(),
            Expect {
                step: "drain",
                says: "reschedules",
            },
        ),
        (
            "a drained worker with tasks still running waits and names them",
            Observation {
                swarm: SwarmView {
                    node: Some(drained(worker())),
                    tasks_on_node: vec![task("web"), task("api")],
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "wait",
                says: "2 task(s) still running on the node (api, web)",
            },
        ),
        (
            "a drained worker whose service is not back elsewhere waits",
            Observation {
                swarm: SwarmView {
                    node: Some(drained(worker())),
                    services: vec![web(3, None)],
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "wait",
                says: "service web: 3 of 4 replicas running elsewhere",
            },
        ),
        (
            "a service that cannot be placed is waited for, saying why",
            Observation {
                swarm: SwarmView {
                    node: Some(drained(worker())),
                    services: vec![web(
                        3,
                        Some("no suitable node (scheduling constraints not satisfied on 4 nodes)"),
                    )],
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "wait",
                says: "cannot be placed: no suitable node",
            },
        ),
        (
            "a global service is never waited for: its task does not move",
            Observation {
                swarm: SwarmView {
                    node: Some(drained(worker())),
                    services: vec![ServiceFacts {
                        id: String::new(),
                        name: "agent".into(),
                        mode: ServiceMode::Global,
                        running_elsewhere: 4,
                        unplaceable: None,
                        on_node: 0,
                        surge: Default::default(),
                    }],
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "remove_node",
                says: "drained",
            },
        ),
        (
            "a job is never waited for",
            Observation {
                swarm: SwarmView {
                    node: Some(drained(worker())),
                    services: vec![ServiceFacts {
                        id: String::new(),
                        name: "once".into(),
                        mode: ServiceMode::Job,
                        running_elsewhere: 0,
                        unplaceable: None,
                        on_node: 0,
                        surge: Default::default(),
                    }],
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "remove_node",
                says: "drained",
            },
        ),
        (
            "a drained node whose services all run elsewhere is removed",
            Observation {
                swarm: SwarmView {
                    node: Some(drained(worker())),
                    services: vec![web(4, None)],
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "remove_node",
                says: "every task it ran runs elsewhere",
            },
        ),
        (
            "a Down node's stale tasks are not waited for, only their replacements",
            Observation {
                swarm: SwarmView {
                    node: Some(NodeFacts {
                        state: NodeState::Down,
                        ..drained(worker())
                    }),
                    tasks_on_node: vec![task("web")],
                    services: vec![web(4, None)],
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "remove_node",
                says: "drained",
            },
        ),
        (
            "past the drain deadline the node is removed anyway, loudly, naming the service",
            Observation {
                swarm: SwarmView {
                    node: Some(drained(worker())),
                    services: vec![web(3, Some("no suitable node"))],
                    ..baseline().swarm
                },
                elapsed: Duration::from_secs(901),
                ..baseline()
            },
            Expect {
                step: "remove_node",
                says: "deadline of 900 s passed after 901 s, and still service web",
            },
        ),
        (
            "a manager of a healthy 3-manager swarm is demoted first",
            Observation {
                swarm: SwarmView {
                    node: Some(manager()),
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "demote",
                says: "2 of the 2 managers left are reachable",
            },
        ),
        (
            "a manager is not demoted when the others would lack a reachable majority",
            Observation {
                swarm: SwarmView {
                    node: Some(manager()),
                    reachable_managers: 2,
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "wait",
                says: "would leave 1 reachable of 2 managers, below the Raft majority of 2",
            },
        ),
        (
            "an unreachable manager can go when the others keep a majority",
            Observation {
                swarm: SwarmView {
                    node: Some(NodeFacts {
                        reachable: false,
                        ..manager()
                    }),
                    reachable_managers: 2,
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "demote",
                says: "2 of the 2 managers left",
            },
        ),
        (
            "one of five managers can go with one other unreachable",
            Observation {
                swarm: SwarmView {
                    node: Some(manager()),
                    managers: 5,
                    reachable_managers: 4,
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "demote",
                says: "3 of the 4 managers left are reachable, a majority (3 needed)",
            },
        ),
        (
            "the only manager is never demoted",
            Observation {
                swarm: SwarmView {
                    node: Some(manager()),
                    managers: 1,
                    reachable_managers: 1,
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "wait",
                says: "the only manager",
            },
        ),
        (
            "past the deadline a manager that cannot be demoted is completed, loudly",
            Observation {
                swarm: SwarmView {
                    node: Some(manager()),
                    managers: 1,
                    reachable_managers: 1,
                    ..baseline().swarm
                },
                elapsed: Duration::from_secs(1000),
                ..baseline()
            },
            Expect {
                step: "complete",
                says: "still in Raft",
            },
        ),
        (
            "a demoted node that is already drained goes on to its tasks",
            Observation {
                swarm: SwarmView {
                    node: Some(drained(worker())),
                    tasks_on_node: vec![task("web")],
                    ..baseline().swarm
                },
                ..baseline()
            },
            Expect {
                step: "wait",
                says: "still running",
            },
        ),
    ];
    for (name, seen, expect) in rows {
        check(name, seen, expect);
    }
}

#[test]
fn every_branch_of_a_launch() {
    let launch = || Observation {
        swarm: SwarmView {
            node: None,
            ..baseline().swarm
        },
        transition: Transition::Launching,
        ..baseline()
    };
    let rows: Vec<(&str, Observation, Expect)> = vec![
        (
            "a ready node is let into service",
            Observation {
                swarm: SwarmView {
                    node: Some(worker()),
                    ..launch().swarm
                },
                ..launch()
            },
            Expect {
                step: "complete",
                says: "joined the swarm and is ready",
            },
        ),
        (
            "an instance not yet in the swarm is waited for",
            launch(),
            Expect {
                step: "wait",
                says: "has not joined",
            },
        ),
        (
            "a node not ready yet is waited for",
            Observation {
                swarm: SwarmView {
                    node: Some(NodeFacts {
                        state: NodeState::Other,
                        ..worker()
                    }),
                    ..launch().swarm
                },
                ..launch()
            },
            Expect {
                step: "wait",
                says: "not ready yet",
            },
        ),
        (
            "an instance that has not joined by the deadline is abandoned",
            Observation {
                elapsed: Duration::from_secs(900),
                ..launch()
            },
            Expect {
                step: "complete",
                says: "Auto Scaling replaces it",
            },
        ),
        (
            "a launch completed elsewhere needs nothing more",
            Observation {
                action: ActionStatus::Ended,
                ..launch()
            },
            Expect {
                step: "done",
                says: "no longer open",
            },
        ),
    ];
    for (name, seen, expect) in rows {
        check(name, seen, expect);
    }
    let abandoned = decide(&Observation {
        elapsed: Duration::from_secs(900),
        ..launch()
    });
    assert!(matches!(
        abandoned,
        Step::Complete {
            result: ActionResult::Abandon,
            forced: true,
            ..
        }
    ));
}

#[test]
fn a_wait_heartbeats_when_none_was_recorded_or_the_last_is_old_enough() {
    let waiting = |since| Observation {
        swarm: SwarmView {
            node: Some(drained(worker())),
            tasks_on_node: vec![task("web")],
            ..baseline().swarm
        },
        since_heartbeat: since,
        ..baseline()
    };
    let heartbeat = |seen: Observation| {
        matches!(
            decide(&seen),
            Step::Wait {
                heartbeat: true,
                ..
            }
        )
    };
    assert!(heartbeat(waiting(None)));
    assert!(heartbeat(waiting(Some(Duration::from_secs(60)))));
    assert!(!heartbeat(waiting(Some(Duration::from_secs(59)))));
}

#[test]
fn deciding_twice_on_the_same_world_gives_the_same_step() {
    for seen in [
        baseline(),
        Observation {
            swarm: SwarmView {
                node: Some(manager()),
                ..baseline().swarm
            },
            ..baseline()
        },
    ] {
        assert_eq!(decide(&seen), decide(&seen));
    }
}

#[test]
fn each_wait_says_what_kind_of_thing_it_waits_for() {
    let on = |seen: Observation| match decide(&seen) {
        Step::Wait { on, .. } => Some(on),
        _ => None,
    };
    let busy = Observation {
        swarm: SwarmView {
            node: Some(drained(worker())),
            tasks_on_node: vec![task("web")],
            ..baseline().swarm
        },
        ..baseline()
    };
    assert_eq!(on(busy), Some(WaitFor::Tasks));
    let undescribed = Observation {
        swarm: SwarmView {
            node: None,
            undescribed_nodes: 1,
            ..baseline().swarm
        },
        ..baseline()
    };
    assert_eq!(on(undescribed), Some(WaitFor::Describe));
    let no_majority = Observation {
        swarm: SwarmView {
            node: Some(manager()),
            reachable_managers: 2,
            ..baseline().swarm
        },
        ..baseline()
    };
    assert_eq!(on(no_majority), Some(WaitFor::Quorum));
    let launching = Observation {
        transition: Transition::Launching,
        swarm: SwarmView {
            node: None,
            ..baseline().swarm
        },
        ..baseline()
    };
    assert_eq!(on(launching), Some(WaitFor::Join));
    assert_eq!(WaitFor::Quorum.as_str(), "quorum");
}

#[test]
fn an_action_is_open_only_while_its_instance_waits_on_the_hook_of_its_transition() {
    use Transition::{Launching, Terminating};
    for (transition, state, expected) in [
        (Terminating, Some("Terminating:Wait"), ActionStatus::Waiting),
        (
            Terminating,
            Some("Terminating:Proceed"),
            ActionStatus::Ended,
        ),
        (Terminating, Some("Terminated"), ActionStatus::Ended),
        (Terminating, Some("InService"), ActionStatus::Ended),
        (Terminating, Some("Pending:Wait"), ActionStatus::Ended),
        (Terminating, None, ActionStatus::Ended),
        (Launching, Some("Pending:Wait"), ActionStatus::Waiting),
        (Launching, Some("Pending:Proceed"), ActionStatus::Ended),
        (Launching, Some("InService"), ActionStatus::Ended),
        (Launching, None, ActionStatus::Ended),
    ] {
        assert_eq!(
            ActionStatus::of_lifecycle_state(transition, state),
            expected,
            "{transition:?} {state:?}"
        );
    }
}

/// `web` with one task on the node, its labels as `surge` says, and `running_elsewhere` of
/// its `desired` replicas on other nodes.
fn web_on_node(desired: u64, running_elsewhere: u64, surge: surge::Surge) -> ServiceFacts {
    ServiceFacts {
        id: "svc-web".into(),
        mode: ServiceMode::Replicated { desired },
        on_node: 1,
        surge,
        ..web(running_elsewhere, None)
    }
}

fn surged_for_node() -> surge::Surge {
    surge::Surge {
        base: Some(1),
        for_node: Some(1),
        ..surge::Surge::default()
    }
}

fn paused(node: NodeFacts) -> NodeFacts {
    NodeFacts {
        availability: Availability::Pause,
        ..node
    }
}

/// The baseline with the surge on, the node as `node`, and `services`.
fn surging(node: NodeFacts, services: Vec<ServiceFacts>) -> Observation {
    Observation {
        surge: true,
        swarm: SwarmView {
            node: Some(node),
            services,
            ..baseline().swarm
        },
        ..baseline()
    }
}

#[test]
fn every_branch_of_the_surge_before_a_drain() {
    let rows: Vec<(&str, Observation, Expect)> = vec![
        (
            "an active worker is paused first: the new replicas must go elsewhere",
            surging(worker(), vec![]),
            Expect {
                step: "pause",
                says: "scaled up before it drains",
            },
        ),
        (
            "the surge off: drained at once, as Swarm does",
            Observation {
                surge: false,
                ..surging(worker(), vec![])
            },
            Expect {
                step: "drain",
                says: "reschedules",
            },
        ),
        (
            "a Down node: nothing to keep up there, drained at once",
            surging(
                NodeFacts {
                    state: NodeState::Down,
                    ..worker()
                },
                vec![],
            ),
            Expect {
                step: "drain",
                says: "reschedules",
            },
        ),
        (
            "a manager just demoted, reconnecting as a worker: its tasks still run, surged",
            surging(
                NodeFacts {
                    state: NodeState::Other,
                    ..worker()
                },
                vec![],
            ),
            Expect {
                step: "pause",
                says: "scaled up before it drains",
            },
        ),
        (
            "paused: each replicated service with tasks there is scaled up by them",
            surging(
                paused(worker()),
                vec![web_on_node(1, 0, surge::Surge::default())],
            ),
            Expect {
                step: "surge",
                says: "web scaled up",
            },
        ),
        (
            "surged, the new replica not running yet: wait",
            surging(paused(worker()), vec![web_on_node(2, 0, surged_for_node())]),
            Expect {
                step: "wait",
                says: "web: 0 of 1 replicas running elsewhere before the drain",
            },
        ),
        (
            "surged and running elsewhere: now the drain",
            surging(paused(worker()), vec![web_on_node(2, 1, surged_for_node())]),
            Expect {
                step: "drain",
                says: "the surge is running elsewhere",
            },
        ),
        (
            "the new replica cannot be placed: drained as it stands, saying why",
            surging(
                paused(worker()),
                vec![ServiceFacts {
                    unplaceable: Some(
                        "no suitable node (max replicas per node limit exceed)".into(),
                    ),
                    ..web_on_node(2, 0, surged_for_node())
                }],
            ),
            Expect {
                step: "drain",
                says: "web drained as it stands, its new replicas cannot be placed (no suitable node",
            },
        ),
        (
            "the new replica not running after a third of the deadline: drained as it stands",
            Observation {
                elapsed: Duration::from_secs(301),
                ..surging(paused(worker()), vec![web_on_node(2, 0, surged_for_node())])
            },
            Expect {
                step: "drain",
                says: "web drained as it stands, its new replicas not running after 300 s",
            },
        ),
        (
            "a global service is not surged: its task never moves",
            surging(
                paused(worker()),
                vec![ServiceFacts {
                    mode: ServiceMode::Global,
                    ..web_on_node(1, 0, surge::Surge::default())
                }],
            ),
            Expect {
                step: "drain",
                says: "the surge is running elsewhere",
            },
        ),
        (
            "a service that opted out is not surged",
            surging(
                paused(worker()),
                vec![web_on_node(
                    1,
                    0,
                    surge::Surge {
                        opted_out: true,
                        ..surge::Surge::default()
                    },
                )],
            ),
            Expect {
                step: "drain",
                says: "the surge is running elsewhere",
            },
        ),
        (
            "drained, the node's task still wanted there: wait before giving the count back",
            surging(
                drained(worker()),
                vec![web_on_node(2, 1, surged_for_node())],
            ),
            Expect {
                step: "wait",
                says: "the drain has not reached the tasks of web",
            },
        ),
        (
            "drained: the count given back at once, the drain's replacement still starting",
            surging(
                drained(worker()),
                vec![ServiceFacts {
                    on_node: 0,
                    ..web_on_node(2, 1, surged_for_node())
                }],
            ),
            Expect {
                step: "restore",
                says: "the node is drained: web given back the count before the surge",
            },
        ),
        (
            "given back: the drain goes on as always",
            surging(
                drained(worker()),
                vec![ServiceFacts {
                    on_node: 0,
                    ..web_on_node(1, 1, surge::Surge::default())
                }],
            ),
            Expect {
                step: "remove_node",
                says: "drained",
            },
        ),
        (
            "a manager is demoted before anything else",
            surging(manager(), vec![]),
            Expect {
                step: "demote",
                says: "majority",
            },
        ),
    ];
    for (name, seen, expect) in rows {
        check(name, seen, expect);
    }
}

#[test]
fn a_surge_adds_each_service_its_own_tasks_on_the_node() {
    let seen = surging(
        paused(worker()),
        vec![ServiceFacts {
            on_node: 2,
            ..web_on_node(3, 1, surge::Surge::default())
        }],
    );
    let Step::Surge { services, .. } = decide(&seen) else {
        panic!("no surge");
    };
    assert_eq!(services, [("svc-web".to_owned(), "web".to_owned(), 2)]);
}
