//! Rows as the server sends them ([`Row`]: column name to [`Value`]) and
//! the [`Table`] trait that typed row structs implement (see
//! [`crate::vswitch`] for the `Open_vSwitch` ones; another schema's tables
//! are added the same way).

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

use crate::error::shorten;
use crate::value::{Uuid, Value};

/// Some or all columns of one row. A `select` returns the columns it asked
/// for; an `insert`/`update` sends the columns it sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row(pub BTreeMap<String, Value>);

impl Row {
    pub fn new() -> Row {
        Row::default()
    }

    /// Builder: set `column` to `value`.
    pub fn with(mut self, column: &str, value: impl Into<Value>) -> Row {
        self.0.insert(column.to_string(), value.into());
        self
    }

    pub fn set(&mut self, column: &str, value: impl Into<Value>) {
        self.0.insert(column.to_string(), value.into());
    }

    pub fn get(&self, column: &str) -> Option<&Value> {
        self.0.get(column)
    }

    /// The row's `_uuid`, when selected.
    pub fn uuid(&self) -> Option<&Uuid> {
        self.get("_uuid").and_then(Value::as_uuid)
    }

    /// A string column; "" when absent.
    pub fn str(&self, column: &str) -> &str {
        self.get(column).and_then(Value::as_str).unwrap_or_default()
    }

    /// An optional (0 or 1 element) column.
    pub fn opt_i64(&self, column: &str) -> Option<i64> {
        self.get(column).and_then(Value::as_i64)
    }

    /// An optional string column; an empty string counts as none.
    pub fn opt_str(&self, column: &str) -> Option<String> {
        self.get(column).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
    }

    pub fn uuids(&self, column: &str) -> Vec<Uuid> {
        self.get(column).map(Value::uuids).unwrap_or_default()
    }

    pub fn integers(&self, column: &str) -> Vec<i64> {
        self.get(column).map(Value::integers).unwrap_or_default()
    }

    pub fn string_map(&self, column: &str) -> BTreeMap<String, String> {
        self.get(column).map(Value::string_map).unwrap_or_default()
    }

    pub fn to_json(&self) -> Json {
        Json::Object(self.0.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
    }

    pub fn from_json(v: &Json) -> Result<Row, String> {
        let obj = v.as_object().ok_or_else(|| format!("row {} is not an object", shorten(&v.to_string())))?;
        obj.iter()
            .map(|(k, v)| Value::from_json(v).map(|v| (k.clone(), v)).map_err(|e| format!("column {k}: {e}")))
            .collect::<Result<_, _>>()
            .map(Row)
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Row::from_json(&Json::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// A typed row struct for one table. `from_row` reads whichever of
/// `COLUMNS` the row has (a select may ask for fewer) and defaults the rest.
pub trait Table: Sized {
    /// The table's name in the schema.
    const NAME: &'static str;
    /// The columns the struct reads (declared, so that the schema can be
    /// checked for them on connect).
    const COLUMNS: &'static [&'static str];

    fn from_row(row: &Row) -> Self;
}

/// What a caller needs of a database: tables and their columns, checked
/// against the server's schema by [`crate::Connection::check_schema`].
pub type Requirements<'a> = &'a [(&'a str, &'a [&'a str])];
