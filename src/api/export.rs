//! `GET /names/export`: the records a search finds, as CSV (RFC 4180) or NDJSON, a row at a
//! time so that an export of any size is streamed page by page.
//!
//! CSV has a fixed column order ([`COLUMNS`]); a cell that a spreadsheet would read as a
//! formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading
//! `'`, so a name's description cannot run code on the operator who opens the file.

use serde_json::Value;

use crate::api::response::record_view;
use crate::core::registry::NameRecord;
use crate::core::validate::FieldError;

/// The CSV columns, in order. `tags` is the tags as one JSON object.
pub const COLUMNS: [&str; 13] = [
    "hostname",
    "application",
    "role",
    "environment",
    "number",
    "status",
    "owner",
    "description",
    "tags",
    "created_at",
    "created_by",
    "released_at",
    "released_by",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// Reads the `format` parameter of a query string (`csv` when absent).
    pub fn from_query(query: &str) -> Result<Self, FieldError> {
        let value = query
            .split('&')
            .filter_map(|p| p.split_once('=').or(Some((p, ""))))
            .find(|(k, _)| *k == "format")
            .map(|(_, v)| v);
        match value {
            None | Some("csv") => Ok(Self::Csv),
            Some("ndjson") => Ok(Self::Ndjson),
            Some(_) => Err(FieldError::new("format", "must be csv or ndjson")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8; header=present",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    /// The file name a browser saves the export as.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Csv => "names.csv",
            Self::Ndjson => "names.ndjson",
        }
    }

    /// What comes before the first record: the header row of a CSV.
    pub fn start(self) -> String {
        match self {
            Self::Csv => csv_row(COLUMNS.iter().map(|c| c.to_string())),
            Self::Ndjson => String::new(),
        }
    }

    /// One record as a line (CRLF-ended for CSV, LF for NDJSON).
    pub fn row(self, record: &NameRecord) -> String {
        let view = record_view(record);
        match self {
            Self::Ndjson => format!("{view}\n"),
            Self::Csv => csv_row(COLUMNS.iter().map(|column| match &view[*column] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Object(tags) if tags.is_empty() => String::new(),
                other => other.to_string(),
            })),
        }
    }
}

/// One CSV line: each cell neutralised and quoted where it must be, CRLF at the end.
fn csv_row(cells: impl Iterator<Item = String>) -> String {
    let mut line = cells.map(|c| csv_cell(&c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// A cell of RFC 4180: quoted when it holds a comma, a quote or a line break, quotes
/// doubled; a formula's first character defused first.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vault::Record;
    use serde_json::json;

    fn record(description: &str) -> NameRecord {
        NameRecord::from_data(
            json!({"hostname": "web-app-prod-vm1", "application": "web", "role": "app",
                   "environment": "prod", "number": 1, "status": "issued",
                   "created_at": "2026-11-27T19:30:45Z", "created_by": "ci",
                   "description": description, "tags": {"team": "=x", "k": "a,b"}})
            .as_object()
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_csv_row_has_the_fixed_columns_and_quotes_what_rfc_4180_says() {
        assert_eq!(
            Format::Csv.start(),
            "hostname,application,role,environment,number,status,owner,description,tags,\
             created_at,created_by,released_at,released_by\r\n"
        );
        let row = Format::Csv.row(&record("line one\nsaid \"hi\", then"));
        assert_eq!(
            row,
            "web-app-prod-vm1,web,app,prod,1,issued,,\"line one\nsaid \"\"hi\"\", then\",\
             \"{\"\"k\"\":\"\"a,b\"\",\"\"team\"\":\"\"=x\"\"}\",2026-11-27T19:30:45Z,ci,,\r\n"
        );
    }

    #[test]
    fn a_cell_that_would_start_a_formula_is_neutralised() {
        for formula in ["=HYPERLINK(\"x\")", "+1", "-1", "@SUM(A1)", "\tx"] {
            let row = Format::Csv.row(&record(formula));
            let cell = row.split(",2026").next().unwrap();
            assert!(cell.contains(&format!("'{}", &formula[..1])), "{row}");
        }
    }

    #[test]
    fn an_ndjson_line_is_the_record_as_get_answers_it() {
        let line = Format::Ndjson.row(&record("d"));
        let value: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(value, record_view(&record("d")));
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
    }

    #[test]
    fn the_format_is_csv_unless_asked_otherwise() {
        assert_eq!(Format::from_query("owner=x"), Ok(Format::Csv));
        assert_eq!(Format::from_query("format=ndjson"), Ok(Format::Ndjson));
        assert_eq!(
            Format::from_query("format=xlsx").unwrap_err().field,
            "format"
        );
    }
}
