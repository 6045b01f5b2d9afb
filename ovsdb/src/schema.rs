//! A database schema as `get_schema` returns it, reduced to what a client
//! checks on connect: the tables and their columns. Column types are kept
//! as the server sent them, for callers that want more.

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// Columns every table has without declaring them (RFC 7047 3.2).
const IMPLICIT: &[&str] = &["_uuid", "_version"];

#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub name: String,
    pub version: String,
    pub tables: BTreeMap<String, TableSchema>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableSchema {
    /// Column name to its `<column-schema>` as sent.
    pub columns: BTreeMap<String, Json>,
}

/// The first table or column of a requirement that the schema lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    pub table: String,
    pub column: Option<String>,
}

impl Schema {
    pub fn from_json(v: &Json) -> Result<Schema, String> {
        let name = v.get("name").and_then(Json::as_str).ok_or("schema has no name")?;
        let version = v.get("version").and_then(Json::as_str).unwrap_or_default();
        let tables = v.get("tables").and_then(Json::as_object).ok_or("schema has no tables")?;
        let tables = tables
            .iter()
            .map(|(t, ts)| {
                let cols = ts.get("columns").and_then(Json::as_object);
                let cols = cols.ok_or_else(|| format!("schema table {t} has no columns"))?;
                let columns = cols.iter().map(|(c, s)| (c.clone(), s.clone())).collect();
                Ok((t.clone(), TableSchema { columns }))
            })
            .collect::<Result<_, String>>()?;
        Ok(Schema { name: name.to_string(), version: version.to_string(), tables })
    }

    pub fn has_column(&self, table: &str, column: &str) -> bool {
        self.tables.get(table).is_some_and(|t| IMPLICIT.contains(&column) || t.columns.contains_key(column))
    }

    /// The first of `required`'s tables or columns that this schema lacks.
    pub fn missing(&self, required: crate::row::Requirements<'_>) -> Option<Missing> {
        for (table, columns) in required {
            let Some(t) = self.tables.get(*table) else {
                return Some(Missing { table: table.to_string(), column: None });
            };
            if let Some(c) = columns.iter().find(|c| !IMPLICIT.contains(c) && !t.columns.contains_key(**c)) {
                return Some(Missing { table: table.to_string(), column: Some(c.to_string()) });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requirements_checked() {
        let s = Schema::from_json(&json!({"name": "db", "version": "1.0.0", "tables": {
            "T": {"columns": {"a": {"type": "string"}}}}}))
        .unwrap();
        assert_eq!(s.missing(&[("T", &["_uuid", "a"])]), None);
        assert_eq!(
            s.missing(&[("T", &["b"])]),
            Some(Missing { table: "T".into(), column: Some("b".into()) })
        );
        assert_eq!(s.missing(&[("U", &[])]), Some(Missing { table: "U".into(), column: None }));
        assert!(s.has_column("T", "_version") && !s.has_column("U", "a"));
        assert!(Schema::from_json(&json!({"name": "db"})).is_err());
    }
}
