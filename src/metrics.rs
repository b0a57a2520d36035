//! The metrics CSV of a training run: one [`MetricsRow`] every `log_every` environment steps.
//! Empty cells mean "not measured in this window" (no episode ended, no update, no evaluation).

use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::agent::UpdateMetrics;
use crate::train::{EvalResult, RunState};

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    /// Environment steps so far, summed over environments.
    pub env_steps: usize,
    /// Updates so far.
    pub updates: u64,
    /// Episodes finished so far.
    pub episodes: usize,
    /// Wall-clock seconds since the run started (across resumes).
    pub wall_s: f64,
    /// Mean return of the training episodes that ended in this window.
    pub train_return: Option<f64>,
    /// Fraction of those episodes that reached the goal.
    pub train_success: Option<f64>,
    /// Fraction of this window's steps inside the ground-truth symmetry-breaking region.
    pub breaking_fraction: Option<f64>,
    /// Mean return of the deterministic evaluation run in this window.
    pub eval_return: Option<f64>,
    /// Success rate of that evaluation.
    pub eval_success: Option<f64>,
    /// PE-SAC: mean λζ(s) over the evaluation's states.
    pub eval_lambda_state: Option<f64>,
    /// Mean critic loss of this window's updates.
    pub q_loss: Option<f64>,
    /// Mean actor loss.
    pub actor_loss: Option<f64>,
    /// Temperature α after the window's last update.
    pub alpha: Option<f64>,
    /// Mean policy entropy estimate, nats.
    pub entropy: Option<f64>,
    /// PE-SAC: mean fraction of each batch with λ(s, a) = 1.
    pub lambda_fraction: Option<f64>,
    /// PE-SAC: mean fraction of each batch with pseudo-label 1.
    pub pseudo_label_rate: Option<f64>,
    /// Updates per second over this window.
    pub updates_per_s: f64,
}

/// Statistics gathered between two metrics rows by a training loop.
#[derive(Debug, Default)]
pub struct MetricsWindow {
    /// Returns of the episodes that ended.
    pub returns: Vec<f64>,
    /// How many of them reached the goal.
    pub successes: usize,
    /// Environment steps.
    pub steps: usize,
    /// Steps inside the ground-truth breaking region.
    pub breaking: usize,
    /// The evaluation run in this window, if any.
    pub eval: Option<EvalResult>,
    updates: usize,
    q_loss: f64,
    actor_loss: f64,
    alpha: f64,
    entropy: f64,
    lambda: f64,
    lambda_n: usize,
    label_rate: f64,
}

impl MetricsWindow {
    /// Adds one update's scalars; PE-SAC's λ and label rate only with `count_lambda` (e.g. after
    /// the gate warm-up).
    pub fn add(&mut self, m: &UpdateMetrics, count_lambda: bool) {
        self.updates += 1;
        self.q_loss += f64::from(m.q_loss);
        self.actor_loss += f64::from(m.actor_loss);
        self.alpha = f64::from(m.alpha);
        self.entropy += f64::from(m.entropy);
        if let (Some(l), Some(y), true) = (m.lambda_fraction, m.pseudo_label_rate, count_lambda) {
            self.lambda += f64::from(l);
            self.label_rate += f64::from(y);
            self.lambda_n += 1;
        }
    }

    /// The row of this window at `state`.
    pub fn row(
        &self,
        state: &RunState,
        updates: u64,
        updates_per_s: f64,
        wall_s: f64,
    ) -> MetricsRow {
        let mean = |sum: f64, n: usize| (n > 0).then(|| sum / n as f64);
        let episodes = self.returns.len();
        MetricsRow {
            env_steps: state.env_steps,
            updates,
            episodes: state.episodes,
            wall_s,
            train_return: mean(self.returns.iter().sum(), episodes),
            train_success: mean(self.successes as f64, episodes),
            breaking_fraction: mean(self.breaking as f64, self.steps),
            eval_return: self.eval.map(|e| e.mean_return),
            eval_success: self.eval.map(|e| e.success_rate),
            eval_lambda_state: self.eval.and_then(|e| e.mean_lambda_state),
            q_loss: mean(self.q_loss, self.updates),
            actor_loss: mean(self.actor_loss, self.updates),
            alpha: (self.updates > 0).then_some(self.alpha),
            entropy: mean(self.entropy, self.updates),
            lambda_fraction: mean(self.lambda, self.lambda_n),
            pseudo_label_rate: mean(self.label_rate, self.lambda_n),
            updates_per_s,
        }
    }
}

/// Appends rows to a metrics CSV, flushing each one (a killed run keeps its rows).
pub struct MetricsWriter {
    writer: csv::Writer<File>,
}

impl MetricsWriter {
    /// Creates `path` with a header, or with `append` adds to an existing file (no new header).
    pub fn open(path: &Path, append: bool) -> anyhow::Result<Self> {
        let exists = append && path.is_file();
        let file = OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let writer = csv::WriterBuilder::new().has_headers(!exists).from_writer(file);
        Ok(Self { writer })
    }

    /// Writes and flushes one row.
    pub fn write(&mut self, row: &MetricsRow) -> anyhow::Result<()> {
        self.writer.serialize(row)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Flushes.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        Ok(self.writer.flush()?)
    }
}

/// Reads every row of a metrics CSV.
///
/// # Errors
/// An unreadable file or a malformed row (naming the file and the row's line).
pub fn read_metrics(path: &Path) -> anyhow::Result<Vec<MetricsRow>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    reader
        .deserialize()
        .map(|r| r.with_context(|| format!("{}: malformed row", path.display())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(env_steps: usize, eval: Option<f64>) -> MetricsRow {
        MetricsRow {
            env_steps,
            updates: 3,
            episodes: 1,
            wall_s: 0.5,
            train_return: Some(-2.5),
            train_success: None,
            breaking_fraction: Some(0.25),
            eval_return: eval,
            eval_success: eval.map(|_| 0.5),
            eval_lambda_state: None,
            q_loss: Some(1.0),
            actor_loss: Some(-1.0),
            alpha: Some(0.1),
            entropy: Some(2.0),
            lambda_fraction: None,
            pseudo_label_rate: None,
            updates_per_s: 10.0,
        }
    }

    #[test]
    fn rows_round_trip_with_empty_cells_and_append_adds_no_header() {
        let path =
            std::env::temp_dir().join(format!("equigate-metrics-{}.csv", std::process::id()));
        let rows = [row(1000, None), row(2000, Some(-12.0)), row(3000, None)];
        let mut w = MetricsWriter::open(&path, false).unwrap();
        w.write(&rows[0]).unwrap();
        w.write(&rows[1]).unwrap();
        drop(w);
        let mut w = MetricsWriter::open(&path, true).unwrap();
        w.write(&rows[2]).unwrap();
        drop(w);
        assert_eq!(read_metrics(&path).unwrap(), rows);
        std::fs::write(&path, "env_steps,updates\nx,1\n").unwrap();
        let err = format!("{:#}", read_metrics(&path).unwrap_err());
        assert!(err.contains("malformed row"), "{err}");
        let _ = std::fs::remove_file(&path);
    }
}
