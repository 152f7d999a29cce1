//! `lifecycle`: checks its configuration and reads lifecycle messages.
//!
//! Until the drain is built (see the processor issue) the binary only validates its
//! configuration and triages message bodies given on standard input, one JSON body per
//! line, printing what it would do with each: handy to check a captured message by hand.

use std::io::BufRead;
use std::process::ExitCode;

use lifecycle::config::Config;
use lifecycle::triage::Triage;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("lifecycle: {error}");
            return ExitCode::from(2);
        }
    };
    let mut rejected = false;
    for (index, line) in std::io::stdin().lock().lines().enumerate() {
        let Ok(line) = line else {
            eprintln!("lifecycle: standard input is not readable text");
            return ExitCode::from(2);
        };
        if line.trim().is_empty() {
            continue;
        }
        let triage = Triage::of_body(line.as_bytes(), &config);
        triage.log(&format!("stdin:{}", index + 1), &line);
        rejected |= matches!(triage, Triage::Reject(_));
    }
    if rejected {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
