//! End-to-end tests of the workspace, in `tests/`: they run against the test bed that
//! `testbed up` starts (see the README) and fail, saying so, when it is not up.

pub mod boot;
pub mod demo;
pub mod emf;
pub mod ending;
pub mod fixture;
pub mod hard_failures;
pub mod listeners;
pub mod load;
pub mod manager_count;
pub mod processor;
pub mod rolling;
pub mod scale;
pub mod secrets;
pub mod simulated;
pub mod timeline;
pub mod workload;

/// The one polling loop of the tests, the test bed's.
pub use testbed::wait;

use anyhow::{Context, Result};

/// The SDK configuration from the environment, as the product loads it; refuses to run
/// against real AWS by accident.
pub async fn sdk_config() -> Result<aws_config::SdkConfig> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").context(
        "AWS_ENDPOINT_URL is unset: run `eval \"$(testbed env)\"` first (scripts/test.sh does)",
    )?;
    anyhow::ensure!(
        endpoint == testbed::moto::endpoint(),
        "AWS_ENDPOINT_URL={endpoint} is not the test bed's moto"
    );
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await)
}

/// A binary of the workspace (`lifecycle`, `bootstrap`), next to this test
/// (`target/debug/deps/..`) or binary (`target/debug/..`).
pub fn binary(name: &str) -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .find(|path| path.exists())
        .with_context(|| {
            format!(
                "{name} is missing next to {}: `cargo build -p {name}` (scripts/test.sh does)",
                exe.display()
            )
        })
}

/// The workspace's root (where `template.yaml` is).
pub fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A field of a `/proc` file written in kibibytes (`VmRSS:     1234 kB` in a process's
/// `status`, `MemAvailable:` in `meminfo`), `None` when the text has no such field.
///
/// ```
/// assert_eq!(e2e::kib_field("Name:\tx\nVmHWM:\t   17200 kB\n", "VmHWM"), Some(17200));
/// ```
pub fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The test bed virtualenv's Python (moto, cfn-lint, aws-sam-translator).
pub fn python() -> std::path::PathBuf {
    testbed::moto::venv().join("bin/python")
}

/// The Docker API sockets of the test bed's managers, as `DOCKER_HOSTS` takes them.
pub fn manager_sockets() -> Result<String> {
    let bed = testbed::Testbed::load()?;
    Ok(bed
        .nodes
        .iter()
        .filter(|n| n.role == testbed::Role::Manager)
        .map(|n| n.docker_host())
        .collect::<Vec<_>>()
        .join(","))
}
