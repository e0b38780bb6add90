//! `GET /api/v1/reports?from=&to=&group=&tz=`: the team's figures over a
//! period (`web::reports`), as JSON, or one table as CSV with
//! `format=csv&table=summary|backlog`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiUser, bad};
use crate::web::AppState;
use crate::web::error::WebError;
use crate::web::reports::{ReportQuery, csv_name, csv_response, load, to_csv, to_json};

/// The reports' route.
pub fn router() -> Router<AppState> {
    Router::new().route("/reports", get(report))
}

async fn report(
    State(state): State<AppState>,
    ApiUser(_me): ApiUser,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(q) = q.map_err(|e| bad(e.body_text()))?;
    let csv = match q.format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => None,
        Some("csv") => Some(q.table()?),
        Some(other) => {
            return Err(WebError::BadRequest(format!(
                "format `{}` is not one: json or csv",
                other.chars().take(40).collect::<String>()
            )));
        }
    };
    let named = load(&state, &q).await?;
    Ok(match csv {
        None => Json(to_json(&named)).into_response(),
        Some(table) => csv_response(to_csv(&named, table), &csv_name(&named, table)),
    })
}
