//! What training needs of a model: a forward pass, and the state of its dropout masks.

use candle_nn::ModuleT;
use cnn_models::Cnn;

/// A network the [`Trainer`](crate::Trainer) can train: any [`ModuleT`] whose variables live
/// in the trainer's `VarMap`. Models with reproducible dropout report their mask counter so
/// a resumed run draws the same masks; others keep the defaults.
pub trait Model: ModuleT {
    /// Dropout masks drawn so far (0 for a model without seeded dropout).
    fn dropout_calls(&self) -> u64 {
        0
    }
    /// Restores the counter returned by [`Model::dropout_calls`].
    fn set_dropout_calls(&self, calls: u64) {
        let _ = calls;
    }
    /// Takes the names of the classes of the data it is trained on (ignored by default).
    fn set_class_names(&mut self, names: &[String]) -> crate::Result<()> {
        let _ = names;
        Ok(())
    }
}

impl Model for Cnn {
    fn dropout_calls(&self) -> u64 {
        Cnn::dropout_calls(self)
    }
    fn set_dropout_calls(&self, calls: u64) {
        Cnn::set_dropout_calls(self, calls)
    }
    fn set_class_names(&mut self, names: &[String]) -> crate::Result<()> {
        Ok(Cnn::set_class_names(self, names.iter().cloned())?)
    }
}
