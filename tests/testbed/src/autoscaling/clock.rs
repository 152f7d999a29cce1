//! Scaled time: the API speaks in AWS seconds (a heartbeat timeout of 30 to 7200 s), the test
//! bed waits `1 / scale` of that in real time. With a scale of 60, a one-hour heartbeat
//! timeout passes in a minute. Every rule keeps its shape; only the unit shrinks.

use std::time::Duration;

/// The time scale of one emulator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    scale: f64,
}

impl Clock {
    /// A clock where `scale` API seconds pass per real second (1 for real time).
    pub fn new(scale: f64) -> Self {
        Self {
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                1.0
            },
        }
    }

    /// The scale.
    pub fn scale(self) -> f64 {
        self.scale
    }

    /// The real duration of `api_secs` API seconds.
    pub fn real(self, api_secs: u32) -> Duration {
        Duration::from_secs_f64(f64::from(api_secs) / self.scale)
    }

    /// The API seconds in a real duration.
    pub fn api_secs(self, real: Duration) -> u64 {
        (real.as_secs_f64() * self.scale) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_passes_in_a_minute_at_scale_sixty_and_back() {
        let clock = Clock::new(60.0);
        assert_eq!(clock.real(3600), Duration::from_secs(60));
        assert_eq!(clock.api_secs(Duration::from_secs(60)), 3600);
    }

    #[test]
    fn a_nonsensical_scale_means_real_time() {
        for scale in [0.0, -3.0, f64::NAN, f64::INFINITY] {
            assert_eq!(Clock::new(scale).real(30), Duration::from_secs(30));
        }
    }
}
