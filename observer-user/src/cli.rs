//! The command line of the `observer` binary.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};
use observer_common::limits;

use crate::{
    capture::placement::PlacementPolicy,
    export::Format,
    model::DEFAULT_BODY_PREVIEW_BYTES,
    pipeline::{CallFilter, PipelineConfig},
    protocol::http1::ParserLimits,
    redact::{self, RedactionMode},
    state::DEFAULT_STATE_DIR,
};

/// observer: see every API call on this host, plaintext and TLS, without touching applications.
#[derive(Debug, Parser)]
#[command(name = "observer", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch this host live (needs root): one line per API call until Ctrl-C.
    Run(RunArgs),
    /// Run the pipeline over a recording made with `run --record` (no root needed).
    Replay(ReplayArgs),
    /// The API inventory: every service and endpoint seen, as a table or JSON.
    Inventory(InventoryCommandArgs),
    /// The inventory of one service as an OpenAPI 3.1 document.
    Openapi(OpenapiArgs),
    /// Compare the inventory with a spec (Swagger 2.0, OpenAPI 3.0/3.1): shadow, zombie,
    /// orphan and drift. Exits with status 2 when shadow or zombie endpoints are found.
    Diff(DiffArgs),
    /// TLS coverage: per process, executable and container, whether the agent sees inside its
    /// TLS, through which library, and when it does not, why.
    Coverage(CoverageArgs),
    /// Findings kept in the state directory: attacks and anomalies (with their OWASP API Top 10
    /// category) and sensitive data, and the sensitive types each endpoint accepts and returns.
    Findings(FindingsArgs),
}

#[derive(Debug, Args)]
pub struct FindingsArgs {
    #[command(flatten)]
    pub state: StateDirArgs,

    /// `table` for people, `json` for one JSON object per line.
    #[arg(long, value_enum, default_value_t = InventoryFormat::Table)]
    pub format: InventoryFormat,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub output: OutputArgs,

    /// Also write the raw event stream here, for `observer replay`. The recording holds payloads
    /// unredacted: it is created readable by its owner only.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Stop after this many seconds (default: run until Ctrl-C or SIGTERM).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,

    /// Bytes per data event (at most 16384).
    #[arg(long, value_name = "BYTES", default_value_t = limits::DEFAULT_CHUNK_SIZE)]
    pub chunk_size: u32,

    /// Bytes captured from one read or write at most; the rest is counted, not copied.
    #[arg(long, value_name = "BYTES", default_value_t = limits::DEFAULT_MAX_BYTES_PER_CALL)]
    pub max_bytes_per_call: u32,

    /// Size of the kernel ring buffer (a power of two).
    #[arg(long, value_name = "BYTES", default_value_t = limits::DEFAULT_RING_BUFFER_BYTES)]
    pub ring_buffer_size: u32,

    /// Wake the agent once a CPU has queued this many bytes of events since its last wake-up
    /// (default: a sixteenth of the ring buffer; 0: whenever the agent has caught up, the
    /// lowest latency and the highest cost). The agent also polls every 20 ms.
    #[arg(long, value_name = "BYTES")]
    pub wakeup_bytes: Option<u32>,

    /// Where TLS probes go: `auto` puts them on instructions the kernel emulates where the
    /// function's code allows, `symbol` always on the function's first instruction.
    #[arg(long, value_enum, default_value_t = PlacementPolicy::Auto)]
    pub tls_probe_placement: PlacementPolicy,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464): calls, bytes,
    /// connections, events received and lost by reason, parse errors, findings, sensitive data,
    /// inventory and TLS coverage counts. Off by default. Labels hold only the agent's own
    /// names, never anything from traffic.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub inventory: InventoryArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A recording made with `observer run --record FILE`, or a pcap/pcapng capture of
    /// plaintext HTTP (told apart by their first bytes).
    pub recording: PathBuf,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub inventory: InventoryArgs,
}

/// What to report and how: shared by `run` and `replay`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,

    /// Write API calls to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Only these processes (repeatable, or comma-separated).
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    pub pid: Vec<u32>,

    /// Only calls to or from these ports (repeatable, or comma-separated).
    #[arg(long, value_name = "PORT", value_delimiter = ',')]
    pub port: Vec<u16>,

    /// Only processes with this name (comm or executable name; repeatable, or comma-separated).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub comm: Vec<String>,

    /// Bytes of each body shown in the output.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BODY_PREVIEW_BYTES)]
    pub body_preview: usize,

    /// When stopping, also write the summary as JSON to this file (counters of everything seen
    /// and lost, per kind and reason).
    #[arg(long, value_name = "FILE")]
    pub stats_file: Option<PathBuf>,

    /// What to hide: `pii` (default) hides credentials and every personal or financial value
    /// the detectors recognise, `secrets` hides credentials only, `drop-bodies` also drops
    /// bodies, `off` shows full payloads as captured.
    #[arg(long, value_enum, default_value_t = RedactionMode::Pii)]
    pub redact: RedactionMode,

    /// The agent's config file (YAML): the sensitive-data policy (which types may appear
    /// where, severities, custom types) and attack detection's `detect:` section (learning
    /// period, thresholds, detectors on and off, suppressions). Without one, the built-in
    /// rules and defaults apply. `--policy` is the older name.
    #[arg(long, visible_alias = "policy", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl OutputArgs {
    pub fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig {
            parser_limits: ParserLimits {
                // The parser keeps at least what is shown and what redaction reads past it,
                // and the default for analysis.
                max_body_capture: (self
                    .body_preview
                    .saturating_add(redact::WINDOW_CONTEXT_BYTES))
                .max(ParserLimits::default().max_body_capture),
                ..ParserLimits::default()
            },
            body_preview_bytes: self.body_preview,
            redaction: self.redact,
            filter: CallFilter {
                pids: self.pid.clone(),
                ports: self.port.clone(),
                comms: self.comm.clone(),
            },
        }
    }
}

/// The inventory's options on `run` and `replay`.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Where the inventory (and other state) is kept. `run` defaults to /var/lib/observer;
    /// `replay` keeps its inventory in memory unless given one.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// A spec to report drift against live, as `[SERVICE=]FILE` (repeatable). Its paths also
    /// become route templates. Without SERVICE it applies to every local service.
    #[arg(long, value_name = "[SERVICE=]FILE")]
    pub spec: Vec<String>,

    /// A route template (`/users/{userId}/orders`) that wins over learned ones, like a spec's
    /// paths (repeatable): for APIs whose ids templating cannot tell from words.
    #[arg(long = "route", value_name = "TEMPLATE")]
    pub routes: Vec<String>,
}

/// The state directory of the commands that read it.
#[derive(Debug, Args)]
pub struct StateDirArgs {
    /// The state directory `observer run` (or `replay --state-dir`) wrote.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InventoryFormat {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct InventoryCommandArgs {
    #[command(flatten)]
    pub state: StateDirArgs,

    #[arg(long, value_enum, default_value_t = InventoryFormat::Table)]
    pub format: InventoryFormat,

    /// Only this service (its name, `host:port`, port, or process name).
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OpenapiFormat {
    #[default]
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct OpenapiArgs {
    #[command(flatten)]
    pub state: StateDirArgs,

    /// The service to describe (required when the inventory holds more than one).
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,

    #[arg(long, value_enum, default_value_t = OpenapiFormat::Yaml)]
    pub format: OpenapiFormat,

    /// Write the document here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DiffFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub state: StateDirArgs,

    /// The documented API: Swagger 2.0, OpenAPI 3.0 or 3.1, YAML or JSON.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,

    /// The service the spec documents (default: the local services it matches).
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,

    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

#[derive(Debug, Args)]
pub struct CoverageArgs {
    #[command(flatten)]
    pub state: StateDirArgs,

    #[arg(long, value_enum, default_value_t = InventoryFormat::Table)]
    pub format: InventoryFormat,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// Redaction reads past a cut preview to hide a value the cut runs through whole: the parser
    /// must keep those bytes whatever preview is asked for.
    #[test]
    fn the_parser_keeps_more_than_the_preview_shows() {
        #[derive(clap::Parser)]
        struct Output {
            #[command(flatten)]
            args: OutputArgs,
        }
        for preview in [0, 1024, 64 * 1024, usize::MAX] {
            let output = Output::parse_from(["observer", "--body-preview", &preview.to_string()]);
            let config = output.args.pipeline_config();
            assert_eq!(config.body_preview_bytes, preview);
            assert!(
                config.parser_limits.max_body_capture
                    >= preview.saturating_add(redact::WINDOW_CONTEXT_BYTES),
                "{preview}"
            );
        }
    }
}
