//! Reading the world once at start-up: the rules file and the calendar directory from disk, the
//! SMTP settings and the delivery settings from the environment, the chart fonts from their
//! files. Everything below the CLI (core, store, jobs) is handed what it needs.

use std::path::{Path, PathBuf};

use anyhow::Context;

use lettre::message::Mailbox;

use crate::core::calendar::Calendar;
use crate::core::chart::ChartFonts;
use crate::core::rules::RuleSet;
use crate::jobs::notify::DeliverySettings;
use crate::jobs::notify::smtp::{SmtpError, SmtpSettings};
use crate::jobs::notify::templates::Templates;

/// Where staff keep their own e-mail templates unless told otherwise.
pub const DEFAULT_TEMPLATES_DIR: &str = "rules/templates";

/// Default font files (Debian's fonts-wqy-microhei and fonts-dejavu-core).
pub const DEFAULT_CJK_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";
pub const DEFAULT_LATIN_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

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

/// The SMTP settings from the environment; `None` when `CLOUDGOV_SMTP_URL` is not set (e-mails
/// then wait in the outbox). Credentials: `CLOUDGOV_SMTP_USER` with `CLOUDGOV_SMTP_PASSWORD` or
/// `CLOUDGOV_SMTP_PASSWORD_FILE`; sender: `CLOUDGOV_SMTP_FROM`.
pub fn smtp_settings() -> Result<Option<SmtpSettings>, SmtpError> {
    let Some(url) = std::env::var("CLOUDGOV_SMTP_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    let from_text =
        std::env::var("CLOUDGOV_SMTP_FROM").unwrap_or_else(|_| "cloudgov@localhost".into());
    let from: Mailbox = from_text
        .parse()
        .map_err(|_| SmtpError::From(from_text.clone()))?;
    let password = match (
        std::env::var("CLOUDGOV_SMTP_PASSWORD").ok(),
        std::env::var("CLOUDGOV_SMTP_PASSWORD_FILE").ok(),
    ) {
        (Some(p), _) => Some(p),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .map_err(|source| SmtpError::PasswordFile { path, source })?
                .trim_end()
                .to_owned(),
        ),
        (None, None) => None,
    };
    let credentials = std::env::var("CLOUDGOV_SMTP_USER").ok().zip(password);
    Ok(Some(SmtpSettings::new(url, from, credentials)))
}

/// A secret from `VAR`, or from the file `VAR_FILE` names (trailing newline dropped).
fn secret_from_env(var: &str) -> anyhow::Result<Option<String>> {
    if let Some(value) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
        return Ok(Some(value));
    }
    let file_var = format!("{var}_FILE");
    match std::env::var(&file_var).ok().filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(path) => Ok(Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {file_var}={path}"))?
                .trim_end()
                .to_owned(),
        )),
    }
}

/// The Prometheus API's credentials from the environment: `CLOUDGOV_PROMETHEUS_BEARER_TOKEN`,
/// or `CLOUDGOV_PROMETHEUS_USERNAME` with `CLOUDGOV_PROMETHEUS_PASSWORD` (each secret also as
/// `..._FILE`). Never printed.
pub fn prometheus_auth() -> anyhow::Result<crate::jobs::prometheus::PromAuth> {
    use crate::jobs::prometheus::PromAuth;
    let token = secret_from_env("CLOUDGOV_PROMETHEUS_BEARER_TOKEN")?;
    let username = std::env::var("CLOUDGOV_PROMETHEUS_USERNAME")
        .ok()
        .filter(|u| !u.is_empty());
    let password = secret_from_env("CLOUDGOV_PROMETHEUS_PASSWORD")?;
    match (token, username, password) {
        (Some(_), Some(_), _) => anyhow::bail!(
            "set CLOUDGOV_PROMETHEUS_BEARER_TOKEN or CLOUDGOV_PROMETHEUS_USERNAME, not both"
        ),
        (Some(token), None, _) => Ok(PromAuth::Bearer(token)),
        (None, Some(username), Some(password)) => Ok(PromAuth::Basic { username, password }),
        (None, Some(_), None) => anyhow::bail!(
            "CLOUDGOV_PROMETHEUS_USERNAME is set without CLOUDGOV_PROMETHEUS_PASSWORD (or _FILE)"
        ),
        (None, None, Some(_)) => anyhow::bail!(
            "CLOUDGOV_PROMETHEUS_PASSWORD is set without CLOUDGOV_PROMETHEUS_USERNAME"
        ),
        (None, None, None) => Ok(PromAuth::None),
    }
}

/// How the outbox sender behaves: `CLOUDGOV_OUTBOX_CLAIM_SECS` (default 120), and the crash
/// test's `CLOUDGOV_FAULT_ABORT_AFTER_SMTP_ACCEPT`.
pub fn delivery_settings() -> DeliverySettings {
    let defaults = DeliverySettings::default();
    DeliverySettings {
        claim: std::env::var("CLOUDGOV_OUTBOX_CLAIM_SECS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map_or(defaults.claim, std::time::Duration::from_secs),
        abort_after_accept: std::env::var_os("CLOUDGOV_FAULT_ABORT_AFTER_SMTP_ACCEPT").is_some(),
    }
}

/// The chart fonts: `CLOUDGOV_CHART_FONT` (CJK, default Debian's fonts-wqy-microhei) and
/// `CLOUDGOV_CHART_FONT_LATIN` (default DejaVu Sans). A bad CJK font falls back to Latin labels,
/// a bad Latin font to charts without text: a notice is never held up by a font.
pub fn chart_fonts() -> ChartFonts {
    let read = |env: &str, default: &str| {
        let path = std::env::var(env).unwrap_or_else(|_| default.to_owned());
        std::fs::read(&path)
            .inspect_err(|e| tracing::warn!(font = %path, error = %e, "chart font not readable"))
            .ok()
    };
    let cjk = read("CLOUDGOV_CHART_FONT", DEFAULT_CJK_FONT);
    let latin = read("CLOUDGOV_CHART_FONT_LATIN", DEFAULT_LATIN_FONT);
    ChartFonts::register(cjk, latin.clone())
        .or_else(|e| {
            tracing::warn!(error = %e, "CJK chart font unusable: Latin labels");
            ChartFonts::register(None, latin)
        })
        .or_else(|e| {
            tracing::warn!(error = %e, "chart fonts unusable: charts without text");
            ChartFonts::register(None, None)
        })
        .unwrap_or_else(|_| unreachable!("registering no font parses nothing and cannot fail"))
}

/// The e-mail templates: the built-in ones, each replaced by a file of the same name
/// (`KIND.LANG.txt`) in `dir`. An explicitly named `dir` must exist; the default
/// (`rules/templates`) may be absent.
pub fn templates(dir: Option<&Path>) -> anyhow::Result<Templates> {
    let explicit = dir.is_some();
    let dir = dir.unwrap_or(Path::new(DEFAULT_TEMPLATES_DIR));
    if explicit && !dir.is_dir() {
        anyhow::bail!("templates directory {} does not exist", dir.display());
    }
    let mut replacements = std::collections::HashMap::new();
    for name in Templates::names() {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                replacements.insert(name, text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read template {}", path.display()));
            }
        }
    }
    Ok(Templates::overlaid(|name| replacements.remove(name))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::Language;

    #[test]
    fn a_directory_overrides_one_template_and_a_missing_subject_is_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("reminder.zh.txt"),
            "Subject: 自定义 {{ deadline.vm }}\n\n正文\n",
        )
        .expect("write");
        let t = templates(Some(dir.path())).expect("load");
        let r = t
            .render(
                "reminder",
                Language::Zh,
                &serde_json::json!({"deadline": {"vm": "vm-9"}}),
            )
            .expect("render");
        assert_eq!(r.subject, "自定义 vm-9");
        std::fs::write(dir.path().join("reminder.zh.txt"), "no subject line\n").expect("write");
        let t = templates(Some(dir.path())).expect("load");
        let err = t
            .render("reminder", Language::Zh, &serde_json::json!({}))
            .expect_err("no subject");
        assert!(err.to_string().contains("Subject:"), "{err}");
        assert!(templates(Some(Path::new("/nonexistent/templates"))).is_err());
    }
}
