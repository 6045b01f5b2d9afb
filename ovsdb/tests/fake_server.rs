//! The client against an in-process fake server: a tokio UnixListener that
//! speaks just enough JSON-RPC for each case (answers, errors, silence,
//! split and garbled bytes, an oversize message). Needs no root and no
//! Open vSwitch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ovsdb_client::jsonrpc::Framer;
use ovsdb_client::{
    vswitch, Address, Atom, Backoff, Condition, Connection, Error, MonitorRequest, OpErrorKind, OpResult,
    Operation, Options, Row, Table, Transaction, Value,
};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const U1: &str = "0b6ad4a6-4bd4-4d7f-9d8e-2b1a2f7d8c11";

/// A socket path of its own per test (removed with its directory on drop).
struct Sock(PathBuf);

impl Sock {
    fn new() -> Sock {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ovsdb-fake-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Sock(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.join("db.sock")
    }

    fn addr(&self) -> Address {
        Address::Unix(self.path())
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server's end of one session: reads whole messages, writes raw bytes.
struct Peer {
    stream: UnixStream,
    framer: Framer,
    queued: Vec<Json>,
}

impl Peer {
    async fn accept(l: &UnixListener) -> Peer {
        let (stream, _) = l.accept().await.unwrap();
        Peer { stream, framer: Framer::default(), queued: vec![] }
    }

    /// The next message from the client; None at EOF.
    async fn recv(&mut self) -> Option<Json> {
        loop {
            if !self.queued.is_empty() {
                return Some(self.queued.remove(0));
            }
            let mut buf = [0u8; 4096];
            // A reset (the client closed with our bytes unread) ends the session too.
            let n = self.stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.queued.extend(self.framer.push(&buf[..n]).unwrap());
        }
    }

    async fn send(&mut self, msg: Json) {
        self.stream.write_all(msg.to_string().as_bytes()).await.unwrap();
    }

    async fn reply(&mut self, req: &Json, result: Json) {
        self.send(json!({"id": req["id"], "result": result, "error": null})).await;
    }
}

fn serve<F, Fut>(sock: &Sock, session: F) -> tokio::task::JoinHandle<()>
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = UnixListener::bind(sock.path()).unwrap();
    tokio::spawn(async move { session(Peer::accept(&l).await).await })
}

/// The server's session ends (it sees EOF where it waits for one) within 5 s.
async fn finish(server: tokio::task::JoinHandle<()>) {
    let done = tokio::time::timeout(Duration::from_secs(5), server).await;
    done.expect("the fake server's session did not end: the client kept the socket open").unwrap();
}

fn schema() -> Json {
    let cols = |names: &[&str]| -> Json {
        Json::Object(names.iter().map(|n| (n.to_string(), json!({"type": "string"}))).collect())
    };
    json!({"name": "Open_vSwitch", "version": "8.5.0", "tables": {
        "Open_vSwitch": {"columns": cols(&["bridges", "next_cfg", "cur_cfg"])},
        "Bridge": {"columns": cols(&["name", "datapath_type", "ports"])},
        "Port": {"columns": cols(&["name", "tag", "trunks", "interfaces"])},
        "Interface": {"columns": cols(&["name", "type", "external_ids", "ofport"])},
    }})
}

#[tokio::test]
async fn echo_both_ways() {
    let sock = Sock::new();
    let server = serve(&sock, |mut p| async move {
        // The server probes first: the client must answer with the same params.
        p.send(json!({"method": "echo", "params": ["probe"], "id": "e1"})).await;
        let mut seen_reply = false;
        while let Some(m) = p.recv().await {
            if m["id"] == "e1" {
                assert_eq!(m["result"], json!(["probe"]));
                seen_reply = true;
            } else if m["method"] == "echo" {
                let params = m["params"].clone();
                p.reply(&m, params).await;
            }
        }
        assert!(seen_reply, "the client did not answer the server's echo");
    });
    let (conn, _n) = Connection::connect(&sock.addr()).await.unwrap();
    conn.echo().await.unwrap();
    drop(conn);
    finish(server).await;
}

#[tokio::test]
async fn transact_results_are_typed_and_the_request_is_rfc_7047() {
    let sock = Sock::new();
    let server = serve(&sock, |mut p| async move {
        let req = p.recv().await.unwrap();
        assert_eq!(req["method"], "transact");
        assert_eq!(
            req["params"],
            json!(["Open_vSwitch",
                {"op": "insert", "table": "Port", "row": {"name": "p1", "tag": 42}, "uuid-name": "p"},
                {"op": "select", "table": "Bridge", "where": [["name", "==", "br0"]], "columns": ["name", "ports"]},
                {"op": "mutate", "table": "Bridge", "where": [["name", "==", "br0"]],
                 "mutations": [["ports", "insert", ["set", [["named-uuid", "p"]]]]]}])
        );
        let rows = json!([{"name": "br0", "ports": ["set", [["uuid", U1]]]}]);
        p.reply(&req, json!([{"uuid": ["uuid", U1]}, {"rows": rows}, {"count": 1}])).await;
    });
    let (conn, _n) = Connection::connect(&sock.addr()).await.unwrap();
    let mut t = Transaction::new("Open_vSwitch");
    t.add(Operation::insert("Port", Row::new().with("name", "p1").with("tag", 42i64), Some("p")));
    let sel = t.add(Operation::select("Bridge", vec![Condition::eq("name", "br0")], &["name", "ports"]));
    t.add(Operation::mutate(
        "Bridge",
        vec![Condition::eq("name", "br0")],
        vec![ovsdb_client::Mutation::new(
            "ports",
            ovsdb_client::Mutator::Insert,
            Value::set([Atom::named("p")]),
        )],
    ));
    let r = conn.transact(&t).await.unwrap();
    assert_eq!(r[0].uuid().unwrap().as_str(), U1);
    let b = vswitch::Bridge::from_row(&r[sel].rows()[0]);
    assert_eq!((b.name.as_str(), b.ports.len()), ("br0", 1));
    assert_eq!(r[2], OpResult::Count(1));
    finish(server).await;
}

#[tokio::test]
async fn errors_are_typed_variants() {
    let sock = Sock::new();
    let server = serve(&sock, |mut p| async move {
        // 1: a failed wait; 2: a unique index violated at commit; 3: a
        // JSON-RPC error; 4: get_schema of an unknown database, then list_dbs.
        let r = p.recv().await.unwrap();
        p.reply(&r, json!([{"error": "timed out"}])).await;
        let r = p.recv().await.unwrap();
        let details = "Transaction causes multiple rows in \"Port\" table to have identical values (\"p1\")";
        p.reply(&r, json!([{"uuid": ["uuid", U1]}, {"error": "constraint violation", "details": details}]))
            .await;
        let r = p.recv().await.unwrap();
        p.send(
            json!({"id": r["id"], "result": null, "error": {"error": "unknown method", "details": "frob"}}),
        )
        .await;
        let r = p.recv().await.unwrap();
        assert_eq!(r["method"], "get_schema");
        p.send(json!({"id": r["id"], "result": null, "error": "unknown database"})).await;
        let r = p.recv().await.unwrap();
        assert_eq!(r["method"], "list_dbs");
        p.reply(&r, json!(["Open_vSwitch", "_Server"])).await;
        // 5: a schema lacking a column the caller needs.
        let r = p.recv().await.unwrap();
        p.reply(&r, schema()).await;
        while p.recv().await.is_some() {}
    });
    let (conn, _n) = Connection::connect(&sock.addr()).await.unwrap();
    let wait = Operation::wait_now("Bridge", vec![Condition::eq("name", "br0")], &["name"], vec![]);
    let e = conn.transact(&Transaction::new("Open_vSwitch").with(wait)).await.unwrap_err();
    let op = e.op_error().expect("an operation error");
    assert_eq!((op.index, op.op.as_str(), &op.kind), (0, "wait", &OpErrorKind::TimedOut));
    assert!(op.is_wait_timeout());

    let insert = Operation::insert("Port", Row::new().with("name", "p1"), None);
    let e = conn.transact(&Transaction::new("Open_vSwitch").with(insert)).await.unwrap_err();
    let Error::Op(op) = &e else { panic!("{e:?}") };
    assert!(op.index == 1 && op.op == "commit" && op.is_unique_index_violation(), "{op:?}");
    assert!(op.details.as_deref().unwrap().contains("(\"p1\")"), "the server's details are kept: {op:?}");

    let e = conn.call("frob", json!([])).await.unwrap_err();
    assert!(
        matches!(&e, Error::Rpc { method, error, .. } if method == "frob" && error == "unknown method"),
        "{e:?}"
    );
    assert!(e.to_string().ends_with("rejected frob: unknown method: frob"), "{e}");

    let e = conn.get_schema("OVN_Northbound").await.unwrap_err();
    assert!(matches!(&e, Error::UnknownDatabase { database, .. } if database == "OVN_Northbound"), "{e:?}");
    assert!(e.to_string().contains("has no database OVN_Northbound (it has: Open_vSwitch, _Server)"), "{e}");

    // The fake schema's Interface table has no "error" column.
    let e = conn.check_schema(vswitch::DATABASE, vswitch::REQUIREMENTS).await.unwrap_err();
    let Error::SchemaMismatch { table, column, .. } = &e else { panic!("{e:?}") };
    assert_eq!((table.as_str(), column.as_deref()), ("Interface", Some("error")));
    assert!(e.to_string().contains("has no column error in table Interface"), "{e}");
    drop(conn);
    finish(server).await;
}

#[tokio::test]
async fn schema_checked_on_connect_passes_and_monitor_updates_arrive() {
    let sock = Sock::new();
    let server = serve(&sock, |mut p| async move {
        let r = p.recv().await.unwrap();
        let mut s = schema();
        s["tables"]["Interface"]["columns"]["error"] = json!({"type": "string"});
        p.reply(&r, s).await;
        let r = p.recv().await.unwrap();
        assert_eq!(r["params"], json!(["Open_vSwitch", "cfg", {"Open_vSwitch": {"columns": ["cur_cfg"]}}]));
        p.reply(&r, json!({"Open_vSwitch": {U1: {"new": {"cur_cfg": 4}}}})).await;
        let upd = json!({"Open_vSwitch": {U1: {"old": {"cur_cfg": 4}, "new": {"cur_cfg": 5}}}});
        p.send(json!({"method": "update", "params": ["cfg", upd], "id": null})).await;
        while p.recv().await.is_some() {}
    });
    let (conn, mut notes) = Connection::connect(&sock.addr()).await.unwrap();
    let schema = conn.check_schema(vswitch::DATABASE, vswitch::REQUIREMENTS).await.unwrap();
    assert_eq!(schema.version, "8.5.0");
    let initial = conn
        .monitor("Open_vSwitch", "cfg", &[MonitorRequest::new("Open_vSwitch", &["cur_cfg"])])
        .await
        .unwrap();
    let (_, row) = initial.new_rows("Open_vSwitch").next().unwrap();
    assert_eq!(vswitch::OpenVswitch::from_row(row).cur_cfg, 4);
    let n = notes.recv().await.unwrap();
    let (id, upd) = n.as_update().unwrap();
    assert_eq!(id, "cfg");
    assert_eq!(upd.new_rows("Open_vSwitch").next().unwrap().1.opt_i64("cur_cfg"), Some(5));
    drop(conn);
    finish(server).await;
}

/// A server that accepts and never answers: the call times out, the
/// connection is closed (the server sees EOF), and the next call fails at
/// once as lost, which tells the owner to connect anew.
#[tokio::test]
async fn a_wedged_server_times_out_and_the_connection_is_closed() {
    let sock = Sock::new();
    let server = serve(&sock, |mut p| async move {
        let req = p.recv().await.unwrap();
        assert_eq!(req["method"], "transact");
        // Say nothing; the client must hang up.
        let eof = tokio::time::timeout(Duration::from_secs(5), p.recv()).await;
        assert!(matches!(eof, Ok(None)), "the client did not close the connection: {eof:?}");
    });
    let opts = Options { request_timeout: Duration::from_millis(100), ..Options::default() };
    let (conn, _n) = Connection::connect_with(&sock.addr(), &opts).await.unwrap();
    let e = conn.transact(&Transaction::new("Open_vSwitch")).await.unwrap_err();
    assert!(matches!(&e, Error::Timeout { method, .. } if method == "transact"), "{e:?}");
    assert!(e.to_string().contains("did not answer transact within 0.1 s"), "{e}");
    assert!(conn.is_closed());
    let started = Instant::now();
    let e = conn.echo().await.unwrap_err();
    assert!(
        matches!(e, Error::ConnectionLost { .. }) && started.elapsed() < Duration::from_millis(50),
        "{e:?}"
    );
    assert!(e.is_connection_gone());
    finish(server).await;
}

#[tokio::test]
async fn a_reply_split_into_single_bytes_is_reassembled() {
    let sock = Sock::new();
    let server = serve(&sock, |mut p| async move {
        let req = p.recv().await.unwrap();
        let reply =
            json!({"id": req["id"], "error": null, "result": ["Open_vSwitch", "a \"}{ b"]}).to_string();
        for b in reply.as_bytes() {
            p.stream.write_all(&[*b]).await.unwrap();
            p.stream.flush().await.unwrap();
        }
        while p.recv().await.is_some() {}
    });
    let (conn, _n) = Connection::connect(&sock.addr()).await.unwrap();
    assert_eq!(conn.list_dbs().await.unwrap(), vec!["Open_vSwitch", "a \"}{ b"]);
    drop(conn);
    finish(server).await;
}

#[tokio::test]
async fn garbled_bytes_end_the_connection_with_a_clear_error() {
    let sock = Sock::new();
    let server = serve(&sock, |mut p| async move {
        let _req = p.recv().await.unwrap();
        p.stream.write_all(b"{\"id\":1,\"result\":tru e}").await.unwrap();
        let _ = p.recv().await;
    });
    let (conn, _n) = Connection::connect(&sock.addr()).await.unwrap();
    let e = conn.list_dbs().await.unwrap_err();
    let Error::ConnectionLost { reason, .. } = &e else { panic!("{e:?}") };
    assert!(reason.contains("malformed JSON from the server"), "{e}");
    assert!(conn.is_closed());
    finish(server).await;
}

#[tokio::test]
async fn an_oversize_message_ends_the_connection() {
    let sock = Sock::new();
    let server = serve(&sock, |mut p| async move {
        let req = p.recv().await.unwrap();
        let big = "x".repeat(64 << 10);
        // Never completed: the client must give up at its limit, not buffer forever.
        let _ = p.stream.write_all(format!("{{\"id\":{},\"result\":[\"{big}", req["id"]).as_bytes()).await;
        let _ = p.recv().await;
    });
    let opts = Options { max_message: 16 << 10, ..Options::default() };
    let (conn, _n) = Connection::connect_with(&sock.addr(), &opts).await.unwrap();
    let e = conn.list_dbs().await.unwrap_err();
    assert!(e.to_string().contains("a message from the server exceeds 16384 bytes"), "{e}");
    finish(server).await;
}

#[tokio::test]
async fn connect_errors_name_the_address_and_backoff_waits_for_a_late_server() {
    let sock = Sock::new();
    let e = Connection::connect(&sock.addr()).await.err().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot connect to OVSDB at unix:{}: No such file or directory (is ovsdb-server running?)",
            sock.path().display()
        )
    );
    let path = sock.path();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let l = UnixListener::bind(path).unwrap();
        let _p = Peer::accept(&l).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let backoff =
        Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(80), attempts: 50 };
    let started = Instant::now();
    let (conn, _n) =
        Connection::connect_with_backoff(&sock.addr(), &Options::default(), &backoff).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(!conn.is_closed());
    late.await.unwrap();
    let few = Backoff { initial: Duration::from_millis(1), max: Duration::from_millis(1), attempts: 3 };
    let missing: Address = "unix:/nonexistent/ovsdb-fake/db.sock".parse().unwrap();
    let e = Connection::connect_with_backoff(&missing, &Options::default(), &few).await.err().unwrap();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
}
