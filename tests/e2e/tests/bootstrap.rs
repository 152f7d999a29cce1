//! The node bootstrap forms a swarm from nothing, as on AWS: a manager group and a worker
//! group launched in the same moment through the Auto Scaling emulator, each instance's user
//! data running `bootstrap` inside its node, with a cluster table of its own in moto's
//! DynamoDB. A separate swarm from the test bed's own. In a test binary of its own.

use anyhow::{Context, Result, ensure};
use bollard::models::LocalNodeState;
use e2e::boot::{create_table, launch_cluster, user_data, wait_booted, wait_one_swarm};
use e2e::fixture::{Fixture, Launch};
use e2e::wait;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use testbed::Testbed;

/// Rounds of "from nothing" (the issue asks for ten).
const ROUNDS: usize = 10;

/// One round: both groups launched at once, one swarm formed, then everything removed.
async fn round(dynamodb: &aws_sdk_dynamodb::Client, n: usize) -> Result<Duration> {
    let table = format!("e2e-boot-{}-{n}", std::process::id());
    create_table(dynamodb, &table).await?;
    let started = Instant::now();
    let (managers, workers) = launch_cluster(&table, "boot", n).await?;
    let outcome = async {
        let mut instances = managers.wait_in_service(3).await?;
        instances.extend(workers.wait_in_service(2).await?);
        let swarm = wait_one_swarm(&instances, 3).await?;
        let elapsed = started.elapsed();
        // The record names the swarm and its three managers, once every bootstrap is done.
        wait_booted(&instances).await?;
        let item = dynamodb
            .get_item()
            .table_name(&table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("cluster".into()),
            )
            .consistent_read(true)
            .send()
            .await?
            .item
            .context("no cluster record")?;
        let recorded = item.get("swarm_id").and_then(|v| v.as_s().ok()).cloned();
        ensure!(
            recorded.as_deref() == Some(swarm.as_str()),
            "recorded {recorded:?}, formed {swarm}"
        );
        let addresses = item
            .get("managers")
            .and_then(|v| v.as_l().ok())
            .map_or(0, Vec::len);
        ensure!(addresses == 3, "{addresses} manager addresses recorded");

        if n == 0 {
            restart_changes_nothing(&instances, &table, &swarm).await?;
        }
        Ok(elapsed)
    }
    .await;
    managers.remove().await?;
    workers.remove().await?;
    dynamodb.delete_table().table_name(&table).send().await?;
    outcome
}

/// Runs the bootstrap again on `node`, as `role`, against `table` (as its user data did, or
/// as an operator would by hand); fails unless it succeeds, and returns what it printed.
fn bootstrap_again(node: &testbed::Node, role: &str, table: &str) -> Result<String> {
    let (manager_secret, worker_secret) = testbed::token_secrets(table);
    let mut command = std::process::Command::new("nsenter");
    command
        .arg(format!("--net=/run/netns/{}", node.netns()))
        .arg(e2e::binary("bootstrap")?)
        .env("NODE_ROLE", role)
        .env("CLUSTER_TABLE", table)
        .env("WORKER_TOKEN_SECRET", worker_secret)
        .env("DOCKER_HOST", node.docker_host())
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            testbed::autoscaling::imds_endpoint(),
        );
    if role == "manager" {
        command.env("MANAGER_TOKEN_SECRET", manager_secret);
    }
    let output = command.output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(output.status.success(), "{said}");
    Ok(said)
}

/// Waits until the one instance `workers` launches is in service, a node of the swarm of
/// `manager`, and booted; returns it.
async fn one_worker_joined(workers: &Fixture, manager: &bollard::Docker) -> Result<String> {
    let id = workers.wait_in_service(1).await?.remove(0);
    e2e::workload::wait_joined(manager, std::slice::from_ref(&id)).await?;
    wait_booted(std::slice::from_ref(&id)).await?;
    Ok(id)
}

/// A worker's daemon restarted and its bootstrap run again: the same swarm, nothing changed.
async fn restart_changes_nothing(instances: &[String], table: &str, swarm: &str) -> Result<()> {
    let bed = Testbed::load()?;
    let worker = bed
        .nodes
        .iter()
        .find(|n| n.instance_id == instances[4])
        .context("no node for the worker")?;
    worker.restart_daemon().await?;
    let said = bootstrap_again(worker, "worker", table)?;
    ensure!(said.contains("AlreadyMember"), "{said}");
    ensure!(
        wait_one_swarm(instances, 3).await? == swarm,
        "the swarm changed"
    );
    Ok(())
}

#[tokio::test]
async fn three_managers_and_two_workers_launched_at_once_form_one_swarm_every_time() -> Result<()> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&e2e::sdk_config().await?);
    let mut times = Vec::new();
    for n in 0..ROUNDS {
        times.push(
            round(&dynamodb, n)
                .await
                .with_context(|| format!("round {n}"))?,
        );
    }
    times.sort();
    println!(
        "launch to one swarm of 3 + 2, {ROUNDS} rounds: p50 {:.1} s, max {:.1} s",
        times[ROUNDS / 2].as_secs_f64(),
        times[ROUNDS - 1].as_secs_f64()
    );
    Ok(())
}

/// The first instance of the group other than `not`, waiting up to a minute for one.
async fn first_instance(group: &Fixture, not: Option<&str>) -> Result<String> {
    wait::until(
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || {
            let found = group
                .instances()
                .await?
                .into_iter()
                .map(|i| i.0)
                .find(|id| Some(id.as_str()) != not);
            Ok(found.ok_or_else(|| format!("no new instance in {}", group.name)))
        },
    )
    .await
}

/// Waits until the instance's bootstrap has printed `text`; returns all it printed.
async fn wait_printed(instance: &str, text: &str) -> Result<String> {
    wait::until(
        Duration::from_secs(60),
        Duration::from_millis(250),
        async || {
            let log = e2e::boot::boot_log(instance);
            Ok(if log.contains(text) {
                Ok(log)
            } else {
                Err(format!("the bootstrap has not printed {text:?}: {log}"))
            })
        },
    )
    .await
}

/// A client of the engine of `instance`'s node.
async fn engine_of(instance: &str) -> Result<bollard::Docker> {
    let bed = Testbed::load()?;
    let node = bed
        .nodes
        .iter()
        .find(|n| n.instance_id == instance)
        .with_context(|| format!("no node for {instance}"))?;
    testbed::docker::connect(&node.docker_host()).await
}

#[tokio::test]
async fn workers_scaled_from_two_to_four_join_are_admitted_by_the_launch_hook_and_run_tasks()
-> Result<()> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&e2e::sdk_config().await?);
    let table = format!("e2e-boot-scale-{}", std::process::id());
    create_table(&dynamodb, &table).await?;
    let managers = Fixture::create(
        "scale-m",
        1,
        Launch::UserData(&user_data("manager", &table)?),
        "manager",
    )
    .await?;
    let workers = Fixture::create(
        "scale-w",
        2,
        Launch::UserData(&user_data("worker", &table)?),
        "worker",
    )
    .await?;
    let outcome = async {
        let manager = managers.wait_in_service(1).await?.remove(0);
        let mut instances = vec![manager.clone()];
        instances.extend(workers.wait_in_service(2).await?);
        wait_one_swarm(&instances, 1).await?;
        let bed = Testbed::load()?;
        let manager_node = bed
            .nodes
            .iter()
            .find(|n| n.instance_id == manager)
            .context("no manager node")?;
        // The processor of this swarm admits the group's launches.
        workers
            .put_hook("admit", e2e::fixture::LAUNCHING, 600, "ABANDON")
            .await?;
        let _processor = e2e::processor::ProcessorProcess::start(
            &workers,
            &[
                ("DOCKER_HOSTS", manager_node.docker_host().as_str()),
                ("LAUNCH_DEADLINE_SECONDS", "60"),
            ],
        )?;
        workers.set_desired(4).await?;
        let all = workers.wait_in_service(4).await?;
        let new: Vec<&String> = all.iter().filter(|id| !instances.contains(id)).collect();
        ensure!(new.len() == 2, "{all:?}");
        for id in &new {
            let history = e2e::fixture::history_of(id).await?;
            ensure!(
                history
                    .iter()
                    .any(|h| h == "hook admit: completed with CONTINUE"),
                "{id}: {history:?}"
            );
        }
        // Every worker runs a task of a service spread one per worker.
        let docker = engine_of(&manager).await?;
        docker
            .create_service(
                bollard::models::ServiceSpec {
                    name: Some("spread".into()),
                    mode: Some(bollard::models::ServiceSpecMode {
                        replicated: Some(bollard::models::ServiceSpecModeReplicated {
                            replicas: Some(4),
                        }),
                        ..Default::default()
                    }),
                    task_template: Some(bollard::models::TaskSpec {
                        container_spec: Some(bollard::models::TaskSpecContainerSpec {
                            image: Some(testbed::layout::IMAGE.into()),
                            command: Some(vec!["sleep".into(), "600".into()]),
                            ..Default::default()
                        }),
                        placement: Some(bollard::models::TaskSpecPlacement {
                            constraints: Some(vec!["node.role==worker".into()]),
                            max_replicas: Some(1),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                None,
            )
            .await?;
        let nodes: BTreeSet<String> = e2e::workload::wait_running(&docker, "spread", 4)
            .await?
            .into_iter()
            .collect();
        for id in &new {
            let node = testbed::docker::node_by_instance_id(&docker, id)
                .await?
                .and_then(|n| n.id);
            ensure!(
                node.is_some_and(|n| nodes.contains(&n)),
                "the new worker {id} runs no task"
            );
        }
        Ok(())
    }
    .await;
    managers.remove().await?;
    workers.remove().await?;
    dynamodb.delete_table().table_name(&table).send().await?;
    outcome
}

#[tokio::test]
async fn a_worker_that_cannot_reach_any_manager_fails_loudly_and_its_launch_is_abandoned_and_replaced()
-> Result<()> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&e2e::sdk_config().await?);
    let table = format!("e2e-boot-gone-{}", std::process::id());
    create_table(&dynamodb, &table).await?;
    // A swarm recorded whose only manager is nowhere.
    put_record(
        &dynamodb,
        &table,
        "lost-swarm",
        &["10.77.0.250:2377".to_owned()],
        "SWMTKN-1-none",
        Tokens::InSecrets,
    )
    .await?;
    let script = user_data("worker", &table)?
        .replace("BOOT_DEADLINE_SECONDS=120", "BOOT_DEADLINE_SECONDS=5");
    let workers = Fixture::create("gone-w", 0, Launch::UserData(&script), "worker").await?;
    let outcome = async {
        workers
            .put_hook("admit", e2e::fixture::LAUNCHING, 600, "ABANDON")
            .await?;
        let _processor = e2e::processor::ProcessorProcess::start(
            &workers,
            &[("LAUNCH_DEADLINE_SECONDS", "30")],
        )?;
        workers.set_desired(1).await?;
        // The group's instance, read from the group: the queue is the processor's.
        let id = first_instance(&workers, None).await?;
        // The bootstrap says why it gives up, and does not start a swarm of its own.
        wait_printed(&id, "refusing to start a second swarm").await?;
        let swarm = engine_of(&id)
            .await?
            .info()
            .await?
            .swarm
            .unwrap_or_default();
        ensure!(
            swarm.local_node_state != Some(LocalNodeState::ACTIVE),
            "the worker started a swarm"
        );
        workers
            .wait_state(&id, None, Duration::from_secs(60))
            .await?;
        let history = e2e::fixture::history_of(&id).await?;
        ensure!(
            history
                .iter()
                .any(|h| h == "hook admit: completed with ABANDON"),
            "{history:?}"
        );
        // Read from the group, not the queue: the processor takes the replacement's message.
        first_instance(&workers, Some(&id))
            .await
            .context("no replacement was launched")?;
        Ok(())
    }
    .await;
    workers.remove().await?;
    dynamodb.delete_table().table_name(&table).send().await?;
    outcome
}

/// Where a test's cluster record keeps the join tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tokens {
    /// In their secrets, as the stack writes them now.
    InSecrets,
    /// In the record itself, as an earlier version wrote them.
    InRecord,
}

/// Writes a ready cluster record into `table`: the swarm `swarm_id`, its `managers` in this
/// order, and `token` for managers and workers alike, kept as `tokens` says.
async fn put_record(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    swarm_id: &str,
    managers: &[String],
    token: &str,
    tokens: Tokens,
) -> Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let managers = managers.iter().cloned().map(AttributeValue::S).collect();
    let mut put = dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("cluster".into()))
        .item("status", AttributeValue::S("ready".into()))
        .item("owner", AttributeValue::S("i-00000000000000000".into()))
        .item("swarm_id", AttributeValue::S(swarm_id.into()))
        .item("managers", AttributeValue::L(managers));
    match tokens {
        Tokens::InRecord => {
            put = put
                .item("manager_token", AttributeValue::S(token.into()))
                .item("worker_token", AttributeValue::S(token.into()));
        }
        Tokens::InSecrets => {
            let secrets = aws_sdk_secretsmanager::Client::new(&e2e::sdk_config().await?);
            let (manager, worker) = testbed::token_secrets(table);
            for id in [manager, worker] {
                secrets
                    .put_secret_value()
                    .secret_id(id)
                    .secret_string(serde_json::json!({ "token": token }).to_string())
                    .send()
                    .await?;
            }
        }
    }
    put.send().await?;
    Ok(())
}

/// Records the test bed's own swarm in `table` with its worker token (kept as `tokens` says),
/// its managers behind `first` if given; returns a client of one of its managers.
async fn record_the_test_beds_swarm(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    first: Option<String>,
    tokens: Tokens,
) -> Result<bollard::Docker> {
    let bed = Testbed::load()?;
    let manager = bed.manager().await?;
    let swarm_id = manager.inspect_swarm().await?.id.context("no swarm id")?;
    let token = testbed::docker::join_tokens(&manager).await?.worker;
    let managers: Vec<String> = first
        .into_iter()
        .chain(bed.managers().map(|m| format!("{}:2377", m.ip)))
        .collect();
    put_record(dynamodb, table, &swarm_id, &managers, &token, tokens).await?;
    Ok(manager)
}

#[tokio::test]
async fn a_worker_whose_first_recorded_manager_accepts_but_never_answers_joins_through_the_next()
-> Result<()> {
    // An address that accepts connections and never says a word, first in the record: a hung
    // manager, or a terminated manager's address given to another machine. Docker joins
    // through the first address only, times out after 20 s and keeps trying it for good.
    let silent = tokio::net::TcpListener::bind((testbed::layout::gateway(), 2377)).await?;
    let address = silent.local_addr()?.to_string();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let dynamodb = aws_sdk_dynamodb::Client::new(&e2e::sdk_config().await?);
    let table = format!("e2e-boot-silent-{}", std::process::id());
    create_table(&dynamodb, &table).await?;
    let manager =
        record_the_test_beds_swarm(&dynamodb, &table, Some(address), Tokens::InSecrets).await?;
    let script = user_data("worker", &table)?;
    let workers = Fixture::create("silent-w", 1, Launch::UserData(&script), "worker").await?;
    let outcome = async {
        let id = one_worker_joined(&workers, &manager).await?;
        let log = e2e::boot::boot_log(&id);
        ensure!(log.contains("stuck on one manager"), "{log}");
        Ok(())
    }
    .await;
    holder.abort();
    workers.remove().await?;
    dynamodb.delete_table().table_name(&table).send().await?;
    outcome
}

#[tokio::test]
async fn a_worker_booting_while_dynamodb_fails_retries_and_joins_once_it_answers() -> Result<()> {
    // The cluster table does not exist yet: every read fails, as in an outage.
    let dynamodb = aws_sdk_dynamodb::Client::new(&e2e::sdk_config().await?);
    let table = format!("e2e-boot-late-{}", std::process::id());
    let script = user_data("worker", &table)?;
    let workers = Fixture::create("late-w", 1, Launch::UserData(&script), "worker").await?;
    let outcome = async {
        let id = workers.wait_in_service(1).await?.remove(0);
        wait_printed(&id, "retrying").await?;
        create_table(&dynamodb, &table).await?;
        let manager =
            record_the_test_beds_swarm(&dynamodb, &table, None, Tokens::InSecrets).await?;
        e2e::workload::wait_joined(&manager, std::slice::from_ref(&id)).await?;
        wait_booted(std::slice::from_ref(&id)).await
    }
    .await;
    workers.remove().await?;
    let _ = dynamodb.delete_table().table_name(&table).send().await;
    outcome
}

#[tokio::test]
async fn a_record_of_an_earlier_version_still_joins_workers_and_a_manager_moves_its_tokens_out()
-> Result<()> {
    // A stack made by an earlier version: the tokens sit in the cluster record, which every
    // role reads. Its join tokens' secrets are new and empty (the stack update made them).
    let config = e2e::sdk_config().await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("e2e-boot-legacy-{}", std::process::id());
    create_table(&dynamodb, &table).await?;
    let manager = record_the_test_beds_swarm(&dynamodb, &table, None, Tokens::InRecord).await?;
    let script = user_data("worker", &table)?;
    let workers = Fixture::create("legacy-w", 1, Launch::UserData(&script), "worker").await?;
    let outcome = async {
        // A worker booting before any manager has: it joins with the record's token.
        one_worker_joined(&workers, &manager).await?;

        // A manager's bootstrap (a reboot, or run again by hand): the tokens move out.
        let bed = Testbed::load()?;
        let node = bed.managers().next().context("no manager")?;
        let said = bootstrap_again(node, "manager", &table)?;
        let (manager_secret, worker_secret) = testbed::token_secrets(&table);
        let item = dynamodb
            .get_item()
            .table_name(&table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("cluster".into()),
            )
            .send()
            .await?
            .item
            .context("no record")?;
        ensure!(
            !item.contains_key("manager_token") && !item.contains_key("worker_token"),
            "the record still holds tokens: {:?}",
            item.keys().collect::<Vec<_>>()
        );
        let tokens = testbed::docker::join_tokens(&manager).await?;
        let secrets = aws_sdk_secretsmanager::Client::new(&config);
        for (id, expected) in [
            (&manager_secret, &tokens.manager),
            (&worker_secret, &tokens.worker),
        ] {
            let value = secrets.get_secret_value().secret_id(id).send().await?;
            let held: serde_json::Value =
                serde_json::from_str(value.secret_string().unwrap_or("{}"))?;
            ensure!(
                held["token"] == expected.as_str(),
                "{id} does not hold the swarm's token"
            );
        }
        ensure!(said.contains("moved the join tokens"), "{said}");

        // A worker booting now joins with the token from its secret.
        workers.set_desired(2).await?;
        let both = workers.wait_in_service(2).await?;
        e2e::workload::wait_joined(&manager, &both).await?;
        wait_booted(&both).await
    }
    .await;
    workers.remove().await?;
    dynamodb.delete_table().table_name(&table).send().await?;
    outcome
}
