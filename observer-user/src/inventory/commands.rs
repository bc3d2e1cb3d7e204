//! The inventory's command-line edge: `observer inventory`, `observer openapi`, `observer diff`,
//! and the inventory analyzer `run` and `replay` add to their pipeline.
//!
//! The only place in the inventory that uses `anyhow`: errors here end the command with a
//! message, so their context is all that matters.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context};

use super::{diff, openapi, spec::ApiSpec, view, Inventory, SpecBinding};
use crate::{
    cli::{
        DiffArgs, DiffFormat, InventoryArgs, InventoryCommandArgs, InventoryFormat, OpenapiArgs,
        OpenapiFormat,
    },
    state::{State, DATABASE_FILE},
};

/// Exit status of `observer diff` when shadow or zombie endpoints were found (1 is an error).
pub const DIFF_GATE_EXIT: u8 = 2;

/// The inventory for `run` (persisted in `--state-dir`, or `default_dir`) or `replay` (in
/// memory unless `--state-dir` is given: `default_dir` is `None`), with the `--spec`s loaded.
pub fn inventory_analyzer(
    args: &InventoryArgs,
    default_dir: Option<&Path>,
) -> anyhow::Result<Inventory> {
    let dir: Option<PathBuf> = args
        .state_dir
        .clone()
        .or_else(|| default_dir.map(Path::to_path_buf));
    let inventory = match dir {
        Some(dir) => {
            let state = State::open(&dir)?;
            Inventory::open(state)
                .with_context(|| format!("cannot load the inventory from {}", dir.display()))?
        }
        None => Inventory::in_memory(),
    };
    let mut specs = Vec::new();
    for spec in &args.spec {
        let (service, file) = match spec.split_once('=') {
            Some((service, file)) if !Path::new(spec).exists() => (Some(service.to_string()), file),
            _ => (None, spec.as_str()),
        };
        let loaded = ApiSpec::load(Path::new(file))?;
        tracing::info!(
            "spec {file}: {} operations, drift reported live{}",
            loaded.operations.len(),
            service
                .as_ref()
                .map(|s| format!(" for service {s}"))
                .unwrap_or_default()
        );
        specs.push(SpecBinding {
            service,
            spec: loaded,
        });
    }
    Ok(inventory.with_specs(specs).with_routes(args.routes.clone()))
}

/// Open what `observer run` wrote, refusing plainly when there is nothing there.
fn load(dir: &Path) -> anyhow::Result<Inventory> {
    if !dir.join(DATABASE_FILE).exists() {
        bail!(
            "no inventory in {} (run `observer run`, or `observer replay FILE --state-dir {}`, \
             first; or point --state-dir at the right place)",
            dir.display(),
            dir.display()
        );
    }
    let state = State::open(dir)?;
    Ok(Inventory::open(state)?)
}

fn write_out(text: &str, output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut stdout = io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            Ok(stdout.flush()?)
        }
    }
}

/// `observer inventory`.
pub fn inventory(args: &InventoryCommandArgs) -> anyhow::Result<ExitCode> {
    let inventory = load(&args.state.state_dir)?;
    let services = match &args.service {
        Some(_) => inventory.select(args.service.as_deref())?,
        None => inventory.services().iter().collect(),
    };
    let view = view::view(services);
    let text = match args.format {
        InventoryFormat::Table => view.to_table(),
        InventoryFormat::Json => serde_json::to_string_pretty(&view)? + "\n",
    };
    write_out(&text, None)?;
    Ok(ExitCode::SUCCESS)
}

/// `observer openapi`.
pub fn openapi(args: &OpenapiArgs) -> anyhow::Result<ExitCode> {
    let inventory = load(&args.state.state_dir)?;
    let services = inventory.select(args.service.as_deref())?;
    let [service] = services.as_slice() else {
        let names: Vec<String> = services.iter().map(|s| s.name()).collect();
        return Err(super::InventoryError::AmbiguousService {
            count: names.len(),
            known: names.join(", "),
        }
        .into());
    };
    let document = openapi::document(service);
    let text = match args.format {
        OpenapiFormat::Json => serde_json::to_string_pretty(&document)? + "\n",
        OpenapiFormat::Yaml => serde_norway::to_string(&document)?,
    };
    write_out(&text, args.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// `observer diff`.
pub fn diff(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let spec = ApiSpec::load(&args.spec)?;
    let inventory = load(&args.state.state_dir)?;
    let services = match &args.service {
        Some(name) => inventory.select(Some(name))?,
        None => diff::services_for(&spec, inventory.services()),
    };
    let report = diff::diff(&spec, &services);
    let text = match args.format {
        DiffFormat::Text => report.to_text(),
        DiffFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    write_out(&text, None)?;
    Ok(if report.gate_failed() {
        ExitCode::from(DIFF_GATE_EXIT)
    } else {
        ExitCode::SUCCESS
    })
}
