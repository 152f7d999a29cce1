//! The lifecycle engine: launching and terminating instances (real test-bed nodes), holding
//! them in `Pending:Wait` / `Terminating:Wait` while their hooks' actions are open, timeouts
//! and default results, and keeping each group at its desired capacity.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use chrono::Utc;
use tokio::time::Instant;

use super::model::{Action, Ending, HookResult, Instance, LifecycleState, State, Transition};
use super::{Emulator, notify, policy};

/// How long after its interruption warning EC2 reclaims a Spot instance, in API seconds.
pub const SPOT_WARNING_LEAD_SECS: u32 = 120;
use crate::{Node, Testbed};

/// How long the engine waits before it tries again to launch into a group whose last launch
/// failed (AWS backs off too).
const LAUNCH_RETRY: Duration = Duration::from_secs(10);

impl Emulator {
    /// Brings `group` to its desired capacity: launches into the emptiest zones, or terminates
    /// in-service instances as the default termination policy picks them. Called after every
    /// change of capacity or membership.
    pub fn reconcile(self: &Arc<Self>, group: &str) {
        let mut state = self.lock();
        let Some(g) = state.groups.get(group).cloned() else {
            return;
        };
        if g.deleting {
            return;
        }
        let capacity: Vec<Instance> = state
            .members(group)
            .into_iter()
            .filter(|i| i.state.counts_as_capacity())
            .cloned()
            .collect();
        let desired = g.desired as usize;
        // Launches in flight count as capacity already: their nodes are being allocated.
        let have = capacity.len() + g.launching_zones.len();
        if have < desired {
            let mut zones: Vec<String> = capacity
                .iter()
                .map(|i| i.zone.clone())
                .chain(g.launching_zones.iter().cloned())
                .collect();
            for _ in have..desired {
                let current: Vec<&str> = zones.iter().map(String::as_str).collect();
                let Some(zone) = policy::zone_for_launch(&g.zones, &current).cloned() else {
                    state.record(group, None, "launch refused: the group has no zone");
                    return;
                };
                zones.push(zone.clone());
                if let Some(reserving) = state.groups.get_mut(group) {
                    reserving.launching_zones.push(zone.clone());
                }
                // The node is allocated outside this lock: allocating takes the test bed's
                // file lock, which a teardown elsewhere may hold for seconds, and every API
                // and instance-metadata answer waits on this lock.
                tokio::spawn(Arc::clone(self).allocate_and_launch(
                    group.to_owned(),
                    zone,
                    g.role(),
                    g.launch_configuration.clone(),
                ));
            }
        } else if have > desired {
            let now = Utc::now();
            let mut candidates: Vec<policy::Candidate> = capacity
                .iter()
                .filter(|i| i.state == LifecycleState::InService)
                .map(|i| policy::Candidate {
                    id: i.id.clone(),
                    zone: i.zone.clone(),
                    configuration_created: state
                        .launch_configurations
                        .get(&i.launch_configuration)
                        .map_or(i.launched, |lc| lc.created),
                    uptime_secs: self
                        .clock
                        .api_secs((now - i.launched).to_std().unwrap_or_default()),
                })
                .collect();
            // Pending instances are not picked: they are counted, and once in service the
            // next reconcile takes them into account.
            for _ in desired..have {
                let Some(victim) = policy::to_terminate(&candidates).map(|c| c.id.clone()) else {
                    break;
                };
                candidates.retain(|c| c.id != victim);
                state.record(
                    group,
                    Some(&victim),
                    "scale-in: chosen by the default termination policy",
                );
                self.start_termination(&mut state, &victim, true);
            }
        }
    }

    /// Moves an instance to `Terminating` now (so it stops counting as capacity) and runs its
    /// termination in the background, through the termination hooks when `with_hooks`.
    pub(super) fn start_termination(
        self: &Arc<Self>,
        state: &mut State,
        instance_id: &str,
        with_hooks: bool,
    ) {
        state.set_state(instance_id, LifecycleState::Terminating);
        tokio::spawn(Arc::clone(self).terminate(instance_id.to_owned(), with_hooks));
    }

    /// Allocates the node of a reserved launch (its name, address and instance id, in the
    /// test bed's state), records the instance as `Pending`, then launches it.
    async fn allocate_and_launch(
        self: Arc<Self>,
        group: String,
        zone: String,
        role: crate::Role,
        configuration: String,
    ) {
        let allocated = tokio::task::spawn_blocking(move || Testbed::allocate_node(role))
            .await
            .context("allocation panicked")
            .and_then(|r| r);
        let node = {
            let mut state = self.lock();
            let exists = match state.groups.get_mut(&group) {
                Some(g) => {
                    if let Some(at) = g.launching_zones.iter().position(|z| *z == zone) {
                        g.launching_zones.remove(at);
                    }
                    !g.deleting
                }
                None => false,
            };
            let node = match allocated {
                Ok(node) => node,
                Err(error) => {
                    state.record(&group, None, format!("launch failed: {error:#}"));
                    return;
                }
            };
            if !exists {
                // The group went while the node was allocated: it never starts.
                Err(node.name)
            } else {
                state.instances.insert(
                    node.instance_id.clone(),
                    Instance {
                        id: node.instance_id.clone(),
                        group: group.clone(),
                        zone: zone.clone(),
                        state: LifecycleState::Pending,
                        launch_configuration: configuration,
                        launched: Utc::now(),
                        node: node.name.clone(),
                        ip: node.ip,
                        unhealthy: false,
                    },
                );
                state.record(
                    &group,
                    Some(&node.instance_id),
                    format!("launching node {} in {zone}", node.name),
                );
                Ok(node)
            }
        };
        match node {
            Ok(node) => self.launch(node).await,
            Err(name) => {
                let _ = tokio::task::spawn_blocking(move || Testbed::destroy_node(&name)).await;
            }
        }
    }

    /// A launch: the node is made (`Pending`), its user data starts, the launch hooks hold it
    /// (`Pending:Wait`), then it goes in service, or, abandoned, is terminated and replaced.
    async fn launch(self: Arc<Self>, node: Node) {
        let id = node.instance_id.clone();
        let group = self.group_of(&id);
        if let Err(error) = node.provision().await {
            {
                let mut state = self.lock();
                state.record(&group, Some(&id), format!("launch failed: {error:#}"));
            }
            self.finish_termination(&id, &node.name).await;
            tokio::time::sleep(LAUNCH_RETRY).await;
            self.reconcile(&group);
            return;
        }
        self.start_user_data(&node);
        match self.hold(&id, Transition::Launching).await {
            HookResult::Continue => {
                let mut state = self.lock();
                if state.instances.get(&id).map(|i| i.state) == Some(LifecycleState::PendingWait) {
                    state.set_state(&id, LifecycleState::PendingProceed);
                }
                if state
                    .instances
                    .get(&id)
                    .is_some_and(|i| i.state.counts_as_capacity())
                {
                    // Registered with the target groups at the end of the launch hooks,
                    // before it is in service, as Auto Scaling does.
                    for target_group in Self::attached(&state, &group) {
                        self.register(&mut state, &group, &target_group, &id, node.ip);
                    }
                    state.set_state(&id, LifecycleState::InService);
                }
            }
            HookResult::Abandon => {
                let mut state = self.lock();
                if state
                    .instances
                    .get(&id)
                    .is_some_and(|i| i.state.counts_as_capacity())
                {
                    state.record(
                        &group,
                        Some(&id),
                        "launch abandoned: terminating the instance",
                    );
                    self.start_termination(&mut state, &id, true);
                }
            }
        }
        self.changed.notify_waiters();
        self.reconcile(&group);
    }

    /// A termination: the termination hooks hold the instance (`Terminating:Wait`, its node
    /// still running), then its node stops for good (`Terminating:Proceed`, `Terminated`).
    async fn terminate(self: Arc<Self>, id: String, with_hooks: bool) {
        // Deregistered from the target groups first, the deregistration delay waited out,
        // and only then the termination hooks: Auto Scaling's order.
        let group = self.group_of(&id);
        let attached = Self::attached(&self.lock(), &group);
        let delay = self.clock.real(crate::balancer::DEREGISTRATION_DELAY_SECS);
        self.deregister(&group, &attached, &id, delay).await;
        if with_hooks {
            self.hold(&id, Transition::Terminating).await;
        }
        let node = {
            let mut state = self.lock();
            state.set_state(&id, LifecycleState::TerminatingProceed);
            state.instances.get(&id).map(|i| i.node.clone())
        };
        if let Some(node) = node {
            self.finish_termination(&id, &node).await;
        }
        self.reconcile(&group);
    }

    /// Stops the node for good and marks the instance terminated.
    async fn finish_termination(&self, id: &str, node: &str) {
        let name = node.to_owned();
        let destroyed = tokio::task::spawn_blocking(move || Testbed::destroy_node(&name))
            .await
            .context("destroy panicked")
            .and_then(|r| r);
        let mut state = self.lock();
        let group = state
            .instances
            .get(id)
            .map(|i| i.group.clone())
            .unwrap_or_default();
        if let Err(error) = destroyed {
            state.record(
                &group,
                Some(id),
                format!("node {node} not destroyed cleanly: {error:#}"),
            );
        }
        state.set_state(id, LifecycleState::Terminated);
        drop(state);
        self.changed.notify_waiters();
    }

    /// Holds the instance while the hooks of `transition` act: one action per hook, all
    /// notified at once; returns CONTINUE when every action ended with CONTINUE, ABANDON as
    /// soon as one ends with ABANDON (the others are then skipped).
    async fn hold(&self, id: &str, transition: Transition) -> HookResult {
        let (actions, group) = {
            let mut state = self.lock();
            let Some(group) = state.instances.get(id).map(|i| i.group.clone()) else {
                return HookResult::Continue;
            };
            let hooks = state.hooks_of(&group, transition);
            if hooks.is_empty() {
                return HookResult::Continue;
            }
            let wait = match transition {
                Transition::Launching => LifecycleState::PendingWait,
                Transition::Terminating => LifecycleState::TerminatingWait,
            };
            state.set_state(id, wait);
            let now = Instant::now();
            let mut actions = Vec::new();
            for hook in hooks {
                let action = Action {
                    token: uuid::Uuid::new_v4().to_string(),
                    instance_id: id.to_owned(),
                    group: group.clone(),
                    hook: hook.name.clone(),
                    transition,
                    heartbeat_deadline: now + self.clock.real(hook.heartbeat_timeout),
                    global_deadline: now + self.clock.real(hook.global_timeout()),
                    heartbeats: 0,
                    outcome: None,
                };
                state.actions.insert(action.token.clone(), action.clone());
                state.record(
                    &group,
                    Some(id),
                    format!("action opened by hook {}", hook.name),
                );
                actions.push((action, hook));
            }
            (actions, group)
        };
        for (action, hook) in &actions {
            let Some(target) = &hook.target_arn else {
                continue;
            };
            let request_id = uuid::Uuid::new_v4().to_string();
            let body = notify::lifecycle_message(action, hook, &request_id);
            let sent = notify::send(&self.sqs, target, body).await;
            let mut state = self.lock();
            match sent {
                Ok(()) => state.record(
                    &group,
                    Some(id),
                    format!("notification of hook {} sent", hook.name),
                ),
                Err(error) => state.record(
                    &group,
                    Some(id),
                    format!("notification of hook {} NOT sent: {error}", hook.name),
                ),
            }
        }
        let tokens: Vec<String> = actions.into_iter().map(|(a, _)| a.token).collect();
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_deadline = {
                let mut state = self.lock();
                match settle(&mut state, &tokens, Instant::now()) {
                    Ok(result) => return result,
                    Err(next) => next,
                }
            };
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(next_deadline) => {}
            }
        }
    }

    /// Starts the node's user data (its launch configuration's, base64-decoded) as its boot
    /// script, inside the node's network namespace as cloud-init would run it on the
    /// instance, with instance metadata and the AWS endpoints reachable by configuration.
    fn start_user_data(self: &Arc<Self>, node: &Node) {
        let (group, user_data) = {
            let state = self.lock();
            let instance = state.instances.get(&node.instance_id);
            let data = instance
                .and_then(|i| state.launch_configurations.get(&i.launch_configuration))
                .and_then(|lc| lc.user_data.clone());
            (instance.map(|i| i.group.clone()).unwrap_or_default(), data)
        };
        let Some(user_data) = user_data else {
            return;
        };
        let outcome = (|| -> anyhow::Result<tokio::process::Child> {
            let script = base64::engine::general_purpose::STANDARD
                .decode(user_data.trim())
                .context("the user data is not base64")?;
            let paths = node.paths();
            let path = paths.data.join("user-data");
            std::fs::write(&path, script)?;
            let log = std::fs::File::create(paths.data.join("user-data.log"))?;
            let mut command = tokio::process::Command::new("nsenter");
            command
                .arg(format!("--net=/run/netns/{}", node.netns()))
                .arg("sh")
                .arg(&path)
                .envs(self.boot_env.iter().map(|(k, v)| (k, v)))
                .env("DOCKER_HOST", node.docker_host())
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .process_group(0);
            command.spawn().context("cannot start the user data")
        })();
        let id = node.instance_id.clone();
        match outcome {
            Ok(mut child) => {
                let emulator = Arc::clone(self);
                tokio::spawn(async move {
                    let status = child.wait().await;
                    let mut state = emulator.lock();
                    let what = match status {
                        Ok(status) => format!("user data exited: {status}"),
                        Err(error) => format!("user data lost: {error}"),
                    };
                    state.record(&group, Some(&id), what);
                });
            }
            Err(error) => {
                self.lock()
                    .record(&group, Some(&id), format!("user data not run: {error:#}"))
            }
        }
    }

    /// EC2 terminates the instance outside Auto Scaling (the console, `TerminateInstances`, a
    /// Spot reclaim): its node stops at once, no hook runs, and the group, finding it gone,
    /// launches a replacement to keep its desired capacity.
    pub async fn ec2_terminate(self: &Arc<Self>, id: &str) -> Result<(), String> {
        let (group, node) = {
            let mut state = self.lock();
            let instance = state
                .instances
                .get(id)
                .filter(|i| i.state != LifecycleState::Terminated)
                .cloned()
                .ok_or_else(|| format!("no running instance {id}"))?;
            state.record(
                &instance.group,
                Some(id),
                "terminated through EC2, outside Auto Scaling: no hook runs",
            );
            state.set_state(id, LifecycleState::Terminating);
            (instance.group, instance.node)
        };
        // The machine is gone: nothing to wait for.
        let attached = Self::attached(&self.lock(), &group);
        self.deregister(&group, &attached, id, Duration::ZERO).await;
        self.finish_termination(id, &node).await;
        self.reconcile(&group);
        Ok(())
    }

    /// EC2's Spot notice for the instance, delivered to the queue `target_arn` as the stack's
    /// EventBridge rule would. A warning is followed, two minutes later in API time, by the
    /// instance's termination through EC2, whatever its hooks are doing; a rebalance
    /// recommendation by nothing.
    pub async fn spot_notice(
        self: &Arc<Self>,
        id: &str,
        target_arn: &str,
        warning: bool,
    ) -> Result<(), String> {
        let (group, zone) = {
            let state = self.lock();
            let instance = state
                .instances
                .get(id)
                .filter(|i| i.state != LifecycleState::Terminated)
                .ok_or_else(|| format!("no running instance {id}"))?;
            (instance.group.clone(), instance.zone.clone())
        };
        notify::send(
            &self.sqs,
            target_arn,
            notify::spot_notice(id, &zone, warning),
        )
        .await?;
        self.lock().record(
            &group,
            Some(id),
            if warning {
                "Spot interruption warning sent: reclaimed in 2 minutes"
            } else {
                "Spot rebalance recommendation sent"
            },
        );
        if warning {
            let emulator = Arc::clone(self);
            let (id, lead) = (id.to_owned(), self.clock.real(SPOT_WARNING_LEAD_SECS));
            tokio::spawn(async move {
                tokio::time::sleep(lead).await;
                // Gone already (a hook completed, an operator): nothing left to reclaim.
                let _ = emulator.ec2_terminate(&id).await;
            });
        }
        Ok(())
    }

    /// Marks the instance unhealthy (`SetInstanceHealth`): the group replaces it, through its
    /// termination hooks, without lowering its desired capacity. An instance already leaving
    /// stays as it is.
    pub(super) fn set_unhealthy(self: &Arc<Self>, state: &mut State, id: &str) {
        let Some(instance) = state.instances.get_mut(id) else {
            return;
        };
        if instance.unhealthy || !instance.state.counts_as_capacity() {
            return;
        }
        instance.unhealthy = true;
        let group = instance.group.clone();
        state.record(&group, Some(id), "marked Unhealthy: the group replaces it");
        self.start_termination(state, id, true);
    }

    /// The target groups attached to `group`.
    pub fn attached(state: &State, group: &str) -> Vec<String> {
        state
            .groups
            .get(group)
            .map(|g| g.target_groups.clone())
            .unwrap_or_default()
    }

    /// Registers the instance `id` at `ip` with `target_group`: the test bed's web one is
    /// HAProxy's, any other the network load balancer's.
    pub fn register(
        &self,
        state: &mut State,
        group: &str,
        target_group: &str,
        id: &str,
        ip: std::net::Ipv4Addr,
    ) {
        if target_group != crate::balancer::TARGET_GROUP_ARN {
            self.targets.register(target_group, id, ip);
            state.record(group, Some(id), format!("registered with {target_group}"));
            return;
        }
        match self.target_group.register(id, ip) {
            Ok(()) => state.record(group, Some(id), "registered with the load balancer"),
            Err(error) => state.record(
                group,
                Some(id),
                format!("load balancer registration failed: {error:#}"),
            ),
        }
    }

    /// Deregisters the instance `id` from `target_groups` at once: no new connections
    /// anywhere, then `delay` for those open, then it is gone from each.
    pub async fn deregister(
        &self,
        group: &str,
        target_groups: &[String],
        id: &str,
        delay: Duration,
    ) {
        let web = target_groups
            .iter()
            .any(|t| t == crate::balancer::TARGET_GROUP_ARN);
        let others: Vec<&String> = target_groups
            .iter()
            .filter(|t| *t != crate::balancer::TARGET_GROUP_ARN)
            .collect();
        for target_group in &others {
            self.targets.drain(target_group, id);
        }
        let outcome = if web {
            Some(self.target_group.deregister(id, delay).await)
        } else {
            if !others.is_empty() {
                tokio::time::sleep(delay).await;
            }
            None
        };
        for target_group in &others {
            self.targets.remove(target_group, id);
        }
        let mut state = self.lock();
        match outcome {
            Some(Ok(())) => state.record(group, Some(id), "deregistered from the load balancer"),
            Some(Err(error)) => state.record(
                group,
                Some(id),
                format!("load balancer deregistration failed: {error:#}"),
            ),
            None => {}
        }
        for target_group in others {
            state.record(group, Some(id), format!("deregistered from {target_group}"));
        }
    }

    fn group_of(&self, id: &str) -> String {
        self.lock()
            .instances
            .get(id)
            .map(|i| i.group.clone())
            .unwrap_or_default()
    }
}

/// Applies timeouts at `now` to the actions `tokens` of one hold, then says whether the hold
/// is over (and how), or when to look again. Pure, so the timeouts are unit-tested.
fn settle(state: &mut State, tokens: &[String], now: Instant) -> Result<HookResult, Instant> {
    for token in tokens {
        let Some(action) = state.actions.get(token).filter(|a| a.is_active()) else {
            continue;
        };
        let ending = if now >= action.global_deadline {
            Ending::GlobalTimeout
        } else if now >= action.heartbeat_deadline {
            Ending::HeartbeatTimeout
        } else {
            continue;
        };
        let default = state
            .hooks
            .get(&(action.group.clone(), action.hook.clone()))
            .map_or(HookResult::Abandon, |h| h.default_result);
        let (group, id, hook) = (
            action.group.clone(),
            action.instance_id.clone(),
            action.hook.clone(),
        );
        if let Some(action) = state.actions.get_mut(token) {
            action.outcome = Some((default, ending));
        }
        state.record(
            &group,
            Some(&id),
            format!(
                "hook {hook}: {ending:?}, default result {}",
                default.as_aws_str()
            ),
        );
    }
    let outcomes: Vec<Option<HookResult>> = tokens
        .iter()
        .map(|t| state.actions.get(t).and_then(|a| a.outcome.map(|(r, _)| r)))
        .collect();
    if outcomes.contains(&Some(HookResult::Abandon)) {
        for token in tokens {
            if let Some(action) = state.actions.get_mut(token).filter(|a| a.is_active()) {
                action.outcome = Some((HookResult::Abandon, Ending::Skipped));
            }
        }
        return Ok(HookResult::Abandon);
    }
    if outcomes.iter().all(Option::is_some) {
        return Ok(HookResult::Continue);
    }
    Err(tokens
        .iter()
        .filter_map(|t| state.actions.get(t).filter(|a| a.is_active()))
        .map(|a| a.heartbeat_deadline.min(a.global_deadline))
        .min()
        .unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscaling::model::Hook;

    /// A state with one hook (`default`) and one open action on it, opened at `start`.
    fn state_with_action(
        start: Instant,
        heartbeat: Duration,
        global: Duration,
        default: HookResult,
    ) -> State {
        let mut state = State::default();
        state.hooks.insert(
            ("g".into(), "h".into()),
            Hook {
                name: "h".into(),
                group: "g".into(),
                transition: Transition::Terminating,
                target_arn: None,
                role_arn: None,
                heartbeat_timeout: 30,
                default_result: default,
                metadata: None,
            },
        );
        state.actions.insert(
            "t".into(),
            Action {
                token: "t".into(),
                instance_id: "i-1".into(),
                group: "g".into(),
                hook: "h".into(),
                transition: Transition::Terminating,
                heartbeat_deadline: start + heartbeat,
                global_deadline: start + global,
                heartbeats: 0,
                outcome: None,
            },
        );
        state
    }

    /// Adds a second open action `u`, a copy of `t`.
    fn with_second_action(mut state: State) -> State {
        let mut other = state.actions["t"].clone();
        other.token = "u".into();
        state.actions.insert("u".into(), other);
        state
    }

    #[test]
    fn an_open_action_holds_until_its_nearest_deadline() {
        let start = Instant::now();
        let mut state = state_with_action(
            start,
            Duration::from_secs(5),
            Duration::from_secs(50),
            HookResult::Abandon,
        );
        assert_eq!(
            settle(&mut state, &["t".into()], start),
            Err(start + Duration::from_secs(5))
        );
    }

    #[test]
    fn the_heartbeat_timeout_applies_the_default_result() {
        let start = Instant::now();
        for default in [HookResult::Continue, HookResult::Abandon] {
            let mut state = state_with_action(
                start,
                Duration::from_secs(5),
                Duration::from_secs(50),
                default,
            );
            let later = start + Duration::from_secs(6);
            assert_eq!(settle(&mut state, &["t".into()], later), Ok(default));
            assert_eq!(
                state.actions["t"].outcome,
                Some((default, Ending::HeartbeatTimeout))
            );
        }
    }

    #[test]
    fn the_global_timeout_ends_an_action_however_often_it_was_heartbeated() {
        let start = Instant::now();
        // A heartbeat moved the heartbeat deadline past the global one; the global one wins.
        let mut state = state_with_action(
            start,
            Duration::from_secs(80),
            Duration::from_secs(50),
            HookResult::Continue,
        );
        let later = start + Duration::from_secs(51);
        assert_eq!(
            settle(&mut state, &["t".into()], later),
            Ok(HookResult::Continue)
        );
        assert_eq!(
            state.actions["t"].outcome,
            Some((HookResult::Continue, Ending::GlobalTimeout))
        );
    }

    #[test]
    fn an_abandon_skips_the_other_open_actions_and_all_continues_continue() {
        let start = Instant::now();
        let mut state = with_second_action(state_with_action(
            start,
            Duration::from_secs(5),
            Duration::from_secs(50),
            HookResult::Continue,
        ));
        let tokens = ["t".to_owned(), "u".to_owned()];
        if let Some(action) = state.actions.get_mut("t") {
            action.outcome = Some((HookResult::Continue, Ending::Completed));
        }
        assert_eq!(
            settle(&mut state, &tokens, start),
            Err(start + Duration::from_secs(5))
        );
        if let Some(action) = state.actions.get_mut("u") {
            action.outcome = Some((HookResult::Continue, Ending::Completed));
        }
        assert_eq!(settle(&mut state, &tokens, start), Ok(HookResult::Continue));

        let mut state = with_second_action(state_with_action(
            start,
            Duration::from_secs(5),
            Duration::from_secs(50),
            HookResult::Continue,
        ));
        if let Some(action) = state.actions.get_mut("t") {
            action.outcome = Some((HookResult::Abandon, Ending::Completed));
        }
        assert_eq!(settle(&mut state, &tokens, start), Ok(HookResult::Abandon));
        assert_eq!(
            state.actions["u"].outcome,
            Some((HookResult::Abandon, Ending::Skipped))
        );
    }
}
