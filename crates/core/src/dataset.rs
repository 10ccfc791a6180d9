use crate::{Error, Matrix, Result};

/// Samples with their true labels: features `[n, dim]`, labels in `0..classes`, and the
/// class names in label order (the mapping from the file's label values, kept for reports).
#[derive(Debug, Clone)]
pub struct Dataset {
    pub features: Matrix,
    pub labels: Vec<u32>,
    pub class_names: Vec<String>,
}

impl Dataset {
    pub fn new(features: Matrix, labels: Vec<u32>, class_names: Vec<String>) -> Result<Self> {
        if features.rows() != labels.len() {
            return Err(Error::shape("labels", features.rows(), labels.len()));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= class_names.len()) {
            return Err(Error::shape("label value", format!("< {}", class_names.len()), bad));
        }
        Ok(Dataset { features, labels, class_names })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }
    pub fn dim(&self) -> usize {
        self.features.cols()
    }

    /// Number of samples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The samples at `indices`, in that order, with the same class mapping.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            features: self.features.select_rows(indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        }
    }
}
