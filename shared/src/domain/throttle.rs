//! The limit on password guesses, in two tiers so that one attacker cannot
//! lock everyone out, and checked before any hashing:
//!
//! - per link and client network (IPv4 /32, IPv6 /64): a few free attempts,
//!   then an exponentially growing wait between attempts;
//! - per link: a budget of attempts per hour, whoever makes them.
//!
//! Every attempt is counted before the password is checked (a correct one
//! clears the network's bucket), through a compare-and-set on the store, so
//! concurrent guesses cannot slip past the count.

use super::model::ThrottleState;
use super::{DomainError, DomainResult};
use crate::store::{StoreError, ThrottleStore};
use chrono::{DateTime, Duration, Utc};
use std::net::IpAddr;

/// A rule for one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `free` attempts, then each one waits 2^k seconds (k = 0, 1, ...), at most `max_wait`.
    Backoff { free: u32, max_wait_secs: i64 },
    /// At most `attempts` in each window of `window_secs`.
    Budget { attempts: u32, window_secs: i64 },
}

/// The rules publinks applies to link passwords.
#[derive(Clone, Copy, Debug)]
pub struct GuessLimits {
    pub per_network: Rule,
    pub per_link: Rule,
}

impl Default for GuessLimits {
    fn default() -> Self {
        GuessLimits {
            per_network: Rule::Backoff { free: 5, max_wait_secs: 3600 },
            per_link: Rule::Budget { attempts: 100, window_secs: 3600 },
        }
    }
}

/// The client network a guess comes from: an IPv4 address, or an IPv6 /64.
pub fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The state after one more attempt at `now`, or when to come back.
pub fn attempt(rule: Rule, state: &ThrottleState, now: DateTime<Utc>) -> Result<ThrottleState, DateTime<Utc>> {
    match rule {
        Rule::Backoff { free, max_wait_secs } => {
            if let Some(until) = state.blocked_until
                && until > now
            {
                return Err(until);
            }
            let attempts = state.attempts + 1;
            let blocked_until = (attempts >= free).then(|| {
                let exponent = (attempts - free).min(30);
                now + Duration::seconds((1i64 << exponent).min(max_wait_secs))
            });
            Ok(ThrottleState {
                attempts,
                window_start: state.window_start.or(Some(now)),
                blocked_until,
                ..state.clone()
            })
        }
        Rule::Budget { attempts: budget, window_secs } => {
            let window = Duration::seconds(window_secs);
            let (start, used) = match state.window_start {
                Some(start) if start + window > now => (start, state.attempts),
                _ => (now, 0),
            };
            if used >= budget {
                return Err(start + window);
            }
            Ok(ThrottleState { attempts: used + 1, window_start: Some(start), blocked_until: None, ..state.clone() })
        }
    }
}

/// How long a bucket is worth keeping after a change.
fn keep_for(rule: Rule) -> Duration {
    match rule {
        Rule::Backoff { max_wait_secs, .. } => Duration::seconds(max_wait_secs * 24),
        Rule::Budget { window_secs, .. } => Duration::seconds(window_secs * 2),
    }
}

/// Counts one attempt in bucket `key`, or refuses it with `Throttled`. A lost
/// race counts as a refusal: under contention we err on the side of refusing.
pub async fn take(store: &dyn ThrottleStore, key: &str, rule: Rule, now: DateTime<Utc>) -> DomainResult<()> {
    let state = store.throttle_state(key).await?.unwrap_or_default();
    let next = attempt(rule, &state, now).map_err(|until| throttled(until, now))?;
    match store.put_throttle_state(key, &next, now + keep_for(rule)).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(DomainError::Throttled { retry_after: 1 }),
        Err(e) => Err(e.into()),
    }
}

/// Clears a bucket after a correct password.
pub async fn clear(store: &dyn ThrottleStore, key: &str, rule: Rule, now: DateTime<Utc>) -> DomainResult<()> {
    if let Some(state) = store.throttle_state(key).await? {
        let cleared = ThrottleState { attempts: 0, window_start: None, blocked_until: None, revision: state.revision };
        match store.put_throttle_state(key, &cleared, now + keep_for(rule)).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn throttled(until: DateTime<Utc>, now: DateTime<Utc>) -> DomainError {
    let millis = (until - now).num_milliseconds().max(1);
    DomainError::Throttled { retry_after: ((millis + 999) / 1000) as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_gives_free_attempts_then_doubling_waits() {
        let rule = Rule::Backoff { free: 3, max_wait_secs: 10 };
        let mut now = Utc::now();
        let mut state = ThrottleState::default();
        let mut waits = Vec::new();
        for _ in 0..8 {
            state = match attempt(rule, &state, now) {
                Ok(s) => s,
                Err(until) => {
                    now = until;
                    attempt(rule, &state, now).unwrap()
                }
            };
            waits.push(state.blocked_until.map(|u| (u - now).num_seconds()));
        }
        assert_eq!(waits, [None, None, Some(1), Some(2), Some(4), Some(8), Some(10), Some(10)]);
        assert!(attempt(rule, &state, now).is_err(), "no attempt during a wait");
    }

    #[test]
    fn a_budget_refills_each_window() {
        let rule = Rule::Budget { attempts: 2, window_secs: 60 };
        let now = Utc::now();
        let s1 = attempt(rule, &ThrottleState::default(), now).unwrap();
        let s2 = attempt(rule, &s1, now).unwrap();
        assert_eq!(attempt(rule, &s2, now + Duration::seconds(59)), Err(now + Duration::seconds(60)));
        assert_eq!(attempt(rule, &s2, now + Duration::seconds(60)).unwrap().attempts, 1);
    }

    #[test]
    fn networks_are_addresses_or_ipv6_slash_64() {
        assert_eq!(network_of("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(network_of("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(network_of("2001:db8:1:2:bbbb::9".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(network_of("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }
}
