//! E-mail templates: files staff edit (`rules/templates/KIND.LANG.txt`), first line
//! `Subject: ...`, then a blank line and the body. The shipped ones are built in; a directory
//! overrides them file by file without a rebuild.

use minijinja::Environment;
use serde::Serialize;

use crate::core::rules::Language;

/// Embeds shipped template files by name.
macro_rules! builtin_templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../rules/templates/", $name)))),*]
    };
}

/// The shipped templates: (file name, text).
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = builtin_templates![
    "digest.zh.txt",
    "digest.en.txt",
    "reminder.zh.txt",
    "reminder.en.txt",
    "escalation.zh.txt",
    "escalation.en.txt",
    "network.zh.txt",
    "network.en.txt",
    "review.zh.txt",
    "review.en.txt",
    "request_receipt.zh.txt",
    "request_receipt.en.txt",
    "request_decision.zh.txt",
    "request_decision.en.txt",
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {source}")]
    Syntax {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("template {name} does not render: {source:#}")]
    Render {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("template {name} must start with a line `Subject: ...`")]
    NoSubject { name: String },
}

/// A rendered message: subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedText {
    pub subject: String,
    pub body: String,
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The names of the templates, `KIND.LANG.txt`: a directory of staff's own replaces those
    /// of the same name (`cli::load::templates` reads it).
    pub fn names() -> impl Iterator<Item = &'static str> {
        BUILTIN_TEMPLATES.iter().map(|(name, _)| *name)
    }

    /// The built-in templates, each replaced by the text `replacement` gives for its name.
    pub fn overlaid(
        mut replacement: impl FnMut(&'static str) -> Option<String>,
    ) -> Result<Templates, TemplateError> {
        Templates::from_sources(BUILTIN_TEMPLATES.iter().map(|(name, builtin)| {
            (
                *name,
                replacement(name).unwrap_or_else(|| (*builtin).to_owned()),
            )
        }))
    }

    /// The built-in templates only.
    pub fn builtin() -> Result<Templates, TemplateError> {
        Templates::from_sources(BUILTIN_TEMPLATES.iter().map(|(n, t)| (*n, (*t).to_owned())))
    }

    fn from_sources(
        sources: impl IntoIterator<Item = (&'static str, String)>,
    ) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        for (name, text) in sources {
            env.add_template_owned(name, text)
                .map_err(|source| TemplateError::Syntax {
                    name: name.to_owned(),
                    source,
                })?;
        }
        Ok(Templates { env })
    }

    /// Renders `kind` (digest, reminder, escalation) in `language` with `context`.
    pub fn render(
        &self,
        kind: &str,
        language: Language,
        context: &impl Serialize,
    ) -> Result<RenderedText, TemplateError> {
        let name = format!("{kind}.{}.txt", language.as_str());
        let template = self
            .env
            .get_template(&name)
            .map_err(|source| TemplateError::Render {
                name: name.clone(),
                source,
            })?;
        let text = template
            .render(context)
            .map_err(|source| TemplateError::Render {
                name: name.clone(),
                source,
            })?;
        let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let subject = first
            .strip_prefix("Subject:")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or(TemplateError::NoSubject { name })?;
        Ok(RenderedText {
            subject,
            body: rest.trim_start_matches('\n').to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_template_renders_with_a_subject_in_both_languages() {
        let t = Templates::builtin().expect("templates parse");
        let context = serde_json::json!({
            "department": {"id": "health", "name": "市卫健局"},
            "notices": [{"id": 1, "vm": "vm-1", "due": "2025-10-16", "due_zh": "2025年10月16日", "chart": "c.png"}],
            "findings": [{"kind": "mac_mismatch", "kind_zh": "IP与MAC绑定不符", "ip": "10.0.0.1", "mac": "vm-1", "evidence": "2025"}],
            "deadline": {"vm": "vm-1", "due": "2025-10-16", "due_zh": "2025年10月16日", "kind_zh": "资源调整", "kind_en": "adjustment",
                "subject_zh": "云主机:vm-1(项目:his)", "subject_en": "VM: vm-1 (project: his)", "article_zh": "第十三条", "article_en": "Article 13"},
            "earliest_due": "2025-10-16", "earliest_due_zh": "2025年10月16日",
            "year": 2025, "name": "vm-1", "score": 80, "explanation": ["2025"],
            "request": {"id": 7, "project": "his", "purpose": "p", "expected_load": "l", "submitted_on": "2025-09-26",
                "due": "2025-10-10", "decided_on": "2025-10-09", "decision_reason": "r",
                "vms": [{"id": "vm-1", "vcpus": 8, "memory_gib": 16, "disk_gib": 200,
                    "approved": {"vcpus": 2, "memory_gib": 7, "disk_gib": 100}}]},
            "approved": true, "submitted_zh": "2025年9月26日", "decided_zh": "2025年10月9日",
        });
        for kind in [
            "digest",
            "reminder",
            "escalation",
            "network",
            "review",
            "request_receipt",
            "request_decision",
        ] {
            for language in [Language::Zh, Language::En] {
                let r = t.render(kind, language, &context).expect("renders");
                assert!(
                    !r.subject.is_empty() && !r.subject.contains('\n'),
                    "{kind} {language:?}"
                );
                assert!(r.body.contains("2025"), "{kind} {language:?}: {}", r.body);
                assert!(r.body.contains("vm-1") || kind == "digest" && r.body.contains("vm-1"));
            }
        }
    }
}
