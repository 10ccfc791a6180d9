//! Command-line names → strategies, and the catalogue `quarry strategies` prints.
//!
//! Every family module exposes `entries()`: one [`Entry`] per strategy with its name, aliases,
//! family, paper and a constructor. The registry only chains them.

use crate::StrategyOptions;
use quarry_core::{Result, Strategy};

/// One strategy as the registry knows it.
pub struct Entry {
    /// The name `--strategy` takes.
    pub name: &'static str,
    /// Other accepted names (e.g. the P1 anchor names).
    pub aliases: &'static [&'static str],
    pub family: &'static str,
    /// Paper(s) it implements.
    pub paper: &'static str,
    /// What it does and the setting it assumes, in one line.
    pub summary: &'static str,
    pub build: fn(&StrategyOptions) -> Result<Box<dyn Strategy>>,
}

/// What `quarry strategies` says about one strategy.
#[derive(Debug, Clone)]
pub struct StrategyInfo {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub family: &'static str,
    /// The scores the strategy reads.
    pub needs: String,
    pub paper: &'static str,
    pub summary: &'static str,
}

fn entries() -> Vec<Entry> {
    let mut v = Vec::new();
    v.extend(crate::random::entries());
    v.extend(crate::uncertainty::entries());
    v.extend(crate::committee::entries());
    v.extend(crate::bayesian::entries());
    v.extend(crate::density::entries());
    v.extend(crate::diversity::entries());
    v.extend(crate::expected::entries());
    v.extend(crate::aift::entries());
    v.extend(crate::learned::entries());
    v
}

/// A scenario other than pool-based sampling (stream-based selective sampling, membership query
/// synthesis): its policies are not pool [`Strategy`]s, so `quarry strategies` lists them apart,
/// with the command that runs them.
#[derive(Debug, Clone)]
pub struct ScenarioInfo {
    /// The name the scenario's command takes.
    pub name: &'static str,
    pub family: &'static str,
    /// The scores the policy reads.
    pub needs: &'static str,
    pub paper: &'static str,
    /// What it does, the setting it assumes and the command that runs it, in one line.
    pub summary: &'static str,
}

/// The stream-based and query-synthesis policies, in catalogue order.
pub fn scenarios() -> Vec<ScenarioInfo> {
    let mut v = Vec::new();
    v.extend(crate::stream::scenario_entries());
    v.extend(crate::synthesis::scenario_entries());
    v
}

/// Every strategy quarry has, in catalogue order.
pub fn catalogue() -> Vec<StrategyInfo> {
    let defaults = StrategyOptions::default();
    entries()
        .into_iter()
        .map(|e| StrategyInfo {
            name: e.name,
            aliases: e.aliases,
            family: e.family,
            needs: (e.build)(&defaults).map(|s| s.needs().describe()).unwrap_or_else(|err| err.to_string()),
            paper: e.paper,
            summary: e.summary,
        })
        .collect()
}

/// `_` and `-` are the same in strategy names, and case does not matter.
pub fn normalize_name(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

#[derive(Debug, thiserror::Error)]
pub enum UnknownStrategy {
    #[error("unknown strategy '{given}' (known: {known})")]
    Unknown { given: String, known: String },
    #[error("strategy '{given}': {source}")]
    BadOptions { given: String, source: quarry_core::Error },
}

/// The strategy a command-line name denotes, built with `options`.
pub fn by_name_with(name: &str, options: &StrategyOptions) -> Result<Box<dyn Strategy>, UnknownStrategy> {
    let wanted = normalize_name(name);
    let all = entries();
    let entry = all.iter().find(|e| e.name == wanted || e.aliases.iter().any(|a| normalize_name(a) == wanted));
    match entry {
        Some(e) => {
            options.check().and_then(|_| (e.build)(options)).map_err(|source| UnknownStrategy::BadOptions { given: name.into(), source })
        }
        None => Err(UnknownStrategy::Unknown {
            given: name.to_string(),
            known: all.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// [`by_name_with`] with the default options.
pub fn by_name(name: &str) -> Result<Box<dyn Strategy>, UnknownStrategy> {
    by_name_with(name, &StrategyOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_name_and_alias_resolves_to_itself() {
        for info in catalogue() {
            assert_eq!(by_name(info.name).unwrap().name(), info.name);
            assert_eq!(by_name(&info.name.replace('-', "_").to_uppercase()).unwrap().name(), info.name);
            for a in info.aliases {
                assert_eq!(by_name(a).unwrap().name(), info.name);
            }
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<String> = catalogue().iter().flat_map(|i| std::iter::once(i.name).chain(i.aliases.iter().copied())).map(normalize_name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let e = by_name("no-such").err().unwrap().to_string();
        assert!(e.contains("no-such") && e.contains("margin"), "{e}");
    }

    #[test]
    fn bad_options_are_errors_naming_the_setting() {
        let named = |o: StrategyOptions| match by_name_with("random", &o).err().unwrap() {
            UnknownStrategy::BadOptions { source: quarry_core::Error::InvalidParameter { name, .. }, .. } => name,
            e => panic!("{e}"),
        };
        assert_eq!(named(StrategyOptions { beta: -1.0, ..Default::default() }), "beta");
        assert_eq!(named(StrategyOptions { mc_draws: 1, ..Default::default() }), "mc-draws");
        assert_eq!(named(StrategyOptions { committee_size: 1, ..Default::default() }), "committee-size");
    }
}
