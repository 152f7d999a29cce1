//! `bench-scale`: 50 terminations at once in the largest swarm this machine holds, under load
//! (see `scripts/bench-scale.sh` and [`e2e::scale`]). Prints the figures, writes
//! `target/bench/scale.json`, and fails when the budget is not held: all 50 completed, none
//! early, Auto Scaling calls within two a minute per waiting action.

use anyhow::{Result, ensure};

#[tokio::main]
async fn main() -> Result<()> {
    let started = std::time::Instant::now();
    let report = e2e::scale::run(&mut |line| {
        println!("[{:>5.0} s] {line}", started.elapsed().as_secs_f64());
    })
    .await?;
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::create_dir_all("target/bench")?;
    std::fs::write("target/bench/scale.json", &json)?;
    println!("{json}\nwrote target/bench/scale.json");
    ensure!(report.budget_held, "the budget was not held (see above)");
    Ok(())
}
