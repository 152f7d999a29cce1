//! The web service the tests, the demo and the benchmarks run on the swarm: busybox `httpd`
//! from the imported image, its port published in host mode (the kernel has no IPVS, so the
//! ingress routing mesh cannot work), which also keeps it to one task per node.

use anyhow::{Context, Result};
use bollard::Docker;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, Task, TaskSpec, TaskSpecContainerSpec, TaskState,
};
use bollard::query_parameters::ListTasksOptions;
use std::collections::HashMap;
use std::time::Duration;

use crate::layout;

/// A replicated service `name` of `replicas` tasks of `container` on the test bed's image:
/// what every service of the tests starts from.
pub fn replicated(name: &str, replicas: i64, container: TaskSpecContainerSpec) -> ServiceSpec {
    ServiceSpec {
        name: Some(name.to_owned()),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(replicas),
            }),
            ..Default::default()
        }),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(layout::IMAGE.to_owned()),
                ..container
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates `spec` on the swarm.
pub async fn create(manager: &Docker, spec: ServiceSpec) -> Result<()> {
    let name = spec.name.clone().unwrap_or_default();
    manager
        .create_service(spec, None)
        .await
        .with_context(|| format!("cannot create service {name}"))?;
    Ok(())
}

/// Creates a replicated web service `name` publishing `port` on every node that runs a task.
/// Each task answers with its container's hostname, so a test can tell replicas apart.
pub async fn deploy_web(manager: &Docker, name: &str, replicas: u64, port: u16) -> Result<()> {
    let container = TaskSpecContainerSpec {
        command: Some(vec!["sh".to_owned(), "-c".to_owned()]),
        args: Some(vec![
            "hostname > /www/index.html && exec httpd -f -p 80 -h /www".to_owned(),
        ]),
        // An init as PID 1 passes SIGTERM on: httpd stops at once when its task is shut
        // down, rather than after the 10 s grace period and a SIGKILL.
        init: Some(true),
        ..Default::default()
    };
    let spec = ServiceSpec {
        endpoint_spec: Some(host_mode(port)),
        ..replicated(name, replicas as i64, container)
    };
    create(manager, spec).await
}

/// An endpoint publishing the task's port 80 on `port` of the node it runs on (host mode).
pub fn host_mode(port: u16) -> EndpointSpec {
    EndpointSpec {
        ports: Some(vec![EndpointPortConfig {
            target_port: Some(80),
            published_port: Some(i64::from(port)),
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            ..Default::default()
        }]),
        ..Default::default()
    }
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
    crate::wait::until(timeout, Duration::from_millis(200), async || {
        let tasks = running_tasks(manager, name).await?;
        Ok(if tasks.len() == count {
            Ok(tasks)
        } else {
            Err(format!("{} of {count} tasks of {name} run", tasks.len()))
        })
    })
    .await
}
