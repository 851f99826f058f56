//! A training run's directory: its settings (`config.json`), its metrics log, its checkpoint
//! (weights, optimizer state and the bug pool) and the artifacts it found.

use super::{StepMetrics, TrainError, TrainSettings};
use crate::policy::model::{self, AdamW, PolicyNet};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The run's settings, written when it starts.
pub const CONFIG: &str = "config.json";
/// The metrics log, one [`StepMetrics`] a line.
pub const METRICS: &str = "metrics.jsonl";
/// The checkpoint directory.
pub const CHECKPOINT: &str = "checkpoint";
/// The weights inside a checkpoint.
pub const MODEL: &str = "model.safetensors";
/// The optimizer state inside a checkpoint.
pub(super) const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.json";

/// The checkpoint's bookkeeping besides the tensors.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct CheckpointState {
    /// Batches trained on.
    pub step: usize,
    /// Artifact directories of the bug pool, relative to the run directory, with projects.
    pub pool: Vec<(String, PathBuf)>,
}

/// A run directory, created for a new run or opened to resume one.
pub(super) struct RunDir {
    path: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_owned(),
        source,
    }
}

impl RunDir {
    /// A new run in `path`, with its settings written; refused when `path` holds a run.
    pub fn create(path: &Path, settings: &TrainSettings) -> Result<RunDir, TrainError> {
        let run = RunDir {
            path: path.to_owned(),
        };
        let used = std::fs::metadata(run.metrics()).is_ok_and(|m| m.len() > 0)
            || run.checkpoint().exists();
        if used {
            return Err(TrainError::RunExists {
                dir: path.to_owned(),
            });
        }
        std::fs::create_dir_all(path).map_err(io_err(path))?;
        let json = serde_json::to_string_pretty(settings).expect("settings serialize");
        std::fs::write(path.join(CONFIG), json).map_err(io_err(path))?;
        Ok(run)
    }

    /// The run in `path`, to resume: its weights and optimizer state go into `varmap` and
    /// `opt`; returns the checkpoint's state. Steps logged after the checkpoint are played
    /// again, so their metrics lines are dropped.
    pub fn resume(
        path: &Path,
        varmap: &candle_nn::VarMap,
        opt: &mut AdamW,
    ) -> Result<(RunDir, CheckpointState), TrainError> {
        RunDir::resume_with(path, |dir| {
            load_weights(varmap, &dir.join(MODEL))?;
            opt.load(&dir.join(OPTIMIZER))?;
            Ok(())
        })
    }

    /// [`RunDir::resume`] for any policy: `load` restores its state from the checkpoint
    /// directory.
    pub fn resume_with(
        path: &Path,
        load: impl FnOnce(&Path) -> Result<(), TrainError>,
    ) -> Result<(RunDir, CheckpointState), TrainError> {
        let run = RunDir {
            path: path.to_owned(),
        };
        let state_path = run.checkpoint().join(STATE);
        let text =
            std::fs::read_to_string(&state_path).map_err(|source| TrainError::NoCheckpoint {
                dir: path.to_owned(),
                source,
            })?;
        let state: CheckpointState =
            serde_json::from_str(&text).map_err(|source| TrainError::Parse {
                path: state_path,
                source,
            })?;
        load(&run.checkpoint())?;
        run.truncate_metrics(state.step)?;
        Ok((run, state))
    }

    fn truncate_metrics(&self, last_step: usize) -> Result<(), TrainError> {
        let path = self.metrics();
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let kept: String = text
            .lines()
            .filter(|l| serde_json::from_str::<StepMetrics>(l).is_ok_and(|m| m.step <= last_step))
            .map(|l| format!("{l}\n"))
            .collect();
        crate::fsutil::write_atomic(&path, kept.as_bytes()).map_err(io_err(&path))
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The metrics log's path.
    pub fn metrics(&self) -> PathBuf {
        self.path.join(METRICS)
    }

    /// The checkpoint directory.
    pub fn checkpoint(&self) -> PathBuf {
        self.path.join(CHECKPOINT)
    }

    /// The metrics log, opened to append.
    pub fn metrics_log(&self) -> Result<std::fs::File, TrainError> {
        let path = self.metrics();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))
    }

    /// Appends a step's metrics line to `log` (the metrics log [`RunDir::metrics_log`] opened).
    pub fn log_step(&self, log: &mut std::fs::File, m: &StepMetrics) -> Result<(), TrainError> {
        use std::io::Write;
        let line = serde_json::to_string(m).expect("metrics serialize");
        writeln!(log, "{line}").map_err(io_err(&self.metrics()))
    }

    /// Saves a checkpoint: written beside, then swapped in, so that a crash mid-save leaves
    /// the previous checkpoint whole.
    pub fn save_checkpoint(
        &self,
        varmap: &candle_nn::VarMap,
        opt: &AdamW,
        state: &CheckpointState,
    ) -> Result<(), TrainError> {
        self.save_checkpoint_with(state, |tmp| {
            varmap.save(tmp.join(MODEL))?;
            opt.save(&tmp.join(OPTIMIZER))?;
            Ok(())
        })
    }

    /// [`RunDir::save_checkpoint`] for any policy: `write` puts its state into the new
    /// checkpoint directory.
    pub fn save_checkpoint_with(
        &self,
        state: &CheckpointState,
        write: impl FnOnce(&Path) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        let dir = self.checkpoint();
        let tmp = dir.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        write(&tmp)?;
        let json = serde_json::to_string_pretty(state).expect("state serializes");
        std::fs::write(tmp.join(STATE), json).map_err(io_err(&tmp))?;
        let old = dir.with_extension("old");
        let _ = std::fs::remove_dir_all(&old);
        if dir.exists() {
            std::fs::rename(&dir, &old).map_err(io_err(&dir))?;
        }
        std::fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }
}

/// The settings of the run in `dir` (its `config.json`), to resume it.
pub fn load_config(dir: &Path) -> Result<TrainSettings, TrainError> {
    let path = dir.join(CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|source| TrainError::NoConfig {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| TrainError::Parse { path, source })
}

/// Loads the weights of a checkpoint (a run directory, its `checkpoint/`, or a
/// `model.safetensors`) onto the CPU; also returns the run's settings when found.
pub fn load_policy(path: &Path) -> Result<(PolicyNet, Option<TrainSettings>), TrainError> {
    let file = if path.is_file() {
        path.to_owned()
    } else if path.join(MODEL).is_file() {
        path.join(MODEL)
    } else {
        path.join(CHECKPOINT).join(MODEL)
    };
    if !file.is_file() {
        return Err(TrainError::NoPolicy {
            path: path.to_owned(),
        });
    }
    let settings = file
        .parent()
        .and_then(Path::parent)
        .and_then(|run| load_config(run).ok());
    let (varmap, _) = model::fresh(0, &candle_core::Device::Cpu)?;
    load_weights(&varmap, &file)?;
    Ok((model::frozen(&varmap)?, settings))
}

/// Loads `file` into `varmap`. A checkpoint of another network layout (written by an older
/// spar) is refused with what to do, rather than with the tensor library's message.
fn load_weights(varmap: &candle_nn::VarMap, file: &Path) -> Result<(), TrainError> {
    let saved = candle_core::safetensors::load(file, &candle_core::Device::Cpu)?;
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut missing: Vec<String> = data
        .keys()
        .filter(|n| !saved.contains_key(*n))
        .cloned()
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(TrainError::Layout {
            file: file.to_owned(),
            missing,
        });
    }
    for (name, var) in data.iter() {
        var.set(&saved[name].to_device(var.device())?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_checkpoint_of_an_older_layout_is_refused_with_what_to_do() {
        let dir = std::env::temp_dir().join(format!("spar-old-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (varmap, _) = model::fresh(0, &candle_core::Device::Cpu).unwrap();
        let tensors: HashMap<String, candle_core::Tensor> = {
            let data = varmap.data().lock().unwrap();
            data.iter()
                .filter(|(name, _)| !name.starts_with("evidence"))
                .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
                .collect()
        };
        let old = dir.join(MODEL);
        candle_core::safetensors::save(&tensors, &old).unwrap();
        let Err(err @ TrainError::Layout { .. }) = load_policy(&old) else {
            panic!("an older layout must be refused");
        };
        let message = err.to_string();
        assert!(message.contains("evidence.weight"), "{message}");
        assert!(message.contains("train a new run"), "{message}");
        varmap.save(&old).unwrap();
        assert!(load_policy(&old).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_new_run_refuses_a_used_directory_and_a_resumed_one_drops_replayed_metrics() {
        let dir = std::env::temp_dir().join(format!("spar-run-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = TrainSettings::default();
        let run = RunDir::create(&dir, &settings).unwrap();
        assert_eq!(load_config(&dir).unwrap().steps, settings.steps);
        let lines: String = (1..=4)
            .map(|step| {
                let m = StepMetrics {
                    step,
                    ..StepMetrics::default()
                };
                format!("{}\n", serde_json::to_string(&m).unwrap())
            })
            .collect();
        std::fs::write(run.metrics(), lines).unwrap();
        assert!(matches!(
            RunDir::create(&dir, &settings),
            Err(TrainError::RunExists { .. })
        ));
        let (varmap, _) = model::fresh(0, &candle_core::Device::Cpu).unwrap();
        let mut opt = AdamW::new(&varmap, 1e-2, 0.01).unwrap();
        assert!(matches!(
            RunDir::resume(&dir, &varmap, &mut opt),
            Err(TrainError::NoCheckpoint { .. })
        ));
        let state = CheckpointState {
            step: 2,
            pool: vec![("calc".into(), PathBuf::from("artifacts/a"))],
        };
        run.save_checkpoint(&varmap, &opt, &state).unwrap();
        let (run, resumed) = RunDir::resume(&dir, &varmap, &mut opt).unwrap();
        assert_eq!((resumed.step, resumed.pool), (state.step, state.pool));
        let kept = std::fs::read_to_string(run.metrics()).unwrap();
        assert_eq!(kept.lines().count(), 2, "{kept}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
