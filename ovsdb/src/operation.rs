//! RFC 7047 section 5.2: the operations of a `transact` request, their
//! `where` conditions and mutations, a [`Transaction`] builder, and the
//! typed per-operation results ([`OpResult`]).

use serde_json::{json, Map, Value as Json};

use crate::error::{shorten, OpError};
use crate::row::Row;
use crate::value::{Uuid, Value};

/// A `where` clause's comparison (RFC 7047 5.1 `<function>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
    Includes,
    Excludes,
}

impl Function {
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Lt => "<",
            Function::Le => "<=",
            Function::Eq => "==",
            Function::Ne => "!=",
            Function::Ge => ">=",
            Function::Gt => ">",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }
}

/// One `[column, function, value]` of a `where` clause.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub column: String,
    pub function: Function,
    pub value: Value,
}

impl Condition {
    pub fn new(column: &str, function: Function, value: impl Into<Value>) -> Condition {
        Condition { column: column.to_string(), function, value: value.into() }
    }

    pub fn eq(column: &str, value: impl Into<Value>) -> Condition {
        Condition::new(column, Function::Eq, value)
    }

    pub fn includes(column: &str, value: impl Into<Value>) -> Condition {
        Condition::new(column, Function::Includes, value)
    }

    /// The row whose `_uuid` is `uuid`.
    pub fn uuid(uuid: &Uuid) -> Condition {
        Condition::eq("_uuid", uuid)
    }

    pub fn to_json(&self) -> Json {
        json!([self.column, self.function.as_str(), self.value.to_json()])
    }
}

/// A mutation's operator (RFC 7047 5.1 `<mutator>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutator {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Insert,
    Delete,
}

impl Mutator {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }
}

/// One `[column, mutator, value]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    pub column: String,
    pub mutator: Mutator,
    pub value: Value,
}

impl Mutation {
    pub fn new(column: &str, mutator: Mutator, value: impl Into<Value>) -> Mutation {
        Mutation { column: column.to_string(), mutator, value: value.into() }
    }

    pub fn to_json(&self) -> Json {
        json!([self.column, self.mutator.as_str(), self.value.to_json()])
    }
}

/// `wait`'s `until`: wait until the selected rows are (or are not) `rows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    Equal,
    NotEqual,
}

/// One operation of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    /// `uuid_name` lets later operations of the same transaction refer to
    /// the new row as `Atom::NamedUuid`.
    Insert {
        table: String,
        row: Row,
        uuid_name: Option<String>,
    },
    /// `columns: None` selects every column.
    Select {
        table: String,
        conditions: Vec<Condition>,
        columns: Option<Vec<String>>,
    },
    Update {
        table: String,
        conditions: Vec<Condition>,
        row: Row,
    },
    Mutate {
        table: String,
        conditions: Vec<Condition>,
        mutations: Vec<Mutation>,
    },
    Delete {
        table: String,
        conditions: Vec<Condition>,
    },
    /// A precondition: fails with "timed out" unless the `columns` of the
    /// rows matching `conditions` are (`Until::Equal`) or are not `rows`
    /// within `timeout_ms` (0: at once; None: the server's default, forever).
    Wait {
        table: String,
        conditions: Vec<Condition>,
        columns: Vec<String>,
        until: Until,
        rows: Vec<Row>,
        timeout_ms: Option<u64>,
    },
    Commit {
        durable: bool,
    },
    Abort,
    /// Logged by the server with the transaction (ovsdb-server's log, `ovsdb-tool show-log`).
    Comment(String),
    /// Fails with "not owner" unless this session holds `lock`.
    Assert {
        lock: String,
    },
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Operation {
    pub fn insert(table: &str, row: Row, uuid_name: Option<&str>) -> Operation {
        Operation::Insert { table: table.into(), row, uuid_name: uuid_name.map(str::to_string) }
    }

    pub fn select(table: &str, conditions: Vec<Condition>, columns: &[&str]) -> Operation {
        Operation::Select { table: table.into(), conditions, columns: Some(strings(columns)) }
    }

    pub fn update(table: &str, conditions: Vec<Condition>, row: Row) -> Operation {
        Operation::Update { table: table.into(), conditions, row }
    }

    pub fn mutate(table: &str, conditions: Vec<Condition>, mutations: Vec<Mutation>) -> Operation {
        Operation::Mutate { table: table.into(), conditions, mutations }
    }

    pub fn delete(table: &str, conditions: Vec<Condition>) -> Operation {
        Operation::Delete { table: table.into(), conditions }
    }

    /// A `wait` with timeout 0: the transaction fails at once (error
    /// "timed out", at this operation's index) unless the rows matching
    /// `conditions`, compared on `columns`, are exactly `rows`.
    pub fn wait_now(table: &str, conditions: Vec<Condition>, columns: &[&str], rows: Vec<Row>) -> Operation {
        Operation::Wait {
            table: table.into(),
            conditions,
            columns: strings(columns),
            until: Until::Equal,
            rows,
            timeout_ms: Some(0),
        }
    }

    pub fn comment(text: impl Into<String>) -> Operation {
        Operation::Comment(text.into())
    }

    /// The `op` name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Insert { .. } => "insert",
            Operation::Select { .. } => "select",
            Operation::Update { .. } => "update",
            Operation::Mutate { .. } => "mutate",
            Operation::Delete { .. } => "delete",
            Operation::Wait { .. } => "wait",
            Operation::Commit { .. } => "commit",
            Operation::Abort => "abort",
            Operation::Comment(_) => "comment",
            Operation::Assert { .. } => "assert",
        }
    }

    pub fn to_json(&self) -> Json {
        let conds = |c: &[Condition]| Json::Array(c.iter().map(Condition::to_json).collect());
        let mut o = Map::new();
        o.insert("op".into(), json!(self.name()));
        match self {
            Operation::Insert { table, row, uuid_name } => {
                o.insert("table".into(), json!(table));
                o.insert("row".into(), row.to_json());
                if let Some(n) = uuid_name {
                    o.insert("uuid-name".into(), json!(n));
                }
            }
            Operation::Select { table, conditions, columns } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conds(conditions));
                if let Some(c) = columns {
                    o.insert("columns".into(), json!(c));
                }
            }
            Operation::Update { table, conditions, row } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conds(conditions));
                o.insert("row".into(), row.to_json());
            }
            Operation::Mutate { table, conditions, mutations } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conds(conditions));
                o.insert("mutations".into(), Json::Array(mutations.iter().map(Mutation::to_json).collect()));
            }
            Operation::Delete { table, conditions } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conds(conditions));
            }
            Operation::Wait { table, conditions, columns, until, rows, timeout_ms } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conds(conditions));
                o.insert("columns".into(), json!(columns));
                let until = match until {
                    Until::Equal => "==",
                    Until::NotEqual => "!=",
                };
                o.insert("until".into(), json!(until));
                o.insert("rows".into(), Json::Array(rows.iter().map(Row::to_json).collect()));
                if let Some(t) = timeout_ms {
                    o.insert("timeout".into(), json!(t));
                }
            }
            Operation::Commit { durable } => {
                o.insert("durable".into(), json!(durable));
            }
            Operation::Abort => {}
            Operation::Comment(text) => {
                o.insert("comment".into(), json!(text));
            }
            Operation::Assert { lock } => {
                o.insert("lock".into(), json!(lock));
            }
        }
        Json::Object(o)
    }
}

impl serde::Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// A `transact` request being built: operations run in order, atomically.
#[derive(Clone, Debug, PartialEq)]
pub struct Transaction {
    pub database: String,
    pub ops: Vec<Operation>,
}

impl Transaction {
    pub fn new(database: &str) -> Transaction {
        Transaction { database: database.to_string(), ops: Vec::new() }
    }

    /// Builder: append `op`.
    pub fn with(mut self, op: Operation) -> Transaction {
        self.ops.push(op);
        self
    }

    /// Append `op`; its index, under which its result (or error) comes back.
    pub fn add(&mut self, op: Operation) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    pub fn extend(&mut self, ops: impl IntoIterator<Item = Operation>) {
        self.ops.extend(ops);
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Write the `params` of the `transact` request to `out`, one operation
    /// at a time: only one operation is ever a JSON tree.
    pub fn write_params(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.push(b'[');
        serde_json::to_writer(&mut *out, &self.database)?;
        for op in &self.ops {
            out.push(b',');
            serde_json::to_writer(&mut *out, &op.to_json())?;
        }
        out.push(b']');
        Ok(())
    }

    /// The `params` of the `transact` request.
    pub fn to_params(&self) -> Json {
        let mut p = Vec::with_capacity(self.ops.len() + 1);
        p.push(json!(self.database));
        p.extend(self.ops.iter().map(Operation::to_json));
        Json::Array(p)
    }
}

/// The result of one successful operation, typed by what the operation was.
#[derive(Clone, Debug, PartialEq)]
pub enum OpResult {
    Insert {
        uuid: Uuid,
    },
    Select {
        rows: Vec<Row>,
    },
    /// Rows updated, mutated or deleted.
    Count(u64),
    /// wait, commit, abort, comment, assert: nothing to report.
    Empty,
}

impl OpResult {
    /// The rows of a select (none for any other result).
    pub fn rows(&self) -> &[Row] {
        match self {
            OpResult::Select { rows } => rows,
            _ => &[],
        }
    }

    pub fn uuid(&self) -> Option<&Uuid> {
        match self {
            OpResult::Insert { uuid } => Some(uuid),
            _ => None,
        }
    }

    pub fn count(&self) -> Option<u64> {
        match self {
            OpResult::Count(n) => Some(*n),
            _ => None,
        }
    }
}

/// How a `transact` reply failed to be a list of results.
#[derive(Debug, PartialEq)]
pub(crate) enum Failure {
    /// An operation (or the commit) failed.
    Op(OpError),
    /// The reply's shape is wrong.
    Malformed(String),
}

/// Check a `transact` reply against the operations sent: the typed results,
/// or the first failed operation, or what is malformed.
pub(crate) fn parse_results(result: &Json, ops: &[Operation]) -> Result<Vec<OpResult>, Failure> {
    let Json::Array(results) = result else {
        return Err(Failure::Malformed(format!("transact result is not an array: {}", short(result))));
    };
    for (index, r) in results.iter().enumerate() {
        if let Some(error) = r.get("error").filter(|e| !e.is_null()) {
            let error = error.as_str().map_or_else(|| short(error), str::to_string);
            let details = r.get("details").and_then(Json::as_str).map(str::to_string);
            let op = ops.get(index).map_or("commit", Operation::name);
            return Err(Failure::Op(OpError::new(index, op, error, details)));
        }
    }
    if results.len() != ops.len() {
        return Err(Failure::Malformed(format!(
            "transact returned {} results for {} operations",
            results.len(),
            ops.len()
        )));
    }
    ops.iter()
        .zip(results)
        .enumerate()
        .map(|(i, (op, r))| {
            parse_one(op, r)
                .map_err(|why| Failure::Malformed(format!("result {i} ({}): {why}: {}", op.name(), short(r))))
        })
        .collect()
}

fn parse_one(op: &Operation, r: &Json) -> Result<OpResult, String> {
    match op {
        Operation::Insert { .. } => {
            let uuid = serde_json::from_value(r.get("uuid").cloned().unwrap_or(Json::Null));
            uuid.map(|uuid| OpResult::Insert { uuid }).map_err(|e| format!("no uuid ({e})"))
        }
        Operation::Select { .. } => {
            let rows = r.get("rows").and_then(Json::as_array).ok_or("no rows")?;
            rows.iter().map(Row::from_json).collect::<Result<_, _>>().map(|rows| OpResult::Select { rows })
        }
        Operation::Update { .. } | Operation::Mutate { .. } | Operation::Delete { .. } => {
            r.get("count").and_then(Json::as_u64).map(OpResult::Count).ok_or_else(|| "no count".into())
        }
        _ => Ok(OpResult::Empty),
    }
}

fn short(v: &Json) -> String {
    shorten(&v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OpErrorKind;
    use crate::value::Atom;

    const U: &str = "0b6ad4a6-4bd4-4d7f-9d8e-2b1a2f7d8c11";

    #[test]
    fn operations_serialise_as_rfc_7047() {
        let mut t = Transaction::new("Open_vSwitch");
        t.add(Operation::wait_now("Bridge", vec![Condition::eq("name", "br0")], &["name"], vec![]));
        t.add(Operation::insert(
            "Port",
            Row::new().with("name", "p1").with("interfaces", Atom::named("i")),
            Some("p"),
        ));
        t.add(Operation::mutate(
            "Bridge",
            vec![Condition::eq("name", "br0")],
            vec![Mutation::new("ports", Mutator::Insert, Value::set([Atom::named("p")]))],
        ));
        t.add(Operation::comment("hello"));
        assert_eq!(
            t.to_params(),
            json!(["Open_vSwitch",
                {"op": "wait", "table": "Bridge", "where": [["name", "==", "br0"]], "columns": ["name"],
                 "until": "==", "rows": [], "timeout": 0},
                {"op": "insert", "table": "Port", "row": {"name": "p1", "interfaces": ["named-uuid", "i"]},
                 "uuid-name": "p"},
                {"op": "mutate", "table": "Bridge", "where": [["name", "==", "br0"]],
                 "mutations": [["ports", "insert", ["set", [["named-uuid", "p"]]]]]},
                {"op": "comment", "comment": "hello"}])
        );
        // What goes on the wire is written op by op; it says the same.
        let mut wire = Vec::new();
        t.write_params(&mut wire).unwrap();
        assert_eq!(serde_json::from_slice::<Json>(&wire).unwrap(), t.to_params());
    }

    #[test]
    fn results_typed_per_operation() {
        let ops = vec![
            Operation::wait_now("Bridge", vec![], &["name"], vec![]),
            Operation::insert("Port", Row::new(), None),
            Operation::select("Port", vec![], &["name"]),
            Operation::delete("Port", vec![]),
        ];
        let ok = json!([{}, {"uuid": ["uuid", U]}, {"rows": [{"name": "p1"}]}, {"count": 2}]);
        let r = parse_results(&ok, &ops).unwrap();
        assert_eq!(r[0], OpResult::Empty);
        assert_eq!(r[1].uuid().unwrap().as_str(), U);
        assert_eq!(r[2].rows()[0].str("name"), "p1");
        assert_eq!(r[3].count(), Some(2));

        let Failure::Op(e) = parse_results(&json!([{"error": "timed out"}, null]), &ops).unwrap_err() else {
            panic!()
        };
        assert_eq!((e.index, e.op.as_str(), &e.kind), (0, "wait", &OpErrorKind::TimedOut));
        let commit = json!([{}, {"uuid": ["uuid", U]}, {"rows": []}, {"count": 0},
            {"error": "constraint violation", "details": "identical values (\"p1\")"}]);
        let Failure::Op(e) = parse_results(&commit, &ops).unwrap_err() else { panic!() };
        assert!(e.index == 4 && e.op == "commit" && e.is_unique_index_violation(), "{e:?}");
        assert!(matches!(parse_results(&json!([{}]), &ops), Err(Failure::Malformed(_))));
        assert!(matches!(parse_results(&json!({"x": 1}), &ops), Err(Failure::Malformed(_))));
        let no_uuid = json!([{}, {"uuid": "x"}, {"rows": []}, {"count": 0}]);
        let Err(Failure::Malformed(m)) = parse_results(&no_uuid, &ops) else { panic!() };
        assert!(m.contains("result 1 (insert)"), "{m}");
    }
}
