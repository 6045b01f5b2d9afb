//! RFC 7047 values (section 5.1): an [`Atom`] (string, integer, real,
//! boolean, uuid, named-uuid), a set of atoms or a map of atom pairs, with
//! serde in the wire forms `["uuid", "..."]`, `["named-uuid", "..."]`,
//! `["set", [...]]` and `["map", [[k, v], ...]]`. A lone atom where a set is
//! expected is a one-element set, as the RFC allows.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value as Json};

use crate::error::shorten;

/// A row's UUID in its canonical text form (8-4-4-4-12 hex digits, lower case).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(String);

impl Uuid {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Uuid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let groups: Vec<&str> = s.split('-').collect();
        let shape = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
        if !shape || !groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(format!("'{}' is not a UUID (expected 8-4-4-4-12 hex digits)", shorten(s)));
        }
        Ok(Uuid(s.to_ascii_lowercase()))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One scalar of a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Atom {
    String(String),
    Integer(i64),
    Real(f64),
    Boolean(bool),
    Uuid(Uuid),
    /// A row inserted earlier in the same transaction, by its `uuid-name`.
    NamedUuid(String),
}

impl Atom {
    pub fn named(uuid_name: impl Into<String>) -> Atom {
        Atom::NamedUuid(uuid_name.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// A real; an integer is a real too (JSON does not tell `1.0` from `1`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Atom::Real(r) => Some(*r),
            Atom::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_uuid(&self) -> Option<&Uuid> {
        match self {
            Atom::Uuid(u) => Some(u),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            Atom::String(s) => json!(s),
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::Uuid(u) => json!(["uuid", u.as_str()]),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    pub fn from_json(v: &Json) -> Result<Atom, String> {
        match v {
            Json::String(s) => Ok(Atom::String(s.clone())),
            Json::Bool(b) => Ok(Atom::Boolean(*b)),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Ok(Atom::Integer(i)),
                None => n.as_f64().map(Atom::Real).ok_or_else(|| format!("number {n} is out of range")),
            },
            Json::Array(a) => match a.as_slice() {
                [tag, Json::String(u)] if tag == "uuid" => u.parse().map(Atom::Uuid),
                [tag, Json::String(n)] if tag == "named-uuid" => Ok(Atom::NamedUuid(n.clone())),
                _ => Err(format!("{} is not an atom", shorten(&v.to_string()))),
            },
            _ => Err(format!("{} is not an atom", shorten(&v.to_string()))),
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Atom {
        Atom::String(s.to_string())
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Atom {
        Atom::String(s)
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Atom {
        Atom::Integer(i)
    }
}
impl From<u16> for Atom {
    fn from(i: u16) -> Atom {
        Atom::Integer(i.into())
    }
}
impl From<f64> for Atom {
    fn from(r: f64) -> Atom {
        Atom::Real(r)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Atom {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Atom {
        Atom::Uuid(u)
    }
}
impl From<&Uuid> for Atom {
    fn from(u: &Uuid) -> Atom {
        Atom::Uuid(u.clone())
    }
}

/// A column's value: one atom, a set, or a map.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Atom(Atom),
    Set(Vec<Atom>),
    Map(Vec<(Atom, Atom)>),
}

impl Value {
    /// The empty set: how an optional column says "none".
    pub fn empty() -> Value {
        Value::Set(Vec::new())
    }

    pub fn set<A: Into<Atom>>(atoms: impl IntoIterator<Item = A>) -> Value {
        Value::Set(atoms.into_iter().map(Into::into).collect())
    }

    pub fn map<K: Into<Atom>, V: Into<Atom>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// The atoms of a set (a lone atom is a one-element set; a map has none).
    pub fn atoms(&self) -> &[Atom] {
        match self {
            Value::Atom(a) => std::slice::from_ref(a),
            Value::Set(s) => s,
            Value::Map(_) => &[],
        }
    }

    /// An optional column's value: the set's only (first) atom.
    pub fn first(&self) -> Option<&Atom> {
        self.atoms().first()
    }

    pub fn as_str(&self) -> Option<&str> {
        self.first().and_then(Atom::as_str)
    }

    pub fn as_i64(&self) -> Option<i64> {
        self.first().and_then(Atom::as_i64)
    }

    pub fn as_uuid(&self) -> Option<&Uuid> {
        self.first().and_then(Atom::as_uuid)
    }

    pub fn uuids(&self) -> Vec<Uuid> {
        self.atoms().iter().filter_map(Atom::as_uuid).cloned().collect()
    }

    pub fn integers(&self) -> Vec<i64> {
        self.atoms().iter().filter_map(Atom::as_i64).collect()
    }

    pub fn strings(&self) -> Vec<String> {
        self.atoms().iter().filter_map(Atom::as_str).map(str::to_string).collect()
    }

    /// The string-to-string pairs of a map (`external_ids`, `other_config`).
    pub fn string_map(&self) -> BTreeMap<String, String> {
        match self {
            Value::Map(pairs) => pairs
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            Value::Atom(a) => a.to_json(),
            Value::Set(s) => json!(["set", s.iter().map(Atom::to_json).collect::<Vec<_>>()]),
            Value::Map(m) => {
                json!(["map", m.iter().map(|(k, v)| json!([k.to_json(), v.to_json()])).collect::<Vec<_>>()])
            }
        }
    }

    pub fn from_json(v: &Json) -> Result<Value, String> {
        let bad = || format!("{} is not an OVSDB value", shorten(&v.to_string()));
        match v.as_array().map(Vec::as_slice) {
            Some([tag, Json::Array(items)]) if tag == "set" => {
                items.iter().map(Atom::from_json).collect::<Result<_, _>>().map(Value::Set)
            }
            Some([tag, Json::Array(pairs)]) if tag == "map" => pairs
                .iter()
                .map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([k, v]) => Ok((Atom::from_json(k)?, Atom::from_json(v)?)),
                    _ => Err(bad()),
                })
                .collect::<Result<_, _>>()
                .map(Value::Map),
            Some([tag, _]) if tag == "set" || tag == "map" => Err(bad()),
            _ => Atom::from_json(v).map(Value::Atom),
        }
    }
}

impl<A: Into<Atom>> From<A> for Value {
    fn from(a: A) -> Value {
        Value::Atom(a.into())
    }
}

macro_rules! serde_via_json {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.to_json().serialize(s)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::from_json(&Json::deserialize(d)?).map_err(D::Error::custom)
            }
        }
    };
}
serde_via_json!(Atom);
serde_via_json!(Value);

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        json!(["uuid", self.0]).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Atom::deserialize(d)? {
            Atom::Uuid(u) => Ok(u),
            other => Err(D::Error::custom(format!("{} is not a uuid", other.to_json()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "0b6ad4a6-4bd4-4d7f-9d8e-2b1a2f7d8c11";

    #[test]
    fn wire_forms_both_ways() {
        let u: Uuid = U.parse().unwrap();
        let cases = [
            (Value::from("br0"), json!("br0")),
            (Value::from(42i64), json!(42)),
            (Value::from(1.5), json!(1.5)),
            (Value::from(true), json!(true)),
            (Value::from(u.clone()), json!(["uuid", U])),
            (Value::from(Atom::named("port")), json!(["named-uuid", "port"])),
            (Value::set([10i64, 20]), json!(["set", [10, 20]])),
            (Value::empty(), json!(["set", []])),
            (Value::map([("k", "v")]), json!(["map", [["k", "v"]]])),
        ];
        for (value, wire) in cases {
            assert_eq!(serde_json::to_value(&value).unwrap(), wire);
            assert_eq!(serde_json::from_value::<Value>(wire.clone()).unwrap(), value, "{wire}");
        }
        assert_eq!(serde_json::from_value::<Uuid>(json!(["uuid", U])).unwrap(), u);
    }

    #[test]
    fn readers_take_a_lone_atom_as_a_set() {
        let v = |j: Json| Value::from_json(&j).unwrap();
        assert_eq!(v(json!(["set", []])).as_i64(), None);
        assert_eq!(v(json!(5)).as_i64(), Some(5));
        assert_eq!(v(json!(["set", [7]])).as_i64(), Some(7));
        assert_eq!(v(json!(["set", [1, 2]])).integers(), vec![1, 2]);
        assert_eq!(v(json!(["uuid", U])).uuids(), vec![U.parse().unwrap()]);
        assert_eq!(v(json!(["map", [["k", "v"], [1, "x"]]])).string_map().len(), 1);
        assert!(v(json!("junk")).string_map().is_empty());
    }

    #[test]
    fn malformed_values_are_errors_naming_them() {
        for bad in [
            json!(null),
            json!({}),
            json!(["set", 1]),
            json!(["map", [["k"]]]),
            json!(["uuid", "x"]),
            json!([1, 2]),
        ] {
            let e = Value::from_json(&bad).unwrap_err();
            assert!(e.contains("not"), "{bad}: {e}");
        }
        assert!("0B6AD4A6-4BD4-4D7F-9D8E-2B1A2F7D8C11".parse::<Uuid>().unwrap().as_str() == U);
        assert!("0b6ad4a6-4bd4-4d7f-9d8e-2b1a2f7d8c1".parse::<Uuid>().is_err());
    }
}
