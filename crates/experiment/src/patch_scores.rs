//! AIFT's extra inputs, handed to the session by kind: the predictions of each candidate's
//! augmented patches (a [`ScoreProvider`] of [`ScoreKind::Patches`]), and each labeled image's
//! patches as extra training rows (an [`Augment`], AIFT step 4). The session knows nothing of
//! images; an image run adds this provider.

use crate::images::AugmentedPatches;
use quarry_core::{Augment, Error, Matrix, Result, SampleId, ScoreKind, ScoreProvider, ScoreRequest, Scores};

/// The augmented patches of a run's images, drawn with the run's patch seed.
pub struct PatchScores {
    pub patches: AugmentedPatches,
    /// Fixes each image's patches for the run: a candidate is scored on the patches it
    /// contributes to training once labeled.
    pub seed: u64,
}

fn other(e: crate::ExperimentError) -> Error {
    Error::Other(e.to_string())
}

fn rows(ids: &[SampleId]) -> Vec<usize> {
    ids.iter().map(|id| id.index()).collect()
}

impl ScoreProvider for PatchScores {
    fn provide(&self, kind: ScoreKind, req: &ScoreRequest<'_>, out: &mut Scores) -> Result<bool> {
        if kind != ScoreKind::Patches {
            return Ok(false);
        }
        out.set(ScoreKind::Patches, self.patches.probabilities(req.learner, &rows(req.candidates), self.seed).map_err(other)?);
        Ok(true)
    }
}

impl Augment for PatchScores {
    fn augment(&self, labeled: &[SampleId], labels: &[u32], x: &mut Matrix, y: &mut Vec<u32>) -> Result<()> {
        let per_row = self.patches.per_row(&rows(labeled), self.seed).map_err(other)?;
        for (patches, &label) in per_row.iter().zip(labels) {
            for r in 0..patches.rows() {
                x.push_row(patches.row(r));
                y.push(label);
            }
        }
        Ok(())
    }
}
