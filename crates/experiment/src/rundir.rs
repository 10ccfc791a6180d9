//! The run directory: what a simulation writes, and what a second invocation continues from.
//!
//! ```text
//! OUT/run.json                      format version and the run's identity (settings that fix results)
//! OUT/runs/<strategy>/seed-<s>.json pool state and history of one run, rewritten after every round
//! OUT/runs/<strategy>/seed-<s>.model the learner's checkpoint after that round
//!                                   (a stream policy's .json is a crate::stream::StreamState)
//! OUT/full-pool/seed-<s>.json       accuracy of the learner fit on the whole labeled pool
//! OUT/curves.csv, summary.json, curves.svg   the reports
//! ```
//! Every file is written to a temporary name and renamed, so an interrupted run never leaves a
//! half-written file and nothing already stored is lost.

use crate::active_loop::LoopState;
use crate::config::RunIdentity;
use crate::stream::StreamState;
use crate::{ExperimentError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "quarry-run";
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct RunHeader {
    format: String,
    version: u32,
    quarry: String,
    identity: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FullPoolResult {
    pub seed: u64,
    pub accuracy: f64,
    pub log_loss: f64,
    pub seconds: f64,
}

pub struct RunDir {
    root: PathBuf,
}

fn rundir_err(path: &Path, reason: impl Into<String>) -> ExperimentError {
    ExperimentError::RunDir { path: path.to_path_buf(), reason: reason.into() }
}

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, bytes).map_err(|e| ExperimentError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ExperimentError::io(path, e))
}

impl RunDir {
    /// Open `root` for the run `identity`: create it if absent or empty; continue it if it holds
    /// a run with the same identity; refuse (changing nothing) otherwise.
    pub fn open(root: &Path, identity: &RunIdentity) -> Result<RunDir> {
        let header_path = root.join("run.json");
        let wanted = serde_json::to_value(identity).expect("identity serializes");
        if root.exists() {
            if !root.is_dir() {
                return Err(rundir_err(root, "--out names a file, expected a run directory"));
            }
            if header_path.exists() {
                let text = std::fs::read_to_string(&header_path).map_err(|e| ExperimentError::io(&header_path, e))?;
                let header: RunHeader = serde_json::from_str(&text).map_err(|e| {
                    rundir_err(&header_path, format!("not a quarry run header ({e}); use a new --out"))
                })?;
                if header.format != FORMAT || header.version != VERSION {
                    return Err(rundir_err(
                        &header_path,
                        format!(
                            "run directory from an incompatible quarry version (format '{}' version {}, this quarry reads '{FORMAT}' version {VERSION}); use a new --out",
                            header.format, header.version
                        ),
                    ));
                }
                if header.identity != wanted {
                    let differs = differing_fields(&header.identity, &wanted);
                    return Err(rundir_err(
                        &header_path,
                        format!("holds a run with other settings ({}); use a new --out to keep both", differs.join(", ")),
                    ));
                }
                return Ok(RunDir { root: root.to_path_buf() });
            }
            let non_empty = std::fs::read_dir(root).map_err(|e| ExperimentError::io(root, e))?.next().is_some();
            if non_empty {
                return Err(rundir_err(root, "exists and is not a quarry run directory (no run.json); refusing to write into it"));
            }
        }
        std::fs::create_dir_all(root).map_err(|e| ExperimentError::io(root, e))?;
        let header = RunHeader {
            format: FORMAT.into(),
            version: VERSION,
            quarry: env!("CARGO_PKG_VERSION").into(),
            identity: wanted,
        };
        write_atomic(&header_path, serde_json::to_string_pretty(&header).expect("serializes").as_bytes())?;
        Ok(RunDir { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn run_paths(&self, strategy: &str, seed: u64) -> (PathBuf, PathBuf) {
        let dir = self.root.join("runs").join(strategy);
        (dir.join(format!("seed-{seed}.json")), dir.join(format!("seed-{seed}.model")))
    }

    /// The saved state and learner checkpoint of one run, if it was started before.
    pub fn load_run(&self, strategy: &str, seed: u64) -> Result<Option<(LoopState, Vec<u8>)>> {
        let (state_path, model_path) = self.run_paths(strategy, seed);
        if !state_path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&state_path).map_err(|e| ExperimentError::io(&state_path, e))?;
        let state: LoopState = serde_json::from_str(&text)
            .map_err(|e| rundir_err(&state_path, format!("unreadable run state ({e}); delete it to redo this run")))?;
        let model = std::fs::read(&model_path).map_err(|e| ExperimentError::io(&model_path, e))?;
        Ok(Some((state, model)))
    }

    /// Save a run after a round: the checkpoint first, then the state that refers to it.
    pub fn save_run(&self, strategy: &str, seed: u64, state: &LoopState, checkpoint: &[u8]) -> Result<()> {
        let (state_path, model_path) = self.run_paths(strategy, seed);
        let dir = state_path.parent().expect("has a parent");
        std::fs::create_dir_all(dir).map_err(|e| ExperimentError::io(dir, e))?;
        write_atomic(&model_path, checkpoint)?;
        write_atomic(&state_path, serde_json::to_string(state).expect("serializes").as_bytes())
    }

    /// The saved state and learner checkpoint of one stream run, if it was started before.
    pub fn load_stream_run(&self, policy: &str, seed: u64) -> Result<Option<(StreamState, Vec<u8>)>> {
        let (state_path, model_path) = self.run_paths(policy, seed);
        if !state_path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&state_path).map_err(|e| ExperimentError::io(&state_path, e))?;
        let state: StreamState = serde_json::from_str(&text)
            .map_err(|e| rundir_err(&state_path, format!("unreadable stream run state ({e}); delete it to redo this run")))?;
        let model = std::fs::read(&model_path).map_err(|e| ExperimentError::io(&model_path, e))?;
        Ok(Some((state, model)))
    }

    /// Save a stream run: the checkpoint first, then the state that refers to it.
    pub fn save_stream_run(&self, policy: &str, seed: u64, state: &StreamState, checkpoint: &[u8]) -> Result<()> {
        let (state_path, model_path) = self.run_paths(policy, seed);
        let dir = state_path.parent().expect("has a parent");
        std::fs::create_dir_all(dir).map_err(|e| ExperimentError::io(dir, e))?;
        write_atomic(&model_path, checkpoint)?;
        write_atomic(&state_path, serde_json::to_string(state).expect("serializes").as_bytes())
    }

    pub fn load_full_pool(&self, seed: u64) -> Result<Option<FullPoolResult>> {
        let path = self.root.join("full-pool").join(format!("seed-{seed}.json"));
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| ExperimentError::io(&path, e))?;
        serde_json::from_str(&text).map(Some).map_err(|e| rundir_err(&path, format!("unreadable ({e})")))
    }

    pub fn save_full_pool(&self, r: &FullPoolResult) -> Result<()> {
        let dir = self.root.join("full-pool");
        std::fs::create_dir_all(&dir).map_err(|e| ExperimentError::io(&dir, e))?;
        write_atomic(&dir.join(format!("seed-{}.json", r.seed)), serde_json::to_string_pretty(r).expect("serializes").as_bytes())
    }
}

fn differing_fields(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| format!("{k}: {} there, {} now", a.get(k).map_or("-".into(), |v| v.to_string()), b.get(k).map_or("-".into(), |v| v.to_string())))
                .collect()
        }
        _ => vec!["identity".into()],
    }
}
