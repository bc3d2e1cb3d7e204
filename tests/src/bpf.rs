//! What the kernel holds for the agent, as bpftool and tracefs show it: to prove that stopping
//! the agent leaves no program, link, map or uprobe behind.

use std::{collections::BTreeSet, fs, process::Command, time::Duration};

use anyhow::Context;
use serde_json::Value;

use crate::{
    process::Spawned,
    programs::{require, BPFTOOL},
};

/// One bpftool listing: it walks every object in the kernel, which takes well under a second.
const BPFTOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where uprobes made through tracefs are listed (aya uses it when the kernel lacks the uprobe
/// PMU; entries it makes there are named `aya_<pid>_...`).
pub const UPROBE_EVENTS: &str = "/sys/kernel/tracing/uprobe_events";

/// The agent's program names follow `<area>_<enter|exit>_<hook>`; these prefixes cover all of
/// them and are at most 15 bytes, so they still match where the kernel cut a name to its
/// 15-byte limit (bpftool shows the full name only when the program carries BTF).
const PROGRAM_PREFIXES: [&str; 10] = [
    "syscall_enter_",
    "syscall_exit_",
    "openssl_enter_",
    "boringssl_enter",
    "gnutls_enter_",
    "nss_enter_",
    "tls_exit_",
    "go_tls_",
    "process_exec",
    "process_exit",
];

/// Whether a program name is one of the agent's.
pub fn is_agent_program_name(name: &str) -> bool {
    PROGRAM_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub id: u64,
    pub name: String,
    pub kind: String,
    pub map_ids: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: u64,
    pub prog_id: Option<u64>,
    pub kind: String,
}

/// Every BPF program, link and map in the kernel at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub programs: Vec<Program>,
    pub links: Vec<Link>,
    pub map_ids: BTreeSet<u64>,
}

impl Snapshot {
    pub fn take() -> anyhow::Result<Snapshot> {
        let programs = bpftool(&["prog", "show"])?
            .iter()
            .map(|p| Program {
                id: p["id"].as_u64().unwrap_or_default(),
                name: p["name"].as_str().unwrap_or_default().to_string(),
                kind: p["type"].as_str().unwrap_or_default().to_string(),
                map_ids: p["map_ids"]
                    .as_array()
                    .map(|ids| ids.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default(),
            })
            .collect();
        let links = bpftool(&["link", "show"])?
            .iter()
            .map(|l| Link {
                id: l["id"].as_u64().unwrap_or_default(),
                prog_id: l["prog_id"].as_u64(),
                kind: l["type"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        let map_ids = bpftool(&["map", "show"])?
            .iter()
            .filter_map(|m| m["id"].as_u64())
            .collect();
        Ok(Snapshot {
            programs,
            links,
            map_ids,
        })
    }

    /// Programs named like the agent's that `before` did not have.
    pub fn new_agent_programs(&self, before: &Snapshot) -> Vec<Program> {
        let old: BTreeSet<u64> = before.programs.iter().map(|p| p.id).collect();
        self.programs
            .iter()
            .filter(|p| !old.contains(&p.id) && is_agent_program_name(&p.name))
            .cloned()
            .collect()
    }

    /// Links that run one of `programs`.
    pub fn links_to(&self, programs: &[Program]) -> Vec<Link> {
        let ids: BTreeSet<u64> = programs.iter().map(|p| p.id).collect();
        self.links
            .iter()
            .filter(|l| l.prog_id.is_some_and(|id| ids.contains(&id)))
            .cloned()
            .collect()
    }
}

/// The agent's map of TLS call arguments (`TLS_ARGS` in observer-ebpf's maps.rs), keyed by
/// the calling thread's `pid_tgid`.
const TLS_ARGS_MAP: &str = "TLS_ARGS";

/// The threads, as (process id, thread id), that hold an entry in the agent's map of TLS call
/// arguments now.
pub fn tls_call_threads() -> anyhow::Result<Vec<(u32, u32)>> {
    bpftool(&["map", "dump", "name", TLS_ARGS_MAP])?
        .iter()
        .map(|entry| {
            // Without BTF for the map, bpftool shows the key as its bytes: a little-endian u64.
            let bytes = entry["key"]
                .as_array()
                .context("a map entry without a key")?
                .iter()
                .map(|byte| {
                    let text = byte.as_str().unwrap_or_default().trim_start_matches("0x");
                    u8::from_str_radix(text, 16).with_context(|| format!("key byte {byte}"))
                })
                .collect::<anyhow::Result<Vec<u8>>>()?;
            let key: [u8; 8] = bytes
                .try_into()
                .map_err(|bytes| anyhow::anyhow!("a key of {bytes:?}, not 8 bytes"))?;
            let pid_tgid = u64::from_le_bytes(key);
            Ok(((pid_tgid >> 32) as u32, pid_tgid as u32))
        })
        .collect()
}

/// `bpftool -j <args>`, parsed.
fn bpftool(args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let bpftool = require(BPFTOOL)?;
    let finished = Spawned::run(
        "bpftool",
        Command::new(bpftool).arg("-j").args(args),
        BPFTOOL_TIMEOUT,
    )?;
    let value: Value = serde_json::from_str(finished.stdout.trim()).with_context(|| {
        format!(
            "bpftool -j {} printed no JSON: {}",
            args.join(" "),
            finished.stdout
        )
    })?;
    Ok(value.as_array().cloned().unwrap_or_default())
}

/// The uprobes defined through tracefs, one per line.
pub fn uprobe_events() -> anyhow::Result<BTreeSet<String>> {
    let text = fs::read_to_string(UPROBE_EVENTS)
        .with_context(|| format!("cannot read {UPROBE_EVENTS}"))?;
    Ok(text.lines().map(str::to_string).collect())
}
