//! Plain-text tables: a header, then one aligned row per item; long cells are cut.

use serde_json::Value;

/// Widest a cell may be before it is cut.
const MAX_CELL: usize = 60;

/// A table of `rows` under `headers`.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cut = |cell: &str| -> String {
        let cell = cell.replace('\n', " ");
        if cell.chars().count() > MAX_CELL {
            format!("{}…", cell.chars().take(MAX_CELL - 1).collect::<String>())
        } else {
            cell
        }
    };
    let rows: Vec<Vec<String>> = rows.iter().map(|row| row.iter().map(|c| cut(c)).collect()).collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// A JSON value as a cell: strings bare, `null` as `-`, links as their path.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Object(o) if o.contains_key("_self") => cell(&o["_self"]),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// `key: value` lines for one resource, in the order of `keys`.
pub fn details(value: &Value, keys: &[&str]) -> String {
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    keys.iter()
        .map(|k| format!("{k:<width$}  {}\n", cell(&value[*k])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_long_cells_are_cut() {
        let out = render(
            &["ID", "URL"],
            &[vec!["1".into(), "x".repeat(80)], vec!["22".into(), "y".into()]],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ID  URL");
        assert!(lines[1].starts_with("1   xxx") && lines[1].ends_with('…'));
        assert_eq!(lines[2], "22  y");
    }

    #[test]
    fn cells_read_json_as_people_do() {
        assert_eq!(cell(&serde_json::json!(null)), "-");
        assert_eq!(
            cell(&serde_json::json!({"_self": "/restapi/v1/application/4"})),
            "/restapi/v1/application/4"
        );
        assert_eq!(cell(&serde_json::json!(["A", "B"])), "A,B");
        assert_eq!(cell(&serde_json::json!(500)), "500");
    }
}
