//! A run's folder: where its files live, the lock that keeps a second run out, and the rules
//! for starting, replacing and continuing a run there.

use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::Device;
use cnn_data::DatasetKind;
use cnn_models::{Cnn, NetSpec};

use crate::checkpoint::{self, RawCheckpoint};
use crate::{CHECKPOINT_FILE, Error, FINAL_STATE_FILE, HISTORY_FILE, Result};

/// Name of the lock file a run holds in its folder while it trains.
pub const LOCK_FILE: &str = "run.lock";

/// The files a run writes into its folder, each replaced atomically after every epoch.
pub const RUN_FILES: [&str; 3] = [CHECKPOINT_FILE, FINAL_STATE_FILE, HISTORY_FILE];

/// How a training command means to use a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Start a run; refused when the folder already holds any of [`RUN_FILES`].
    Fresh,
    /// Start a run, replacing the one the folder holds.
    Replace,
    /// Continue the run the folder holds (see [`RunFolder::resume_checkpoint`]).
    Resume,
}

/// A run's folder, such as `runs/small_cnn/`.
///
/// ```
/// use cnn_training::{Claim, RunFolder};
/// let dir = tempfile::tempdir()?;
/// let mut run = RunFolder::new(dir.path().join("my_run"));
/// run.claim(Claim::Fresh)?; // creates the folder and locks it
/// assert!(run.final_state().ends_with("final_state.safetensors"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RunFolder {
    dir: PathBuf,
    /// Held until the value drops (or the process ends, however it ends).
    lock: Option<File>,
    /// Whether [`RunFolder::claim`] created the folder, so that an empty one can go again.
    created: bool,
}

impl RunFolder {
    /// The folder at `dir`; nothing is read or written yet.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock: None,
            created: false,
        }
    }

    /// The default folder of a run of `model` on `dataset`: `runs/fashion/<model>` for
    /// Fashion-MNIST, `runs/<model>` for MNIST and data of one's own.
    pub fn default_dir(model: &str, dataset: DatasetKind) -> PathBuf {
        match dataset {
            DatasetKind::Fashion => PathBuf::from("runs/fashion").join(model),
            DatasetKind::Mnist | DatasetKind::Own => PathBuf::from("runs").join(model),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `final_state.safetensors`: the weights, recipe and spec of the latest epoch.
    pub fn final_state(&self) -> PathBuf {
        self.dir.join(FINAL_STATE_FILE)
    }

    /// `checkpoint.safetensors`: everything needed to continue the run.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// `history.csv`: the metrics of every epoch.
    pub fn history(&self) -> PathBuf {
        self.dir.join(HISTORY_FILE)
    }

    /// Fails with [`Error::RunFolderIsFile`] when the path exists and is not a folder; call
    /// it before loading data, so that a mistyped path costs nothing.
    pub fn check(&self) -> Result<()> {
        if self.dir.exists() && !self.dir.is_dir() {
            return Err(Error::RunFolderIsFile {
                path: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Creates the folder if needed, locks it against a second run, and applies `claim`'s
    /// rule: [`Claim::Fresh`] refuses a folder that holds any file a run writes
    /// ([`Error::RunExists`]); the others take the folder as it is.
    pub fn claim(&mut self, claim: Claim) -> Result<()> {
        self.check()?;
        if !self.dir.exists() {
            std::fs::create_dir_all(&self.dir).map_err(|source| Error::Write {
                path: self.dir.clone(),
                source,
            })?;
            self.created = true;
        }
        self.lock = Some(lock(&self.dir)?);
        match claim {
            Claim::Fresh => self.refuse_existing(),
            Claim::Resume | Claim::Replace => Ok(()),
        }
    }

    fn refuse_existing(&self) -> Result<()> {
        match RUN_FILES.iter().find(|f| self.dir.join(f).exists()) {
            Some(file) => Err(Error::RunExists {
                path: self.dir.clone(),
                file,
            }),
            None => Ok(()),
        }
    }

    /// Whether the folder holds anything a run does not write ([`RUN_FILES`], [`LOCK_FILE`]
    /// and their temporary files): a run started there leaves those untouched, but the
    /// user may want to hear where its files go.
    pub fn holds_other_files(&self) -> bool {
        let ours = |name: &str| {
            name == LOCK_FILE
                || RUN_FILES
                    .iter()
                    .any(|f| name == *f || name.starts_with(&format!(".{f}.")))
        };
        std::fs::read_dir(&self.dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| !ours(&e.file_name().to_string_lossy()))
        })
    }

    /// Whether the folder holds a finished epoch's weights.
    pub fn has_weights(&self) -> bool {
        self.final_state().is_file()
    }

    /// Reads the run's checkpoint to continue it, refusing one of another network: when
    /// `spec` is given, the recorded network must have its name
    /// ([`Error::WrongModel`]).
    pub fn resume_checkpoint(
        &self,
        spec: Option<&NetSpec>,
        device: &Device,
    ) -> Result<RawCheckpoint> {
        let path = self.checkpoint();
        let ckpt = checkpoint::read(&path, device)?;
        if let Some(spec) = spec
            && spec.name != ckpt.name
        {
            return Err(Error::WrongModel {
                path,
                found: ckpt.name,
                expected: spec.name.clone(),
            });
        }
        Ok(ckpt)
    }

    /// The trained network in the folder; without one there, and given `shipped` (a
    /// checkpoint's bytes, such as a preset's weights compiled into a program), that one.
    /// `expected` names the network the caller wants ([`Error::WrongModel`] otherwise).
    pub fn load_model(
        &self,
        expected: Option<&str>,
        shipped: Option<&'static [u8]>,
        device: &Device,
    ) -> Result<Loaded> {
        let path = self.final_state();
        let (ckpt, source) = match shipped {
            Some(bytes) if !path.exists() => {
                let label = PathBuf::from(format!(
                    "the shipped {} weights",
                    expected.unwrap_or("preset")
                ));
                (checkpoint::decode(bytes, &label, device)?, Source::Shipped)
            }
            _ => (checkpoint::read(&path, device)?, Source::Folder),
        };
        let label = match source {
            Source::Folder => path,
            Source::Shipped => PathBuf::from(format!("the shipped {} weights", ckpt.name)),
        };
        let (model, ckpt) = checkpoint::model_from(ckpt, expected, &label, device)?;
        Ok(Loaded {
            model,
            checkpoint: ckpt,
            source,
        })
    }

    /// Gives the folder back: the lock is released, and a folder this value created that
    /// holds nothing but the lock (no epoch finished) is removed again.
    pub fn release(mut self) {
        self.unlock();
    }

    fn unlock(&mut self) {
        if self.lock.take().is_none() {
            return;
        }
        let saved = RUN_FILES.iter().any(|f| self.dir.join(f).exists());
        if !saved {
            let _ = std::fs::remove_file(self.dir.join(LOCK_FILE));
            if self.created {
                // Only succeeds when empty: never takes anything of the user's with it.
                let _ = std::fs::remove_dir(&self.dir);
            }
        }
    }
}

impl Drop for RunFolder {
    fn drop(&mut self) {
        self.unlock();
    }
}

/// Where [`RunFolder::load_model`] found the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The folder's `final_state.safetensors`.
    Folder,
    /// The shipped weights given to it.
    Shipped,
}

/// A trained network loaded by [`RunFolder::load_model`].
#[derive(Debug)]
pub struct Loaded {
    /// The network, weights loaded.
    pub model: Cnn,
    /// The file it came from, with its recipe and metadata.
    pub checkpoint: RawCheckpoint,
    /// Where it came from.
    pub source: Source,
}

/// An advisory lock on `<dir>/run.lock`.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::RunBusy {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Write { path, source }),
    }
}
