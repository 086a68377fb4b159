//! The annual review (art. 10) as a job: gather a year from the store, score it (pure, in
//! `core::review`), store the results and queue their e-mails; the report files and pages.

pub mod gather;
pub mod report;

use crate::core::review::ProjectReview;
use crate::core::review::rules::ReviewRules;
use crate::core::review::score::review;

/// Runs the review of `year` as of `as_of`: gathers, scores and (with `persist`) stores the
/// results and queues their e-mails. `progress(done, total)` follows the projects.
pub async fn run(
    ctx: &crate::jobs::JobContext,
    rules: &ReviewRules,
    year: i32,
    as_of: chrono::DateTime<chrono::Utc>,
    persist: bool,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<ProjectReview>, crate::store::StoreError> {
    let years = gather::gather_year(ctx, year, as_of, progress).await?;
    let reviews: Vec<ProjectReview> = years
        .into_iter()
        .map(|facts| review(year, facts, rules))
        .collect();
    if persist {
        let rows = reviews
            .iter()
            .map(|r| {
                let json = serde_json::to_string(r)
                    .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))?;
                let verdict = serde_json::to_value(r.verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                Ok((
                    r.project.clone(),
                    r.department.clone(),
                    r.score,
                    r.grade.clone(),
                    verdict,
                    json,
                ))
            })
            .collect::<Result<Vec<_>, crate::store::StoreError>>()?;
        ctx.store
            .record_reviews(year, &rows, chrono::Utc::now().timestamp())
            .await?;
    }
    Ok(reviews)
}
