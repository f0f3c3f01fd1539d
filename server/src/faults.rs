//! Fault mode: fail a share of requests on purpose so clients' recovery can be tested.
//!
//! The decision is taken before the request reaches its handler, so a faulted request (5xx, 429, timeout,
//! drop) is never applied and a client's retry cannot duplicate it. The opt-in `applied-then-dropped` kind
//! is the exception: it runs the handler, then closes the connection without answering.

use std::sync::Mutex;

use rand::Rng;

use crate::config::{FaultConfig, FaultKind};

#[derive(Debug)]
pub struct Faults {
    config: Mutex<FaultConfig>,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        Faults {
            config: Mutex::new(config),
        }
    }

    pub fn set(&self, config: FaultConfig) {
        if let Ok(mut c) = self.config.lock() {
            *c = config;
        }
    }

    pub fn get(&self) -> FaultConfig {
        self.config.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Picks the fault for a request to `path`, if any; `Some` consumes one of `max_faults`.
    pub fn decide(&self, path: &str) -> Option<(FaultKind, u64)> {
        if path.starts_with("/__admin") {
            return None;
        }
        let mut config = self.config.lock().ok()?;
        if config.is_off() {
            return None;
        }
        if !config.paths.is_empty() && !config.paths.iter().any(|p| path.starts_with(p.as_str())) {
            return None;
        }
        let mut rng = rand::rng();
        if config.rate < 1.0 && rng.random::<f64>() >= config.rate {
            return None;
        }
        let kind = config.kinds[rng.random_range(0..config.kinds.len())];
        if let Some(left) = config.max_faults.as_mut() {
            *left = left.saturating_sub(1);
        }
        Some((kind, config.delay_ms))
    }
}
