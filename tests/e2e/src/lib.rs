//! End-to-end tests of the workspace, in `tests/`: they run against the test bed that
//! `testbed up` starts (see the README) and fail, saying so, when it is not up.

pub mod fixture;
pub mod processor;
pub mod workload;

use anyhow::{Context, Result};

/// The SDK configuration from the environment, as the product loads it; refuses to run
/// against real AWS by accident.
pub async fn sdk_config() -> Result<aws_config::SdkConfig> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").context(
        "AWS_ENDPOINT_URL is unset: run `eval \"$(testbed env)\"` first (scripts/test.sh does)",
    )?;
    anyhow::ensure!(
        endpoint.starts_with("http://127.0.0.1"),
        "AWS_ENDPOINT_URL={endpoint} is not the test bed's moto"
    );
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await)
}
