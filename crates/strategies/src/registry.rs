//! Command-line names → strategies, and the catalogue `quarry strategies` prints.

use crate::{ConfidenceGap, EntropySampling, LeastConfidence, MarginSampling, RandomSampling};
use quarry_core::Strategy;

/// What `quarry strategies` says about one strategy.
#[derive(Debug, Clone, Copy)]
pub struct StrategyInfo {
    pub name: &'static str,
    pub family: &'static str,
    /// The scores the strategy reads.
    pub needs: &'static str,
    pub paper: &'static str,
    pub summary: &'static str,
}

const CATALOGUE: &[StrategyInfo] = &[
    StrategyInfo { name: "random", family: "baseline", needs: "nothing", paper: "—", summary: "uniform over the unlabeled pool" },
    StrategyInfo {
        name: "least-confidence",
        family: "uncertainty",
        needs: "probabilities",
        paper: "Lewis & Gale, SIGIR 1994; Settles, AL survey 2009",
        summary: "lowest top-class probability first",
    },
    StrategyInfo {
        name: "margin",
        family: "uncertainty",
        needs: "probabilities",
        paper: "Scheffer, Decomain & Wrobel, IDA 2001",
        summary: "smallest gap between the two most likely classes first",
    },
    StrategyInfo {
        name: "entropy",
        family: "uncertainty",
        needs: "probabilities",
        paper: "Settles & Craven, EMNLP 2008 (Shannon entropy)",
        summary: "highest predictive entropy first",
    },
    StrategyInfo {
        name: "confidence-gap",
        family: "uncertainty",
        needs: "probabilities",
        paper: "the online CNN demo of BENCHMARK P2",
        summary: "smallest max − min probability first",
    },
];

/// Every strategy quarry has, in catalogue order.
pub fn catalogue() -> &'static [StrategyInfo] {
    CATALOGUE
}

/// `_` and `-` are the same in strategy names, and case does not matter.
pub fn normalize_name(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

#[derive(Debug, thiserror::Error)]
#[error("unknown strategy '{given}' (known: {known})")]
pub struct UnknownStrategy {
    pub given: String,
    pub known: String,
}

/// The strategy a command-line name denotes.
pub fn by_name(name: &str) -> Result<Box<dyn Strategy>, UnknownStrategy> {
    let s: Box<dyn Strategy> = match normalize_name(name).as_str() {
        "random" => Box::new(RandomSampling),
        "least-confidence" | "least-confident" | "uncertainty" => Box::new(LeastConfidence),
        "margin" => Box::new(MarginSampling),
        "entropy" => Box::new(EntropySampling),
        "confidence-gap" => Box::new(ConfidenceGap),
        _ => {
            return Err(UnknownStrategy {
                given: name.to_string(),
                known: CATALOGUE.iter().map(|i| i.name).collect::<Vec<_>>().join(", "),
            });
        }
    };
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_name_resolves_to_itself() {
        for info in catalogue() {
            assert_eq!(by_name(info.name).unwrap().name(), info.name);
            assert_eq!(by_name(&info.name.replace('-', "_").to_uppercase()).unwrap().name(), info.name);
        }
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let e = by_name("no-such").err().unwrap().to_string();
        assert!(e.contains("no-such") && e.contains("margin"), "{e}");
    }
}
