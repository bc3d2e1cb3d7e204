//! Clients the tests drive: curl, and small Python programs for what curl cannot do
//! (a connection driven request by request, pipelining).

use std::{process::Command, time::Duration};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::{
    process::{Finished, Spawned},
    programs::{python, require, CURL},
};

/// One client run: a few requests on loopback take milliseconds; 1 MiB over TLS a little more.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

const CLIENT_SCRIPT: &str = include_str!("python/client.py");
const PIPELINE_SCRIPT: &str = include_str!("python/pipeline.py");

/// Run curl with `args` (after `-sS`); fails if curl does. The result carries curl's pid.
pub fn curl(args: &[&str]) -> anyhow::Result<Finished> {
    let curl = require(CURL)?;
    let max_time = CLIENT_TIMEOUT.as_secs().to_string();
    Spawned::run(
        "curl",
        Command::new(curl)
            .args(["-sS", "--max-time", &max_time])
            .args(args),
        CLIENT_TIMEOUT + Duration::from_secs(1),
    )
}

/// `src/python/client.py`: one keep-alive connection, one GET per [`KeepAliveClient::get`].
pub struct KeepAliveClient {
    process: Spawned,
}

/// What the client got for one request.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub size: u64,
    /// The body's first bytes.
    pub head: String,
    /// The connection's local port (the same for every request of one client).
    pub local_port: u16,
    /// The OS thread (its tid) that made the request.
    pub thread: u32,
}

impl KeepAliveClient {
    /// Start the client for 127.0.0.1:`port`. It connects on its first request.
    pub fn start(port: u16, tls: bool) -> anyhow::Result<KeepAliveClient> {
        let python = python()?;
        let mut command = Command::new(&python.path);
        command.args(["-c", CLIENT_SCRIPT, "--port", &port.to_string()]);
        if tls {
            command.arg("--tls");
        }
        Ok(KeepAliveClient {
            process: Spawned::start("python client", &mut command)?,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// GET `path` on the client's connection and wait for the whole response.
    pub fn get(&mut self, path: &str) -> anyhow::Result<Response> {
        self.request(path)
    }

    /// GET `path` on the client's connection and read the response only well after its first
    /// bytes arrived (`@late` in the script), when the server has finished writing a response
    /// that fits the socket's buffers.
    pub fn get_late(&mut self, path: &str) -> anyhow::Result<Response> {
        self.request(&format!("@late {path}"))
    }

    /// GET `path` from a new thread, on a connection of its own; returns once that thread has
    /// exited.
    pub fn get_in_new_thread(&mut self, path: &str) -> anyhow::Result<Response> {
        self.request(&format!("@thread {path}"))
    }

    fn request(&mut self, line: &str) -> anyhow::Result<Response> {
        self.process.send_line(line)?;
        let line = self.process.next_line(CLIENT_TIMEOUT)?;
        let value: Value = serde_json::from_str(&line)
            .with_context(|| format!("the python client said {line:?}"))?;
        let number = |field: &str| {
            value
                .get(field)
                .and_then(Value::as_u64)
                .with_context(|| format!("no {field} in {line}"))
        };
        Ok(Response {
            status: u16::try_from(number("status")?)?,
            size: number("size")?,
            head: value
                .get("head")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            local_port: u16::try_from(number("local_port")?)?,
            thread: u32::try_from(number("thread")?)?,
        })
    }

    /// Close the connection and wait for the client to exit.
    pub fn finish(mut self) -> anyhow::Result<Finished> {
        self.process.close_stdin();
        let finished = self.process.wait(CLIENT_TIMEOUT)?;
        if !finished.status.success() {
            bail!(
                "the python client failed ({}): {}",
                finished.status,
                finished.stderr
            );
        }
        Ok(finished)
    }
}

/// What [`pipeline`] sent and got back.
#[derive(Debug)]
pub struct Pipelined {
    pub pid: u32,
    pub local_port: u16,
    /// Every byte the server answered, as text.
    pub received: String,
}

/// `src/python/pipeline.py`: GET every path in one write on one connection, read every answer.
pub fn pipeline(port: u16, paths: &[&str]) -> anyhow::Result<Pipelined> {
    pipeline_read_after(port, paths, Duration::ZERO)
}

/// [`pipeline`], reading the answers only `delay` after the requests were sent: by then the
/// server has answered and closed its end (the last request asks it to).
pub fn pipeline_read_after(
    port: u16,
    paths: &[&str],
    delay: Duration,
) -> anyhow::Result<Pipelined> {
    let python = python()?;
    let finished = Spawned::run(
        "python pipelining client",
        Command::new(&python.path)
            .args(["-c", PIPELINE_SCRIPT, "--port", &port.to_string()])
            .args(["--read-after", &delay.as_secs_f64().to_string()])
            .args(paths),
        CLIENT_TIMEOUT + delay,
    )?;
    let (first, received) = finished
        .stdout
        .split_once('\n')
        .unwrap_or((&finished.stdout, ""));
    let local_port = first
        .strip_prefix("LOCAL_PORT ")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("the pipelining client said {first:?} instead of its port"))?;
    Ok(Pipelined {
        pid: finished.pid,
        local_port,
        received: received.to_string(),
    })
}
