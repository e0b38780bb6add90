//! The console's reports page (`/console/reports`): a period, a grouping,
//! the summary and backlog tables, their charts as inline SVG and a CSV of
//! each table (`/console/reports.csv?…&table=`). `web::reports` builds them.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;

use super::*;
use crate::domain::report::{AGE_BANDS, Grouping};
use crate::web::reports::{
    ReportQuery, backlog_rows, charts, csv_name, csv_response, load, summary_rows, to_csv,
};

/// `GET /console/reports?from=&to=&group=&tz=`
pub(super) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        let q = q.map(|Query(q)| q).unwrap_or_default();
        let mut c = base(&state, "Reports", Some(me));
        let groups: Vec<Value> = Grouping::ALL
            .iter()
            .map(|g| {
                json!({
                    "value": g.as_str(),
                    "label": g.label(),
                    "selected": q.group.as_deref().unwrap_or("day") == g.as_str(),
                })
            })
            .collect();
        c.insert("groups".into(), json!(groups));
        c.insert(
            "bands".into(),
            json!(AGE_BANDS.iter().map(|(n, _)| *n).collect::<Vec<_>>()),
        );
        match load(&state, &q).await {
            Ok(named) => {
                let r = &named.report;
                let link = q.to_query(r);
                c.insert(
                    "from".into(),
                    json!(crate::domain::report::day_name(r.period.first_day)),
                );
                c.insert(
                    "to".into(),
                    json!(crate::domain::report::day_name(r.period.last_day)),
                );
                c.insert("tz".into(), json!(r.period.zone()));
                c.insert("group_label".into(), json!(r.grouping.label()));
                c.insert("rows".into(), json!(summary_rows(&named)));
                c.insert("backlog".into(), json!(backlog_rows(&named)));
                c.insert(
                    "backlog_at".into(),
                    json!(crate::web::files::time_html(r.backlog_at)),
                );
                c.insert("charts".into(), json!(charts(&named)));
                c.insert("query".into(), json!(link));
                c.insert("error".into(), Value::Null);
                Ok(state
                    .pages
                    .render(StatusCode::OK, "console_reports", &Value::Object(c)))
            }
            Err(WebError::BadRequest(why)) => {
                c.insert("from".into(), json!(q.from.unwrap_or_default()));
                c.insert("to".into(), json!(q.to.unwrap_or_default()));
                c.insert("tz".into(), json!(q.tz.unwrap_or_default()));
                c.insert("error".into(), json!(why));
                Ok(state.pages.render(
                    StatusCode::BAD_REQUEST,
                    "console_reports",
                    &Value::Object(c),
                ))
            }
            Err(e) => Err(e),
        }
    })
    .await
}

/// `GET /console/reports.csv?…&table=summary|backlog`
pub(super) async fn csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Response {
    page(&state, &headers, async |_me: &Staff| {
        let Query(q) = q.map_err(|e| WebError::BadRequest(e.body_text()))?;
        let table = q.table()?;
        let named = load(&state, &q).await?;
        Ok(csv_response(
            to_csv(&named, table),
            &csv_name(&named, table),
        ))
    })
    .await
}
