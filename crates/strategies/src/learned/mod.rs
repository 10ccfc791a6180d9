//! Learned strategies: loss prediction and VAAL (being written).

use crate::Entry;

pub(crate) fn entries() -> Vec<Entry> {
    Vec::new()
}
