//! Per-epoch metrics and their CSV form.

/// Header line of `history.csv`.
pub const HISTORY_HEADER: &str =
    "epoch,train_loss,test_loss,test_accuracy,learning_rate,train_seconds";

/// What one epoch produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch (with dropout active).
    pub train_loss: f64,
    /// Mean test loss.
    pub test_loss: f64,
    /// Test accuracy in `[0, 1]`.
    pub test_accuracy: f64,
    /// Correct test items.
    pub test_correct: usize,
    /// Test items.
    pub test_total: usize,
    /// Learning rate of the epoch's last step.
    pub learning_rate: f64,
    /// Wall-clock seconds of the training part of the epoch.
    pub train_seconds: f64,
    /// Wall-clock seconds of the evaluation.
    pub eval_seconds: f64,
    /// Mean loss on the held-out validation images, when the run holds some out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Accuracy on the validation images in `[0, 1]`, when the run holds some out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
}

/// The two columns `history.csv` gains when a run validates.
const VALIDATION_COLUMNS: &str = ",val_loss,val_accuracy";

/// The CSV text of `history` (header included), with `test_accuracy` as a fraction.
///
/// A run that validates gets two more columns, `val_loss,val_accuracy`.
pub fn history_csv(history: &[EpochMetrics]) -> String {
    let validates = history.iter().any(|m| m.val_loss.is_some());
    let mut s = String::from(HISTORY_HEADER);
    if validates {
        s.push_str(VALIDATION_COLUMNS);
    }
    s.push('\n');
    for m in history {
        s.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3}",
            m.epoch, m.train_loss, m.test_loss, m.test_accuracy, m.learning_rate, m.train_seconds
        ));
        if validates {
            let v = |x: Option<f64>| x.map_or(String::new(), |x| format!("{x:.6}"));
            s.push_str(&format!(",{},{}", v(m.val_loss), v(m.val_accuracy)));
        }
        s.push('\n');
    }
    s
}

/// Parses `history.csv` text back into metrics (counts are derived from a 10,000-item test set
/// only when `test_total` is given). Returns `None` on any malformed line.
pub fn parse_history_csv(text: &str, test_total: usize) -> Option<Vec<EpochMetrics>> {
    let mut lines = text.lines();
    let header = lines.next()?.trim();
    let columns = if header == HISTORY_HEADER {
        6
    } else if header.strip_suffix(VALIDATION_COLUMNS) == Some(HISTORY_HEADER) {
        8
    } else {
        return None;
    };
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != columns {
                return None;
            }
            let num = |i: usize| f[i].trim().parse::<f64>().ok().filter(|v| v.is_finite());
            let test_accuracy = num(3)?;
            Some(EpochMetrics {
                epoch: f[0].trim().parse().ok()?,
                train_loss: num(1)?,
                test_loss: num(2)?,
                test_accuracy,
                test_correct: (test_accuracy * test_total as f64).round() as usize,
                test_total,
                learning_rate: num(4)?,
                train_seconds: num(5)?,
                eval_seconds: 0.0,
                val_loss: if columns == 8 { num(6) } else { None },
                val_accuracy: if columns == 8 { num(7) } else { None },
            })
        })
        .collect()
}
