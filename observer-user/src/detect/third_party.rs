//! Unsafe consumption of APIs (API10): this host calling a third-party API it never called
//! before.
//!
//! Client-side calls (the observed process made them) to services not on this host are the
//! host's dependencies. Which process called which host is learnt during the agent's learning
//! period and persisted; afterwards a new (process, host) pair is reported once and then
//! remembered: a service that starts talking to an unknown host is how exfiltration, a
//! compromised dependency or an unreviewed integration first shows.

use std::collections::BTreeSet;

use super::{
    kind::Kind,
    report::{Alert, Scope},
};
use crate::{
    inventory::service::{host_header, host_name},
    model::ApiCall,
};

/// (process, host) pairs remembered; past this, new pairs are neither learnt nor reported.
pub const MAX_THIRD_PARTY_PAIRS: usize = 10_000;

/// The third-party APIs each process has called.
#[derive(Default)]
pub struct ThirdParties {
    known: BTreeSet<String>,
    /// Pairs learnt since the last write.
    new: Vec<String>,
    pub capped: u64,
}

impl ThirdParties {
    pub fn load(pairs: impl IntoIterator<Item = String>) -> ThirdParties {
        ThirdParties {
            known: pairs.into_iter().take(MAX_THIRD_PARTY_PAIRS).collect(),
            ..ThirdParties::default()
        }
    }

    /// The host a client-side call went to: its `Host` (without the port), else the
    /// server's address.
    pub fn host(call: &ApiCall) -> String {
        match host_header(call) {
            Some(host) => host_name(host),
            None => call.server_address.clone().unwrap_or_default(),
        }
    }

    /// Note `process` calling `host`; an alert when that is new and the agent is past learning.
    pub fn check(
        &mut self,
        process: &str,
        host: &str,
        learning: bool,
        call: &ApiCall,
    ) -> Option<Alert> {
        let key = format!("{process}|{host}");
        if self.known.contains(&key) {
            return None;
        }
        if self.known.len() >= MAX_THIRD_PARTY_PAIRS {
            self.capped += 1;
            return None;
        }
        self.known.insert(key.clone());
        self.new.push(key);
        if learning {
            return None;
        }
        let reason = format!(
            "{process} called {host} for the first time ({} {}): a new third-party dependency \
             whose answers the service now consumes",
            call.method.as_deref().unwrap_or("?"),
            call.path.as_deref().unwrap_or("?"),
        );
        Some(
            Alert::new(Kind::NewThirdPartyApi, "new_api", reason, Scope::Principal).fact(
                "header",
                Some("host"),
                host.to_string(),
            ),
        )
    }

    /// Pairs learnt since the last call, to persist.
    pub fn take_new(&mut self) -> Vec<String> {
        std::mem::take(&mut self.new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Role;

    #[test]
    fn new_pairs_after_learning_are_reported_once() {
        let mut call = crate::inventory::tests::call("POST", "/v1/charges", 200);
        call.role = Some(Role::Client);
        call.request_headers.insert("host", "API.Stripe.com:443");
        assert_eq!(ThirdParties::host(&call), "api.stripe.com");
        let mut parties = ThirdParties::default();
        assert!(parties
            .check("billing@host", "api.stripe.com", true, &call)
            .is_none());
        assert!(parties
            .check("billing@host", "api.stripe.com", false, &call)
            .is_none());
        let alert = parties
            .check("billing@host", "exfil.example", false, &call)
            .expect("new host");
        assert!(alert.reason.contains("exfil.example"), "{}", alert.reason);
        assert!(parties
            .check("billing@host", "exfil.example", false, &call)
            .is_none());
        assert_eq!(parties.take_new().len(), 2);
        let reloaded = ThirdParties::load(["billing@host|exfil.example".to_string()]);
        assert!(reloaded.known.contains("billing@host|exfil.example"));
    }
}
