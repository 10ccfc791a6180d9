//! The run directory: what a simulation writes, and what a second invocation continues from.
//!
//! ```text
//! OUT/run.json                      format version and the run's identity (settings that fix results)
//! OUT/runs/<strategy>/seed-<s>.run  one run's saved round: its session state, history and the
//!                                   learner's checkpoint, in one file so they always agree
//!                                   (a stream policy's state is a crate::stream::StreamState)
//! OUT/full-pool/seed-<s>.json       accuracy of the learner fit on the whole labeled pool
//! OUT/curves.csv, summary.json, curves.svg   the reports
//! ```
//! Every file is written to a temporary name, flushed to disk and renamed, so an interrupted run
//! never leaves a half-written file, a state never refers to another round's checkpoint, and
//! nothing already stored is lost.

use crate::{ExperimentError, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "quarry-run";
/// 2: a run's round is one `.run` file (state and checkpoint together).
pub const VERSION: u32 = 2;
/// The first line of a `.run` file.
const RUN_MAGIC: &str = "quarry-run-state 1";

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

/// Write `bytes` to `path` through a temporary file, flushed to disk, and a rename: readers see
/// the old file or the new one, never a mixture.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().map_err(|e| ExperimentError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ExperimentError::io(path, e))
}

impl RunDir {
    /// Open `root` for the run `identity`: create it if absent or empty; continue it if it holds
    /// a run with the same identity; refuse (changing nothing) otherwise. The identity is
    /// whatever fixes a run's results (a simulation's [`crate::config::RunIdentity`]), compared
    /// field by field as JSON.
    pub fn open(root: &Path, identity: &impl Serialize) -> Result<RunDir> {
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

    fn run_path(&self, strategy: &str, seed: u64) -> PathBuf {
        self.root.join("runs").join(strategy).join(format!("seed-{seed}.run"))
    }

    /// The saved state and learner checkpoint of one run, if it was started before.
    pub fn load_run<T: DeserializeOwned>(&self, strategy: &str, seed: u64) -> Result<Option<(T, Vec<u8>)>> {
        let path = self.run_path(strategy, seed);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ExperimentError::io(&path, e)),
        };
        let bad = |why: &str| rundir_err(&path, format!("unreadable run state ({why}); delete it to redo this run"));
        let mut lines = bytes.splitn(3, |&b| b == b'\n');
        if lines.next() != Some(RUN_MAGIC.as_bytes()) {
            return Err(bad("not a quarry run state"));
        }
        let len: usize = lines
            .next()
            .and_then(|l| std::str::from_utf8(l).ok())
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| bad("no state length"))?;
        let rest = lines.next().unwrap_or_default();
        if rest.len() < len {
            return Err(bad("truncated"));
        }
        let state = serde_json::from_slice(&rest[..len]).map_err(|e| bad(&e.to_string()))?;
        Ok(Some((state, rest[len..].to_vec())))
    }

    /// Save a run's round: its state and the learner's checkpoint, as one file written atomically.
    pub fn save_run<T: Serialize>(&self, strategy: &str, seed: u64, state: &T, checkpoint: &[u8]) -> Result<()> {
        let path = self.run_path(strategy, seed);
        let dir = path.parent().expect("has a parent");
        std::fs::create_dir_all(dir).map_err(|e| ExperimentError::io(dir, e))?;
        let json = serde_json::to_vec(state).expect("serializes");
        let mut bytes = format!("{RUN_MAGIC}\n{}\n", json.len()).into_bytes();
        bytes.extend_from_slice(&json);
        bytes.extend_from_slice(checkpoint);
        write_atomic(&path, &bytes)
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
