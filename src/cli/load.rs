//! Reading the rules file and the calendar directory from disk: the IO that the pure `rules`
//! and `calendar` modules leave to their callers.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::core::calendar::Calendar;
use crate::core::rules::RuleSet;

/// Where staff keep the per-year calendar files unless told otherwise.
pub const DEFAULT_CALENDAR_DIR: &str = "rules/calendar";

/// The rules file at `path`, or the built-in Pingdu defaults.
pub fn rules(path: Option<&Path>) -> anyhow::Result<RuleSet> {
    match path {
        None => Ok(RuleSet::builtin()?),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read rules file {}", p.display()))?;
            Ok(RuleSet::parse(&p.display().to_string(), &text)?)
        }
    }
}

/// The review rules at `path`, or the built-in `rules/review.toml`.
pub fn review_rules(
    path: Option<&Path>,
) -> anyhow::Result<crate::core::review::rules::ReviewRules> {
    use crate::core::review::rules::ReviewRules;
    match path {
        None => Ok(ReviewRules::builtin()?),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read review rules {}", p.display()))?;
            Ok(ReviewRules::parse(&p.display().to_string(), &text)?)
        }
    }
}

/// The built-in years (2019-2026) overlaid with every `YYYY.toml` in `dir`: a file replaces the
/// built-in year, and a new year needs only a new file, no rebuild. An explicitly named `dir`
/// must exist; the default one may be absent.
pub fn calendar(dir: Option<&Path>) -> anyhow::Result<Calendar> {
    let (dir, explicit) = match dir {
        Some(d) => (d.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CALENDAR_DIR), false),
    };
    let mut files = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry
                    .with_context(|| format!("cannot list {}", dir.display()))?
                    .path();
                let is_year = path.extension().is_some_and(|e| e == "toml")
                    && path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .is_some_and(|s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()));
                if is_year {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    files.push((path.display().to_string(), text));
                }
            }
        }
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read calendar directory {}", dir.display()));
        }
    }
    files.sort();
    let calendar = Calendar::builtin_overlaid(files.iter().map(|(o, t)| (o.as_str(), t.as_str())))?;
    Ok(calendar)
}
