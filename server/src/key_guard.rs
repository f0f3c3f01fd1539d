//! Throttling of master-key guessing (review part 3, R9), shared by the REST authentication (`crate::auth`)
//! and the console's sign-in: wrong master keys are counted per address and in all, in this instance's memory.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use crate::error::AppError;

/// Wrong master keys within [`GUESS_WINDOW`] after which an address is refused (429) until the window frees.
pub const MAX_GUESSES_PER_ADDRESS: usize = 10;
/// Wrong master keys within [`GUESS_WINDOW`] from all addresses together after which every address that has
/// guessed wrong at all is refused (an address with no wrong guess, the operator's, still gets through).
pub const MAX_GUESSES_OVERALL: usize = 200;
pub const GUESS_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Throttles master-key guessing at the REST API and the console's sign-in alike (review part 3, R9): wrong
/// master keys are counted per address and in all, in this instance's memory.
#[derive(Debug, Default)]
pub struct MasterKeyGuard {
    /// Recent wrong guesses per address, and all of them.
    failures: std::sync::Mutex<(HashMap<IpAddr, Guesses>, Guesses)>,
}

type Guesses = VecDeque<Instant>;

impl MasterKeyGuard {
    /// `Err(seconds)` when `ip` may not try a master key now: the seconds until it may.
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        let Some(ip) = ip else { return Ok(()) };
        let mut guard = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (per_address, overall) = &mut *guard;
        while overall.front().is_some_and(|t| t.elapsed() >= GUESS_WINDOW) {
            overall.pop_front();
        }
        let Some(times) = per_address.get_mut(&ip) else {
            return Ok(());
        };
        while times.front().is_some_and(|t| t.elapsed() >= GUESS_WINDOW) {
            times.pop_front();
        }
        let Some(oldest) = times.front().copied() else {
            per_address.remove(&ip);
            return Ok(());
        };
        if times.len() >= MAX_GUESSES_PER_ADDRESS || overall.len() >= MAX_GUESSES_OVERALL {
            let wait = GUESS_WINDOW.saturating_sub(oldest.elapsed());
            return Err(wait.as_secs() + 1);
        }
        Ok(())
    }

    /// A wrong master key from `ip`.
    pub fn record(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        let mut guard = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (per_address, overall) = &mut *guard;
        if per_address.len() > 100_000 {
            per_address.retain(|_, t| t.back().is_some_and(|t| t.elapsed() < GUESS_WINDOW));
        }
        let times = per_address.entry(ip).or_default();
        times.push_back(Instant::now());
        while times.len() > MAX_GUESSES_PER_ADDRESS {
            times.pop_front();
        }
        overall.push_back(Instant::now());
        while overall.len() > MAX_GUESSES_OVERALL {
            overall.pop_front();
        }
    }

    /// The 429 a refused attempt gets.
    pub fn refusal(retry_after_secs: u64) -> AppError {
        AppError::rate_limited(
            crate::error::codes::TOO_MANY_REQUESTS,
            "Too many wrong master keys from this address; try again later.",
            retry_after_secs,
        )
    }
}
