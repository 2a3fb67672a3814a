//! Failed-login bookkeeping, in memory: per account (lock after N failures in a row) and per
//! source address (block after M failures within the lock period). A restart forgets it,
//! which costs an attacker nothing they could not get by waiting.

use crate::AuthError;
use civia_config::AuthConfig;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Throttle {
    accounts: HashMap<String, Failures>,
    addresses: HashMap<IpAddr, Failures>,
}

struct Failures {
    count: u32,
    first: Instant,
    until: Option<Instant>,
}

/// Entries kept before expired ones are swept (bounds memory under a spray of names).
const SWEEP_ABOVE: usize = 10_000;

fn secs_left(until: Instant, now: Instant) -> u64 {
    until.saturating_duration_since(now).as_secs().max(1)
}

impl Throttle {
    /// Refuses at once when the account is locked or the address blocked.
    pub(crate) fn check(
        &mut self,
        account: &str,
        addr: IpAddr,
        cfg: &AuthConfig,
    ) -> Result<(), AuthError> {
        let now = Instant::now();
        let period = Duration::from_secs(cfg.lockout_secs);
        if let Some(f) = self.addresses.get(&addr) {
            if now.duration_since(f.first) >= period {
                self.addresses.remove(&addr);
            } else if let Some(until) = f.until {
                return Err(AuthError::AddressBlocked {
                    retry_after: secs_left(until, now),
                });
            }
        }
        if let Some(f) = self.accounts.get(account) {
            match f.until {
                Some(until) if until > now => {
                    return Err(AuthError::AccountLocked {
                        retry_after: secs_left(until, now),
                    })
                }
                // The lock is over: a fresh start.
                Some(_) => {
                    self.accounts.remove(account);
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Records a failure; true when it locked the account.
    pub(crate) fn failed(&mut self, account: &str, addr: IpAddr, cfg: &AuthConfig) -> bool {
        let now = Instant::now();
        let period = Duration::from_secs(cfg.lockout_secs);
        if self.accounts.len() + self.addresses.len() > SWEEP_ABOVE {
            self.accounts.retain(|_, f| {
                f.until
                    .map_or(now.duration_since(f.first) < period, |u| u > now)
            });
            self.addresses
                .retain(|_, f| now.duration_since(f.first) < period);
        }
        let a = self.addresses.entry(addr).or_insert(Failures {
            count: 0,
            first: now,
            until: None,
        });
        a.count += 1;
        if a.count >= cfg.address_failures && a.until.is_none() {
            a.until = Some(a.first + period);
            log::warn!(
                "address {addr} blocked from logging in after {} failures",
                a.count
            );
        }
        let f = self
            .accounts
            .entry(account.to_string())
            .or_insert(Failures {
                count: 0,
                first: now,
                until: None,
            });
        f.count += 1;
        if f.count >= cfg.lockout_failures && f.until.is_none() {
            f.until = Some(now + period);
            return true;
        }
        false
    }

    /// A success clears the account's failures in a row (not the address's).
    pub(crate) fn succeeded(&mut self, account: &str) {
        self.accounts.remove(account);
    }
}
