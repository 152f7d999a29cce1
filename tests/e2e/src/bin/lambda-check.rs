//! `lambda-check`: the processor's Lambda front behind a real Lambda runtime API, offline:
//! `cargo lambda watch` (cargo-lambda from PyPI, in the test bed's virtualenv) runs the
//! `lifecycle` binary as a Lambda function on this machine (x86_64), and one SQS event of four
//! records is invoked through its HTTP invoke endpoint, as Lambda's SQS event source would;
//! then a scheduled event, as the stack's rule sends every minute, runs the membership sweep.
//!
//! A binary, not a test: `cargo lambda watch` builds with cargo, which waits on the build
//! lock a running `cargo test` holds. `scripts/test.sh` runs it after the tests.
//!
//! `cargo lambda watch` starts a function instance with `cargo run --package lifecycle --bin
//! lifecycle` when the first invocation arrives, and answers 408 when that instance has not
//! answered within `--timeout`. `cargo run` of one package unifies features over that package
//! alone, so it is a build of its own, not the workspace build `scripts/test.sh` made: on a
//! fresh clone it takes minutes. So the check builds exactly that first, then waits until the
//! function instance answers a harmless invocation (a test notification), and only then sends
//! the batch it checks.

use anyhow::{Context, Result, ensure};
use e2e::fixture::{Fixture, JOIN, TERMINATING, history_of};
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;
use testbed::Testbed;

/// The port `cargo lambda watch` serves on.
const PORT: u16 = 9011;

/// The function `cargo lambda watch` runs, as cargo's arguments.
const FUNCTION: [&str; 4] = ["--package", "lifecycle", "--bin", "lifecycle"];

/// How long the function instance may take to answer its first invocation: `cargo lambda
/// watch` builds it then, if its build is not fresh.
const READY_TIMEOUT: Duration = Duration::from_secs(600);

#[tokio::main]
async fn main() -> Result<()> {
    let fixture = Fixture::new("lambda", 1, Some(JOIN)).await?;
    let outcome = check(&fixture).await;
    fixture.remove().await?;
    outcome?;
    println!("lambda-check: the Lambda front handled a mixed batch behind a real runtime API");
    Ok(())
}

async fn check(fixture: &Fixture) -> Result<()> {
    let bed = Testbed::load()?;
    fixture
        .put_hook("drain", TERMINATING, 3600, "ABANDON")
        .await?;
    let instance = fixture.wait_in_service(1).await?.remove(0);
    let manager = bed.manager().await?;
    e2e::workload::wait_joined(&manager, std::slice::from_ref(&instance)).await?;

    let workspace = e2e::workspace().canonicalize()?;
    let logs = workspace.join("target/debug/e2e-logs");
    fs::create_dir_all(&logs)?;
    // Values hold commas (DOCKER_HOSTS), so an env file, not --env-var.
    let hosts = e2e::manager_sockets()?;
    let env_file = logs.join("lambda.env");
    fs::write(
        &env_file,
        format!(
            "SWARM_GROUPS={}\nDOCKER_HOSTS={}\nHEARTBEAT_INTERVAL_SECONDS=1\nPOLL_INTERVAL_MS=100\n",
            fixture.name, hosts
        ),
    )?;
    let venv_bin = testbed::moto::venv().join("bin");
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = fs::File::create(logs.join("lambda-watch.log"))?;
    // The same build `cargo lambda watch` runs (its `cargo run` takes the same package, binary
    // and profile), so that the function instance starts in seconds, not in minutes.
    let built = Command::new("cargo")
        .args(["build", "--locked"])
        .args(FUNCTION)
        .current_dir(&workspace)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .status()
        .context("cannot run cargo build")?;
    ensure!(
        built.success(),
        "`cargo build {}` failed: see {}",
        FUNCTION.join(" "),
        logs.join("lambda-watch.log").display()
    );
    let mut watch = Command::new("cargo")
        .args(["lambda", "watch", "--ignore-changes"])
        .args(FUNCTION)
        .args([
            "--invoke-port",
            &PORT.to_string(),
            "--timeout",
            "60",
            "--env-file",
        ])
        .arg(&env_file)
        .current_dir(&workspace)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start `cargo lambda watch`: scripts/setup.sh installs cargo-lambda")?;
    let outcome = invoke(fixture, &instance, &logs.join("lambda-watch.log")).await;
    // cargo execs cargo-lambda in place: SIGTERM to that pid stops its function instances,
    // SIGKILL then stops it for sure; never an unbounded wait.
    for signal in ["-TERM", "-KILL"] {
        if watch.try_wait()?.is_some() {
            break;
        }
        let _ = Command::new("kill")
            .args([signal, &watch.id().to_string()])
            .status();
        for _ in 0..30 {
            if watch.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    outcome.with_context(|| format!("see {}", logs.join("lambda-watch.log").display()))
}

async fn invoke(fixture: &Fixture, instance: &str, log: &std::path::Path) -> Result<()> {
    let addr: SocketAddr = ([127, 0, 0, 1], PORT).into();
    e2e::wait::until(
        Duration::from_secs(120),
        Duration::from_millis(200),
        async || {
            Ok(
                TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                    .map(drop)
                    .map_err(|error| {
                        format!("cargo lambda watch does not listen on {addr}: {error}")
                    }),
            )
        },
    )
    .await?;
    let record = |id: &str, body: &str| {
        serde_json::json!({
            "messageId": id,
            "receiptHandle": format!("handle-{id}"),
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{}", fixture.name),
            "awsRegion": "us-east-1",
        })
    };
    let test_notification = r#"{"Event":"autoscaling:TEST_NOTIFICATION"}"#;
    // A port that answers is not a function that answers: the instance starts (and, if its
    // build is stale, builds) on the first invocation. A test notification is harmless however
    // often it arrives, also when an answer came too late and it is handed over again.
    let warm_up = serde_json::json!({"Records": [record("m-warm-up", test_notification)]});
    let mut attempts = 0;
    e2e::wait::until(READY_TIMEOUT, Duration::from_secs(1), async || {
        attempts += 1;
        let (status, body) = post(addr, &warm_up).await?;
        Ok(if status == 200 {
            Ok(())
        } else {
            Err(format!(
                "the function instance never answered a test notification: \
                 {attempts} invocation(s), the last answered {status}: {body}"
            ))
        })
    })
    .await?;
    // Terminated only now, the function instance answering: the hook's minute (an hour of
    // API time) must not run out while a fresh machine builds the function.
    fixture.terminate(instance).await?;
    let action = &fixture.next_action().await?;
    let foreign = e2e::fixture::foreign_action();
    let event = serde_json::json!({"Records": [
        record("m-bad", "not json"),
        record("m-test", test_notification),
        record("m-foreign", &foreign),
        record("m-ours", &fixture.notification_body(action)),
    ]});
    let (status, body) = post(addr, &event).await?;
    ensure!(status == 200, "the invocation answered {status}: {body}");
    let response: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("not JSON: {body}"))?;
    let failures: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .context("no batchItemFailures")?
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    ensure!(
        failures == ["m-bad"],
        "reported {failures:?}, expected only m-bad: {body}"
    );
    fixture
        .wait_state(instance, None, Duration::from_secs(30))
        .await?;
    let completed = history_of(instance)
        .await?
        .iter()
        .filter(|h| h.ends_with("completed with CONTINUE"))
        .count();
    ensure!(completed == 1, "{:?}", history_of(instance).await?);
    // The scheduled rule's invocation runs the membership sweep, and says what it did.
    let scheduled = serde_json::json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": chrono::Utc::now().to_rfc3339(),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/lambda-check-sweep"],
        "detail": {}
    });
    let (status, body) = post(addr, &scheduled).await?;
    ensure!(
        status == 200,
        "the scheduled invocation answered {status}: {body}"
    );
    let swept: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("not JSON: {body}"))?;
    ensure!(
        swept["actions"].is_array() && swept["held"].is_number(),
        "the sweep did not say what it did: {body}"
    );
    // Each invocation wrote what it did to its log as Embedded Metric Format, which CloudWatch
    // Logs turns into metrics: valid documents, holding the batch's completion, its rejected
    // record and the sweep.
    let written = fs::read_to_string(log)?;
    let documents = e2e::emf::documents(&written);
    for document in &documents {
        e2e::emf::check(document)?;
    }
    let has = |metric: &str, dimension: Option<(&str, &str)>| {
        documents.iter().any(|d| {
            d[metric].is_number() && dimension.is_none_or(|(name, value)| d[name] == value)
        })
    };
    ensure!(
        has("ActionsCompleted", Some(("Transition", "terminating")))
            && has("MessagesRejected", None)
            && has("Sweeps", Some(("Outcome", "done")))
            && has("Calls", Some(("Service", "Auto Scaling"))),
        "the log's EMF documents miss what the invocations did: {documents:?}"
    );
    Ok(())
}

/// Invokes the function with `event` through the invoke endpoint of `cargo lambda watch`, and
/// returns the HTTP status and body. With curl, as an SQS event source would post it:
/// cargo-lambda's runtime server mishandles an HTTP/1.0 client (the function then dies on a
/// malformed `/next`).
async fn post(addr: SocketAddr, event: &serde_json::Value) -> Result<(u16, String)> {
    let url = format!("http://{addr}/2015-03-31/functions/lifecycle/invocations");
    let event_file = std::env::temp_dir().join(format!("lambda-check-{}.json", std::process::id()));
    fs::write(&event_file, event.to_string())?;
    let output = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-m",
            "90",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            "--data-binary",
        ])
        .arg(format!("@{}", event_file.display()))
        .arg(&url)
        .output()
        .await
        .context("cannot run curl: scripts/setup.sh installs it")?;
    fs::remove_file(&event_file)?;
    let text = String::from_utf8_lossy(&output.stdout);
    let (body, status) = text.rsplit_once('\n').context("no status from curl")?;
    // curl prints 000 when it got no answer at all (its stderr says why).
    let body = if body.is_empty() {
        String::from_utf8_lossy(&output.stderr).trim().to_owned()
    } else {
        body.to_owned()
    };
    Ok((status.trim().parse().unwrap_or(0), body))
}
