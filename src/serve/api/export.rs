//! Answers as CSV, for spreadsheets: `format=csv`, or `Accept: text/csv`
//! when no `format` is given. RFC 4180: a header row, CRLF line ends, a
//! field quoted when it holds a comma, a quote or a line end (a quote
//! doubled inside), UTF-8 with no byte-order mark; an absent figure is an
//! empty field. Served as an attachment named after what it holds.

use axum::Json;
use axum::http::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::ApiError;

/// How an answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Csv,
}

impl Format {
    /// The `format` parameter: `json` or `csv`.
    pub(super) fn parse(given: Option<&str>) -> Result<Option<Format>, ApiError> {
        match given {
            None => Ok(None),
            Some("json") => Ok(Some(Format::Json)),
            Some("csv") => Ok(Some(Format::Csv)),
            Some(_) => Err(ApiError::bad("format must be json or csv")),
        }
    }

    /// The format asked for: the parameter, else CSV when `Accept` names
    /// `text/csv`, else JSON.
    pub(super) fn negotiate(given: Option<Format>, headers: &HeaderMap) -> Format {
        given.unwrap_or_else(|| {
            let accepts_csv = headers.get_all(ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| {
                v.split(',')
                    .any(|range| range.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv")))
            });
            if accepts_csv { Format::Csv } else { Format::Json }
        })
    }
}

/// `body` as JSON, or as the CSV that `csv` writes of it.
pub(super) fn answer<B: Serialize>(
    format: Format,
    body: B,
    csv: impl FnOnce(&B) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    match format {
        Format::Json => Ok(Json(body).into_response()),
        Format::Csv => csv(&body),
    }
}

/// A CSV answer named `name.csv`: `header`, then one record per row.
pub(super) fn csv<R: AsRef<[u8]>>(
    name: &str,
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<R>>,
) -> Result<Response, ApiError> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    w.write_record(header).map_err(|_| ApiError::internal())?;
    for row in rows {
        w.write_record(&row).map_err(|_| ApiError::internal())?;
    }
    let body = w.into_inner().map_err(|_| ApiError::internal())?;
    // Names are built from window ids and metric names: [A-Za-z0-9_-].
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\"")).map_err(|_| ApiError::internal())?;
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8; header=present")),
        (CONTENT_DISPOSITION, disposition),
    ];
    Ok((headers, body).into_response())
}

/// An optional figure as a CSV field: empty when absent.
pub(super) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}
