//! Admission of WebSockets and logins: sockets have a budget of their own under the server's connection cap, so
//! sockets (which live for hours) can never take the slots REST, the console and `/v1/route` need, optionally at
//! most so many per client address; and each client id logs in at a bounded rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a WebSocket was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every WebSocket slot is taken.
    Full { max: usize },
    /// The address holds its share already.
    Address { max: usize },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Full { max } => write!(
                f,
                "the server holds its {max} WebSocket connections already"
            ),
            Refused::Address { max } => {
                write!(
                    f,
                    "this address holds its {max} WebSocket connections already"
                )
            }
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// The WebSocket budget: a total and an optional per-address share.
#[derive(Debug, Clone)]
pub struct SocketBudget {
    max: usize,
    /// 0: no per-address limit (behind a proxy every socket comes from the proxy's address).
    max_per_address: usize,
    counts: Arc<Mutex<Counts>>,
}

/// One admitted socket: its slot is given back when this is dropped.
#[derive(Debug)]
pub struct Ticket {
    address: Option<IpAddr>,
    counts: Arc<Mutex<Counts>>,
}

impl SocketBudget {
    pub fn new(max: usize, max_per_address: usize) -> SocketBudget {
        SocketBudget {
            max: max.max(1),
            max_per_address,
            counts: Arc::default(),
        }
    }

    /// Takes a slot for a socket from `address`, or says why not.
    pub fn admit(&self, address: Option<IpAddr>) -> Result<Ticket, Refused> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.max {
            return Err(Refused::Full { max: self.max });
        }
        let address = address.filter(|_| self.max_per_address > 0);
        if let Some(ip) = address {
            let held = counts.per_address.entry(ip).or_default();
            if *held >= self.max_per_address {
                return Err(Refused::Address {
                    max: self.max_per_address,
                });
            }
            *held += 1;
        }
        counts.total += 1;
        Ok(Ticket {
            address,
            counts: self.counts.clone(),
        })
    }

    /// WebSockets admitted and still open.
    pub fn open(&self) -> usize {
        self.counts.lock().map(|c| c.total).unwrap_or(0)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.address {
            if let Some(held) = counts.per_address.get_mut(&ip) {
                *held -= 1;
                if *held == 0 {
                    counts.per_address.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_and_each_address_s_share_are_held_until_the_tickets_drop() {
        let budget = SocketBudget::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = budget.admit(Some(a)).unwrap();
        let _second = budget.admit(Some(a)).unwrap();
        assert_eq!(
            budget.admit(Some(a)).unwrap_err(),
            Refused::Address { max: 2 }
        );
        let _third = budget.admit(Some(b)).unwrap();
        assert_eq!(budget.admit(Some(b)).unwrap_err(), Refused::Full { max: 3 });
        drop(first);
        assert_eq!(budget.open(), 2);
        let _again = budget.admit(Some(a)).unwrap();
        assert_eq!(budget.open(), 3);
    }

    #[test]
    fn without_a_per_address_share_only_the_total_counts() {
        let budget = SocketBudget::new(2, 0);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let _one = budget.admit(Some(a)).unwrap();
        let _two = budget.admit(Some(a)).unwrap();
        assert_eq!(budget.admit(Some(a)).unwrap_err(), Refused::Full { max: 2 });
    }
}

/// Logins per client id on this instance: a token bucket per id ([`LOGIN_BURST`] at once, then `per_minute`).
/// The SDK logs in once per connection and reconnects with a backoff; a client logging in again and again
/// (each login reads its unread conversations and sends them) is refused until its bucket refills.
#[derive(Debug)]
pub struct LoginThrottle {
    per_second: f64,
    buckets: Mutex<HashMap<String, (f64, std::time::Instant)>>,
}

/// Logins a client id may make at once before the rate applies.
pub const LOGIN_BURST: f64 = 30.0;
/// Ids remembered before the full (idle) buckets are forgotten.
const MAX_REMEMBERED: usize = 100_000;

impl LoginThrottle {
    /// `per_minute` 0: no limit.
    pub fn new(per_minute: u32) -> LoginThrottle {
        LoginThrottle {
            per_second: f64::from(per_minute) / 60.0,
            buckets: Mutex::default(),
        }
    }

    /// Takes one login of `client`, or answers how long until the next one is allowed.
    pub fn take(&self, client: &str) -> Result<(), std::time::Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = std::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_REMEMBERED && !buckets.contains_key(client) {
            // A bucket that has refilled is the same as none.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * self.per_second < LOGIN_BURST
            });
        }
        let (tokens, at) = buckets
            .entry(client.to_string())
            .or_insert((LOGIN_BURST, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(LOGIN_BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(std::time::Duration::from_secs_f64(
                (1.0 - *tokens) / self.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod login_tests {
    use super::*;

    #[test]
    fn a_client_id_logs_in_its_burst_at_once_then_at_the_rate_and_others_are_not_affected() {
        let throttle = LoginThrottle::new(60);
        for _ in 0..30 {
            assert_eq!(Ok(()), throttle.take("bombed"));
        }
        let wait = throttle.take("bombed").unwrap_err();
        assert!(wait <= std::time::Duration::from_secs(1), "{wait:?}");
        assert_eq!(Ok(()), throttle.take("someone else"));
        let off = LoginThrottle::new(0);
        assert!((0..100).all(|_| off.take("x").is_ok()));
    }
}
