//! The rolling replacement of a group's instances, as CloudFormation's
//! `AutoScalingRollingUpdate` does it on a stack update with the stack's settings
//! (`MaxBatchSize: 1`, `MinInstancesInService` = the group's size, `WaitOnResourceSignals`):
//! for each old instance, oldest first, the group launches one more instance with the new
//! launch configuration, waits until it has signalled SUCCESS (`SignalResource`, sent by the
//! node bootstrap once it joined) and is in service, then terminates the old instance,
//! decrementing the desired capacity, through the termination hooks. A FAILURE signal, a
//! launch that ends, or no signal within the pause time stops the update, as CloudFormation
//! would (it would then roll back; the emulator stops and says so).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;

use super::Emulator;
use super::model::{LaunchConfiguration, LifecycleState, Rolling, RollingStep};

/// CloudFormation's `PauseTime` of the stack (`PT20M`), in API seconds.
const PAUSE_TIME_SECS: u32 = 20 * 60;

/// A rolling update asked for.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// The group.
    pub group: String,
    /// The launch configuration to move to; default: a copy of the group's under a new name.
    pub launch_configuration: Option<String>,
    /// Replace at most this many instances (a shorter run), default all.
    pub max_replacements: Option<usize>,
}

/// Starts the update in the background; its progress is in the state's `rolling`.
pub fn start(emulator: &Arc<Emulator>, request: Request) -> Result<Rolling, String> {
    let mut state = emulator.lock();
    let group = state
        .groups
        .get(&request.group)
        .cloned()
        .ok_or_else(|| format!("no group {}", request.group))?;
    if state
        .rolling
        .get(&group.name)
        .is_some_and(|r| r.ended.is_none())
    {
        return Err(format!("{} is being updated already", group.name));
    }
    let target = match request.launch_configuration {
        Some(name) if state.launch_configurations.contains_key(&name) => name,
        Some(name) => return Err(format!("no launch configuration {name}")),
        None => {
            let current = state
                .launch_configurations
                .get(&group.launch_configuration)
                .cloned()
                .ok_or("the group has no launch configuration")?;
            let name = format!("{}-{}", group.name, Utc::now().format("%Y%m%d%H%M%S%3f"));
            let copy = LaunchConfiguration {
                name: name.clone(),
                arn: super::model::launch_configuration_arn(
                    &name,
                    &uuid::Uuid::new_v4().to_string(),
                ),
                created: Utc::now(),
                ..current
            };
            state.launch_configurations.insert(name.clone(), copy);
            name
        }
    };
    let mut old: Vec<(chrono::DateTime<Utc>, String)> = state
        .members(&group.name)
        .into_iter()
        .filter(|i| i.state == LifecycleState::InService && i.launch_configuration != target)
        .map(|i| (i.launched, i.id.clone()))
        .collect();
    old.sort();
    let mut old: Vec<String> = old.into_iter().map(|(_, id)| id).collect();
    if let Some(max) = request.max_replacements {
        old.truncate(max);
    }
    let rolling = Rolling {
        launch_configuration: target.clone(),
        old,
        phase: "starting".into(),
        started: Some(Utc::now()),
        ..Default::default()
    };
    state.rolling.insert(group.name.clone(), rolling.clone());
    if let Some(g) = state.groups.get_mut(&group.name) {
        g.launch_configuration = target.clone();
    }
    state.record(
        &group.name,
        None,
        format!(
            "rolling update to {target}: {} instances, one at a time",
            rolling.old.len()
        ),
    );
    drop(state);
    tokio::spawn(Arc::clone(emulator).roll(group.name));
    Ok(rolling)
}

impl Emulator {
    fn set_phase(&self, group: &str, phase: impl Into<String>) {
        let phase = phase.into();
        let mut state = self.lock();
        if let Some(rolling) = state.rolling.get_mut(group) {
            rolling.phase = phase.clone();
        }
        state.record(group, None, format!("rolling update: {phase}"));
    }

    fn fail(&self, group: &str, why: String) {
        self.set_phase(group, format!("failed: {why}"));
        if let Some(rolling) = self.lock().rolling.get_mut(group) {
            rolling.ended = Some(Utc::now());
        }
    }

    /// Waits until `found` finds something (checked at every change, and every 100 ms), at
    /// most `timeout`; what it found.
    async fn wait_for<T>(
        &self,
        timeout: Duration,
        found: impl Fn(&Self) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = found(self) {
                return Some(found);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), self.changed.notified()).await;
        }
    }

    async fn roll(self: Arc<Self>, group: String) {
        let (old, target) = {
            let state = self.lock();
            let rolling = &state.rolling[&group];
            (rolling.old.clone(), rolling.launch_configuration.clone())
        };
        let pause = self.clock.real(PAUSE_TIME_SECS);
        for old_id in old {
            // One more instance, with the new configuration.
            let before: Vec<String> = {
                let mut state = self.lock();
                let before = state.members(&group).iter().map(|i| i.id.clone()).collect();
                if let Some(g) = state.groups.get_mut(&group) {
                    g.desired += 1;
                    g.max = g.max.max(g.desired);
                }
                if let Some(rolling) = state.rolling.get_mut(&group) {
                    rolling.current_old = Some(old_id.clone());
                    rolling.current_new = None;
                }
                before
            };
            self.set_phase(&group, format!("launching the replacement of {old_id}"));
            let started = Utc::now();
            self.reconcile(&group);
            let new_of = |emulator: &Self| -> Option<String> {
                emulator
                    .lock()
                    .members(&group)
                    .iter()
                    .find(|i| !before.contains(&i.id) && i.launch_configuration == target)
                    .map(|i| i.id.clone())
            };
            let Some(new_id) = self.wait_for(pause, new_of).await else {
                return self.fail(&group, "no replacement was launched".into());
            };
            if let Some(rolling) = self.lock().rolling.get_mut(&group) {
                rolling.current_new = Some(new_id.clone());
            }
            self.set_phase(&group, format!("waiting for {new_id} to join and signal"));
            // Joined (SUCCESS and in service), or failed (FAILURE, or its launch ended).
            let joined = |emulator: &Self| {
                let state = emulator.lock();
                let signalled = state.signals.iter().rev().find(|s| s.unique_id == new_id);
                let instance = state.instances.get(&new_id).map(|i| i.state);
                match (signalled, instance) {
                    (Some(s), _) if !s.success => Some(false),
                    (_, Some(LifecycleState::Terminated | LifecycleState::Terminating)) => {
                        Some(false)
                    }
                    (Some(_), Some(LifecycleState::InService)) => Some(true),
                    _ => None,
                }
            };
            match self.wait_for(pause, joined).await {
                None => {
                    return self.fail(
                        &group,
                        format!("{new_id} did not signal within the pause time"),
                    );
                }
                Some(false) => {
                    return self.fail(
                        &group,
                        format!("{new_id} signalled FAILURE or never went in service"),
                    );
                }
                Some(true) => {}
            }
            let new_ready = Utc::now();
            // The old one goes, with the desired capacity, through the termination hooks.
            self.set_phase(&group, format!("terminating {old_id}"));
            {
                let mut state = self.lock();
                if state
                    .instances
                    .get(&old_id)
                    .is_some_and(|i| i.state.counts_as_capacity())
                {
                    if let Some(g) = state.groups.get_mut(&group) {
                        g.desired = g.desired.saturating_sub(1);
                    }
                    state.record(
                        &group,
                        Some(&old_id),
                        "rolling update: terminating the old instance",
                    );
                    self.start_termination(&mut state, &old_id, true);
                } else if let Some(g) = state.groups.get_mut(&group) {
                    // Gone already (terminated meanwhile): the group just has one too many.
                    g.desired = g.desired.saturating_sub(1);
                }
            }
            let terminated = |emulator: &Self| {
                emulator
                    .lock()
                    .instances
                    .get(&old_id)
                    .is_none_or(|i| i.state == LifecycleState::Terminated)
                    .then_some(())
            };
            // The termination takes what its hooks take; no pause time applies to it.
            self.wait_for(Duration::from_secs(24 * 3600), terminated)
                .await;
            let mut state = self.lock();
            if let Some(rolling) = state.rolling.get_mut(&group) {
                rolling.replaced += 1;
                rolling.steps.push(RollingStep {
                    old: old_id.clone(),
                    new: new_id.clone(),
                    started,
                    new_ready: Some(new_ready),
                    ended: Some(Utc::now()),
                });
            }
        }
        self.set_phase(&group, "done");
        if let Some(rolling) = self.lock().rolling.get_mut(&group) {
            rolling.ended = Some(Utc::now());
            rolling.current_old = None;
            rolling.current_new = None;
        }
    }
}
