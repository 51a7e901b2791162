//! Driving a trainer through its epochs, saving the run's files after each.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use cnn_data::Dataset;

use crate::checkpoint;
use crate::{
    CHECKPOINT_FILE, Error, Event, FINAL_STATE_FILE, HISTORY_FILE, Model, Result, Trainer,
};

/// How a [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// All epochs done.
    Finished,
    /// `stop` was set; artifacts of the last completed epoch are on disk (when saving).
    Interrupted,
}

/// Trains until `trainer`'s configured number of epochs, saving artifacts to `out` (when
/// given) after each epoch; with `None` nothing is written. The data's class names are
/// recorded with the run and given to the network. Setting `stop` ends the run after the
/// current batch; `on_event` hears of every batch and epoch.
///
/// On divergence the artifacts of the last good epoch stay on disk and the error says so.
pub fn run<M: Model>(
    trainer: &mut Trainer<M>,
    data: &Dataset,
    out: Option<&Path>,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunOutcome> {
    let found = data.train.fingerprint();
    match &trainer.data_fingerprint {
        Some(recorded) if *recorded != found => {
            return Err(Error::DataChanged {
                recorded: recorded.clone(),
                found,
            });
        }
        _ => trainer.data_fingerprint = Some(found),
    }
    trainer.record_class_names(&data.class_names)?;
    if let Some(out) = out {
        // A run killed while writing leaves a temporary file beside the intact previous one.
        checkpoint::remove_stale_temps(out, &[CHECKPOINT_FILE, FINAL_STATE_FILE, HISTORY_FILE]);
        // A run killed between writing its checkpoint and its other files resumes from the
        // checkpoint: write them again now, so all three agree even if no epoch is left.
        if trainer.from_checkpoint {
            trainer.save(out)?;
        }
    }
    while trainer.epochs_done() < trainer.config().epochs {
        // Saving is part of the epoch for the caller: hold its end event until it is done.
        let mut end = None;
        let result = trainer.train_epoch(data, stop, &mut |e: &Event| match e {
            Event::EpochEnd(_) => end = Some(e.clone()),
            other => on_event(other),
        })?;
        if result.is_none() {
            return Ok(RunOutcome::Interrupted);
        }
        if let Some(out) = out {
            trainer.save(out)?;
        }
        if let Some(e) = end {
            on_event(&e);
        }
    }
    Ok(RunOutcome::Finished)
}

impl<M: Model> Trainer<M> {
    /// Trains to the configured number of epochs, writing nothing, and returns the metrics
    /// of every epoch. [`run`] does the same while saving a run folder after each epoch,
    /// reporting progress and stopping when asked.
    ///
    /// ```
    /// use cnn_training::prelude::*;
    /// let split = Split::new(vec![0; 4 * 8 * 8], vec![0, 1, 0, 1], 8, 8, 2)?;
    /// let data = Dataset::new(split.clone(), split, ["no", "yes"])?;
    /// let spec = cnn_models::NetSpec::builder("tiny").conv(4).maxpool().build()?;
    /// let cfg = TrainConfig { epochs: 2, ..TrainConfig::default() };
    /// let mut trainer = Trainer::new(cfg, &spec, &Device::Cpu, &data.train)?;
    /// let history = trainer.fit(&data)?;
    /// assert_eq!(history.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fit(&mut self, data: &Dataset) -> Result<&[crate::EpochMetrics]> {
        let stop = AtomicBool::new(false);
        run(self, data, None, &stop, &mut |_| {})?;
        Ok(self.history())
    }
}
