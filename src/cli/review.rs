//! `cloudgov review --year YYYY`: the annual performance review (art. 10) and its report files.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Args;

use super::Session;
use super::load;
use super::output::{Format, print_json, print_table};

#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[arg(long)]
    pub year: i32,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write an HTML report per project, a summary, a CSV of all projects and charts here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Review rules (weights, prices, thresholds); default: the built-in rules/review.toml.
    #[arg(long, env = "CLOUDGOV_REVIEW_RULES")]
    pub review_rules: Option<PathBuf>,
    /// As of this instant (default now); a past year is reviewed whole.
    #[arg(long)]
    pub at: Option<DateTime<chrono::FixedOffset>>,
    /// Compute and print, but store nothing and e-mail nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub(super) async fn run(s: &Session<'_>, args: ReviewArgs) -> anyhow::Result<()> {
    let ctx = s.ctx;
    let rules = load::review_rules(args.review_rules.as_deref())?;
    let at = args.at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("reviewing {pos}/{len} projects {wide_bar} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let reviews =
        crate::jobs::review::run(ctx, &rules, args.year, at, !args.dry_run, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await?;
    bar.finish_and_clear();
    if let Some(dir) = &args.out {
        write_review_dir(dir, args.year, &reviews, &ctx.rules, ctx.notifier.fonts())?;
    }
    match args.format {
        Format::Json => print_json(&reviews),
        Format::Table => {
            print_table(
                &[
                    "PROJECT",
                    "DEPARTMENT",
                    "SCORE",
                    "GRADE",
                    "VERDICT",
                    "IDLE COST (YUAN)",
                ],
                reviews.iter().map(|r| {
                    vec![
                        r.project.clone(),
                        r.department.clone(),
                        format!("{:.1}", r.score),
                        r.grade.clone(),
                        serde_json::to_value(r.verdict)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        format!("{:.0}", r.idle_cost_yuan),
                    ]
                }),
            );
            Ok(())
        }
    }
}

/// Writes the review report directory (HTML per project, summary, CSV, charts).
fn write_review_dir(
    dir: &std::path::Path,
    year: i32,
    reviews: &[crate::core::review::ProjectReview],
    rules: &crate::core::rules::RuleSet,
    fonts: &crate::core::chart::ChartFonts,
) -> anyhow::Result<()> {
    let labels = fonts.labels(match rules.notices().language {
        crate::core::rules::Language::Zh => crate::core::chart::Labels::Chinese,
        crate::core::rules::Language::En => crate::core::chart::Labels::Latin,
    });
    let written = crate::jobs::review::report::write_report_dir(
        dir,
        year,
        reviews,
        rules,
        fonts,
        labels,
        |_| {},
    )?;
    eprintln!("wrote {} files to {}", written.len(), dir.display());
    Ok(())
}
