//! Services: which API a call belongs to.
//!
//! A service is an address and port that answers HTTP. Calls the agent sees served (role
//! `server`) and calls local processes make to local servers belong to a *local* service keyed
//! by the server's address and port; its processes and containers are recorded when the agent
//! sees the server side. Calls the host makes to anything else form *external* services
//! (third-party APIs), keyed by the name the client used (the `Host` header) and port, since one
//! name may resolve to many addresses. `Host` values are kept as an attribute of every service.

use std::{collections::BTreeSet, fmt, net::IpAddr};

use serde::{Deserialize, Serialize};

use crate::{conn::Role, model::ApiCall};

/// Distinct `Host` values, processes and containers kept per service.
pub const MAX_SERVICE_ATTRIBUTES: usize = 16;

/// Longest host name kept (DNS names are at most 253 bytes).
const MAX_HOST_LEN: usize = 253;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// Served on this host.
    Local,
    /// Called by this host: a third-party or remote API.
    External,
}

/// What identifies a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    pub kind: ServiceKind,
    /// The server's address (local), or the host name the client asked for (external).
    pub host: String,
    pub port: u16,
}

impl ServiceKey {
    /// The key as stored: `local|127.0.0.1|8080`.
    pub fn storage_key(&self) -> String {
        let kind = match self.kind {
            ServiceKind::Local => "local",
            ServiceKind::External => "external",
        };
        format!("{kind}|{}|{}", self.host, self.port)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Attributes of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceFacts {
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// Calls counted (each call once, from the server's side when the agent saw it).
    pub calls: u64,
    /// The agent saw this service's server process answer.
    pub server_seen: bool,
    /// Executable names of the server processes.
    #[serde(default)]
    pub processes: BTreeSet<String>,
    #[serde(default)]
    pub containers: BTreeSet<String>,
    /// `Host` header values clients used.
    #[serde(default)]
    pub hosts: BTreeSet<String>,
    /// Calls went over TLS.
    #[serde(default)]
    pub tls: bool,
}

impl ServiceFacts {
    /// Record the attributes a call shows.
    pub fn observe(&mut self, call: &ApiCall, at_ns: u64) {
        if self.first_seen_ns == 0 || at_ns < self.first_seen_ns {
            self.first_seen_ns = at_ns;
        }
        self.last_seen_ns = self.last_seen_ns.max(at_ns);
        self.tls |= call.tls;
        if let Some(host) = host_header(call) {
            insert_capped(&mut self.hosts, host);
        }
        if call.role == Some(Role::Server) {
            self.server_seen = true;
            if let Some(exe) = &call.executable_name {
                insert_capped(&mut self.processes, exe);
            }
            if let Some(container) = &call.container_id {
                insert_capped(&mut self.containers, container);
            }
        }
    }
}

fn insert_capped(set: &mut BTreeSet<String>, value: &str) {
    if set.len() < MAX_SERVICE_ATTRIBUTES && !set.contains(value) {
        set.insert(value.to_string());
    }
}

/// The `Host` header, if it is a plausible host name.
pub fn host_header(call: &ApiCall) -> Option<&str> {
    let host = call.request_headers.first("host")?.trim();
    (!host.is_empty()
        && host.len() <= MAX_HOST_LEN + 6
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b)))
    .then_some(host)
}

/// The host part of a `Host` value (`api.example.com:8443` → `api.example.com`), lowercased.
pub fn host_name(host: &str) -> String {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    name.to_ascii_lowercase()
}

/// What of a call decides its service.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub role: Option<Role>,
    pub server_address: Option<&'a str>,
    pub server_port: Option<u16>,
    /// The `Host` header.
    pub host: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn of(call: &'a ApiCall) -> Target<'a> {
        Target {
            role: call.role,
            server_address: call.server_address.as_deref(),
            server_port: call.server_port,
            host: host_header(call),
        }
    }
}

/// The service a call belongs to, or `None` when the call says too little (no server address
/// and no `Host`). `is_local` tells whether a local service with this address and port is
/// already known (a server on a non-loopback address of this host).
pub fn key_for(call: Target<'_>, is_local: impl Fn(&str, u16) -> bool) -> Option<ServiceKey> {
    let port = call.server_port.unwrap_or(0);
    let address = call.server_address;
    let local = match (call.role, address) {
        (Some(Role::Server), Some(_)) => true,
        (_, Some(address)) => {
            is_local(address, port) || address.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        (_, None) => false,
    };
    if local {
        return Some(ServiceKey {
            kind: ServiceKind::Local,
            host: address?.to_string(),
            port,
        });
    }
    let host = call
        .host
        .map(host_name)
        .or_else(|| address.map(str::to_string))?;
    Some(ServiceKey {
        kind: ServiceKind::External,
        host,
        port,
    })
}

/// A short human name: `python3.11@127.0.0.1:8000`, or `api.example.com:443`.
pub fn display_name(key: &ServiceKey, facts: &ServiceFacts) -> String {
    match (key.kind, facts.processes.iter().next()) {
        (ServiceKind::Local, Some(process)) => format!("{process}@{key}"),
        _ => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::tests::call;

    #[test]
    fn served_and_loopback_calls_are_local_others_external() {
        let mut served = call("GET", "/", 200);
        served.role = Some(Role::Server);
        served.server_address = Some("10.1.1.1".into());
        served.server_port = Some(8080);
        let key = key_for(Target::of(&served), |_, _| false).unwrap();
        assert_eq!(
            (key.kind, key.to_string()),
            (ServiceKind::Local, "10.1.1.1:8080".into())
        );

        let mut outbound = call("GET", "/", 200);
        outbound.role = Some(Role::Client);
        outbound.server_address = Some("140.82.112.6".into());
        outbound.server_port = Some(443);
        outbound
            .request_headers
            .insert("host", "API.GitHub.com:443");
        let key = key_for(Target::of(&outbound), |_, _| false).unwrap();
        assert_eq!(
            (key.kind, key.to_string()),
            (ServiceKind::External, "api.github.com:443".into())
        );
        // The same call to a server this host serves on that address is local.
        let key = key_for(Target::of(&outbound), |a, p| {
            a == "140.82.112.6" && p == 443
        })
        .unwrap();
        assert_eq!(key.kind, ServiceKind::Local);

        let mut loopback = call("GET", "/", 200);
        loopback.role = Some(Role::Client);
        loopback.server_address = Some("127.0.0.1".into());
        loopback.server_port = Some(5000);
        assert_eq!(
            key_for(Target::of(&loopback), |_, _| false).unwrap().kind,
            ServiceKind::Local
        );
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("a.example:80"), "a.example");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("Example.COM"), "example.com");
    }
}
