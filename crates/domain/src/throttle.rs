//! The limit on password guesses, in tiers chosen so that guessers pay and
//! the visitor who knows the password does not, all checked before any
//! hashing:
//!
//! - per link and client network (IPv4 /32, IPv6 /64): a few free attempts,
//!   then an exponentially growing wait between attempts. This tier refuses:
//!   it is the guesser's own network that waits.
//! - per link and password version, two token buckets of Argon2 evaluations
//!   shared by everyone: one for networks that have not guessed wrong on
//!   this link (their first attempt), one for networks that have. A bucket
//!   that is empty answers "come back when the next token is in" (seconds to
//!   two minutes), never "in an hour"; and networks that already failed
//!   cannot spend the tokens of those that have not, so a spread-out guesser
//!   cannot lock out a visitor who arrives with the right password. A new
//!   password starts with full buckets.
//!
//! Every attempt is counted before the password is checked (a correct one
//! clears the network's bucket), through a compare-and-set on the store, so
//! concurrent guesses cannot slip past the count. The bounds these rules
//! give are stated in the README ("Guessing").

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
    /// A token bucket: `burst` tokens, one more every `refill_secs`; an
    /// attempt takes one. The state holds the tokens in use (`attempts`) as
    /// of `window_start`.
    Tokens { burst: u32, refill_secs: i64 },
}

impl Rule {
    /// The most attempts this rule lets through in `secs` seconds from a
    /// fresh bucket, whoever makes them (`None`: no such bound, per network).
    pub fn most_in(self, secs: i64) -> Option<u64> {
        match self {
            Rule::Backoff { .. } => None,
            Rule::Budget { attempts, window_secs } => {
                Some(u64::from(attempts) * (secs.max(0) / window_secs + 1) as u64)
            }
            Rule::Tokens { burst, refill_secs } => Some(u64::from(burst) + (secs.max(0) / refill_secs) as u64),
        }
    }
}

/// The rules publinks applies to link passwords.
#[derive(Clone, Copy, Debug)]
pub struct GuessLimits {
    /// Per link and client network: refuses, with growing waits.
    pub per_network: Rule,
    /// Per link and password version, for networks with no failed attempt on
    /// the link (since their last success): their first guess.
    pub new_networks: Rule,
    /// Per link and password version, for networks that already failed on it.
    pub retrying_networks: Rule,
}

impl Default for GuessLimits {
    fn default() -> Self {
        GuessLimits {
            per_network: Rule::Backoff { free: 5, max_wait_secs: 3600 },
            new_networks: Rule::Tokens { burst: 40, refill_secs: 60 },
            retrying_networks: Rule::Tokens { burst: 10, refill_secs: 120 },
        }
    }
}

impl GuessLimits {
    /// The most password checks (Argon2 evaluations) one link and password
    /// version can be made to do in `secs` seconds, however many networks guess.
    pub fn most_hashes_in(&self, secs: i64) -> u64 {
        let lanes = [self.new_networks, self.retrying_networks];
        lanes.iter().map(|rule| rule.most_in(secs).unwrap_or(u64::MAX)).fold(0, u64::saturating_add)
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
        Rule::Tokens { burst, refill_secs } => {
            let (in_use, since) = tokens_in_use(burst, refill_secs, state, now);
            if in_use >= burst {
                return Err(since + Duration::seconds(refill_secs));
            }
            Ok(ThrottleState { attempts: in_use + 1, window_start: Some(since), blocked_until: None, ..state.clone() })
        }
    }
}

/// A token bucket's tokens in use at `now`, and the moment from which the
/// next token is counted.
fn tokens_in_use(burst: u32, refill_secs: i64, state: &ThrottleState, now: DateTime<Utc>) -> (u32, DateTime<Utc>) {
    let refill = Duration::seconds(refill_secs);
    match state.window_start {
        Some(since) if state.attempts > 0 && since <= now => {
            let back = ((now - since).num_milliseconds() / refill.num_milliseconds()).min(i64::from(burst)) as u32;
            if back >= state.attempts { (0, now) } else { (state.attempts - back, since + refill * back as i32) }
        }
        Some(since) if state.attempts > 0 => (state.attempts, since),
        _ => (0, now),
    }
}

/// Whether a bucket of `rule` would refuse an attempt at `now`.
pub fn exhausted(rule: Rule, state: &ThrottleState, now: DateTime<Utc>) -> bool {
    attempt(rule, state, now).is_err()
}

/// How long a bucket is worth keeping after a change.
fn keep_for(rule: Rule) -> Duration {
    match rule {
        Rule::Backoff { max_wait_secs, .. } => Duration::seconds(max_wait_secs * 24),
        Rule::Budget { window_secs, .. } => Duration::seconds(window_secs * 2),
        Rule::Tokens { burst, refill_secs } => Duration::seconds(refill_secs * i64::from(burst) + 60),
    }
}

/// An attempt counted in a bucket by [`take_counted`]: the state before it
/// (to tell a first attempt, or to give the attempt back) and the revision
/// it was stored at.
#[derive(Clone, Debug)]
pub struct Taken {
    pub before: ThrottleState,
    pub stored_revision: u64,
}

/// Counts one attempt in bucket `key`, or refuses it with `Throttled`. A lost
/// race counts as a refusal: under contention we err on the side of refusing.
pub async fn take(store: &dyn ThrottleStore, key: &str, rule: Rule, now: DateTime<Utc>) -> DomainResult<()> {
    take_counted(store, key, rule, now, 0).await.map(|_| ())
}

/// [`take`], telling what was counted; a lost race is tried again `retries`
/// times first (for buckets many networks share).
pub async fn take_counted(
    store: &dyn ThrottleStore,
    key: &str,
    rule: Rule,
    now: DateTime<Utc>,
    retries: u32,
) -> DomainResult<Taken> {
    for _ in 0..=retries {
        let state = store.throttle_state(key).await?.unwrap_or_default();
        let next = attempt(rule, &state, now).map_err(|until| throttled(until, now))?;
        match store.put_throttle_state(key, &next, now + keep_for(rule)).await {
            Ok(()) => return Ok(Taken { stored_revision: state.revision + 1, before: state }),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Throttled { retry_after: 1 })
}

/// Undoes an attempt counted by [`take_counted`], unless the bucket changed since
/// (then the attempt stays counted: refusing is the safe side).
pub async fn give_back(
    store: &dyn ThrottleStore,
    key: &str,
    rule: Rule,
    taken: &Taken,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let restored = ThrottleState { revision: taken.stored_revision, ..taken.before.clone() };
    match store.put_throttle_state(key, &restored, now + keep_for(rule)).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
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
    fn tokens_refill_one_at_a_time_and_never_beyond_the_burst() {
        let rule = Rule::Tokens { burst: 3, refill_secs: 10 };
        let t0 = Utc::now();
        let mut state = ThrottleState::default();
        for _ in 0..3 {
            state = attempt(rule, &state, t0).unwrap();
        }
        assert_eq!(attempt(rule, &state, t0 + Duration::seconds(9)), Err(t0 + Duration::seconds(10)));
        state = attempt(rule, &state, t0 + Duration::seconds(15)).unwrap();
        assert_eq!((state.attempts, state.window_start), (3, Some(t0 + Duration::seconds(10))), "one back at 10 s");
        assert_eq!(attempt(rule, &state, t0 + Duration::seconds(19)), Err(t0 + Duration::seconds(20)));
        assert!(exhausted(rule, &state, t0 + Duration::seconds(19)));
        let later = t0 + Duration::hours(5);
        let mut after_a_long_rest = state;
        for _ in 0..3 {
            after_a_long_rest = attempt(rule, &after_a_long_rest, later).unwrap();
        }
        assert!(exhausted(rule, &after_a_long_rest, later), "a rest refills the burst, no more");
        assert_eq!(rule.most_in(3600), Some(3 + 360));
    }

    #[test]
    fn networks_are_addresses_or_ipv6_slash_64() {
        assert_eq!(network_of("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(network_of("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(network_of("2001:db8:1:2:bbbb::9".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(network_of("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }
}
