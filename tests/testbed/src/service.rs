//! The web service the tests, the demo and the benchmarks run on the swarm: busybox `httpd`
//! from the imported image, its port published in host mode (the kernel has no IPVS, so the
//! ingress routing mesh cannot work), which also keeps it to one task per node.

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, Task, TaskSpec, TaskSpecContainerSpec, TaskState,
};
use bollard::query_parameters::ListTasksOptions;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::layout;

/// Creates a replicated web service `name` publishing `port` on every node that runs a task.
/// Each task answers with its container's hostname, so a test can tell replicas apart.
pub async fn deploy_web(manager: &Docker, name: &str, replicas: u64, port: u16) -> Result<()> {
    let spec = ServiceSpec {
        name: Some(name.to_owned()),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(replicas as i64),
            }),
            ..Default::default()
        }),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(layout::IMAGE.to_owned()),
                command: Some(vec!["sh".to_owned(), "-c".to_owned()]),
                args: Some(vec![
                    "hostname > /www/index.html && exec httpd -f -p 80 -h /www".to_owned(),
                ]),
                // An init as PID 1 passes SIGTERM on: httpd stops at once when its task is
                // shut down, rather than after the 10 s grace period and a SIGKILL.
                init: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            ports: Some(vec![EndpointPortConfig {
                target_port: Some(80),
                published_port: Some(i64::from(port)),
                publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    manager
        .create_service(spec, None)
        .await
        .with_context(|| format!("cannot create service {name}"))?;
    Ok(())
}

/// The tasks of service `name` that are running, with the node id each runs on.
pub async fn running_tasks(manager: &Docker, name: &str) -> Result<Vec<Task>> {
    let filters = HashMap::from([
        ("service".to_owned(), vec![name.to_owned()]),
        ("desired-state".to_owned(), vec!["running".to_owned()]),
    ]);
    let tasks = manager
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .with_context(|| format!("cannot list the tasks of {name}"))?;
    Ok(tasks
        .into_iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .collect())
}

/// Waits until `count` tasks of `name` run; returns them.
pub async fn wait_running(
    manager: &Docker,
    name: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Task>> {
    let started = Instant::now();
    loop {
        let tasks = running_tasks(manager, name).await?;
        if tasks.len() == count {
            return Ok(tasks);
        }
        if started.elapsed() > timeout {
            bail!(
                "after {timeout:?}, {} of {count} tasks of {name} run",
                tasks.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
