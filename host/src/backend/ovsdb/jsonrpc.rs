//! RFC 7047 JSON-RPC over one Unix or TCP stream. A reader task splits the
//! undelimited stream of JSON values ([`Framer`], which looks at each byte
//! once), hands responses to their callers by `id`, answers the server's
//! `echo` probes and forwards `update` notifications; a writer task
//! serialises everything sent.
//!
//! A request that gets no answer in time closes the connection: the late
//! answer could otherwise be taken for another's, and a wedged server is
//! only recovered from by connecting anew (the owner sees `is_closed`).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::OvsdbUri;
use crate::error::{CapError, CapResult};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A local ovsdb-server answers in microseconds; this only stops a wedged
/// server from hanging a script forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A partial message bigger than this means a broken peer, not a big database.
const MAX_MESSAGE: usize = 64 << 20;

/// A request from the server that needs no answer (`update`, `update2`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Value,
}

/// The first failed operation of a transaction; `index == ops.len()` when the
/// transaction failed at commit (e.g. a unique index was violated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    pub index: usize,
    /// The operation's `op` ("wait", "insert", ...) or "commit".
    pub op: String,
    pub error: String,
    pub details: Option<String>,
}

impl OpError {
    /// The server's own words: "constraint violation: Transaction causes ...".
    pub fn describe(&self) -> String {
        match &self.details {
            Some(d) if !d.is_empty() => format!("{}: {d}", self.error),
            _ => self.error.clone(),
        }
    }

    /// Two rows with the same value in a unique index (a duplicate name).
    pub fn is_duplicate(&self) -> bool {
        self.error == "constraint violation"
            && self.details.as_deref().is_some_and(|d| d.contains("identical values"))
    }

    /// The error when the caller has nothing more specific to say.
    pub fn default_error(&self) -> CapError {
        let msg = format!(
            "OVSDB transaction failed at operation {} ({}): {}",
            self.index,
            self.op,
            self.describe()
        );
        if self.is_duplicate() {
            CapError::exists(msg)
        } else if self.error == "timed out" {
            // Only our timeout-0 wait ops time out: a row that should be there is not.
            CapError::not_found(msg)
        } else {
            CapError::failed(msg)
        }
    }
}

type Pending = oneshot::Sender<Result<Value, String>>;

#[derive(Default)]
struct State {
    pending: HashMap<u64, Pending>,
    /// Why the connection ended; set once, new calls fail at once.
    closed: Option<String>,
}

struct Shared {
    uri: String,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not turn every later call into a panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lost(&self) -> CapError {
        let reason = self.state().closed.clone().unwrap_or_else(|| "closed".into());
        CapError::failed(format!("connection to OVSDB at {} lost: {reason}", self.uri))
    }

    /// Dropping the senders wakes every waiting call with "lost".
    fn close(&self, reason: String) {
        let pending = {
            let mut st = self.state();
            st.closed.get_or_insert(reason);
            std::mem::take(&mut st.pending)
        };
        drop(pending);
    }
}

/// One JSON-RPC session. Dropping it stops both tasks and closes the socket.
pub struct Connection {
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    next_id: AtomicU64,
    tasks: [JoinHandle<()>; 2],
    request_timeout: Duration,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Connection {
    /// Connect to `uri`; notifications arrive on the returned receiver.
    pub async fn connect(uri: &OvsdbUri) -> CapResult<(Connection, mpsc::UnboundedReceiver<Notification>)> {
        let fail = |why: String| {
            CapError::unavailable(format!(
                "cannot connect to OVSDB at {uri}: {why} (is ovsdb-server running?)"
            ))
        };
        let label = uri.to_string();
        let attempt = async {
            match uri {
                OvsdbUri::Unix(path) => UnixStream::connect(path).await.map(|s| Self::from_stream(s, label)),
                OvsdbUri::Tcp(addr) => {
                    let s = TcpStream::connect(addr.as_str()).await?;
                    // Requests are small and latency-bound: never wait for Nagle.
                    s.set_nodelay(true)?;
                    Ok(Self::from_stream(s, label))
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(fail(io_message(&e))),
            Err(_) => Err(fail(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
        }
    }

    /// Run the protocol over any byte stream; `uri` names it in errors.
    pub fn from_stream<S>(stream: S, uri: String) -> (Self, mpsc::UnboundedReceiver<Notification>)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(stream);
        let shared = Arc::new(Shared { uri, state: Mutex::default() });
        let (out, out_rx) = mpsc::unbounded_channel();
        let (notify, notify_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(rd, shared.clone(), out.clone(), notify));
        let writer = tokio::spawn(write_loop(wr, out_rx, shared.clone()));
        let conn = Self {
            shared,
            out,
            next_id: AtomicU64::new(1),
            tasks: [reader, writer],
            request_timeout: REQUEST_TIMEOUT,
        };
        (conn, notify_rx)
    }

    /// How long a call waits for its answer before the connection is closed.
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
    }

    pub fn uri(&self) -> &str {
        &self.shared.uri
    }

    /// The error calls get once the connection has ended.
    /// The server closed the connection or it broke; calls would fail.
    pub fn is_closed(&self) -> bool {
        self.shared.state().closed.is_some()
    }

    pub fn lost_error(&self) -> CapError {
        self.shared.lost()
    }

    /// Send one request and wait for its response's `result`.
    pub async fn call(&self, method: &str, params: Value) -> CapResult<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.state();
            if st.closed.is_some() {
                drop(st);
                return Err(self.shared.lost());
            }
            st.pending.insert(id, tx);
        }
        let msg = json!({"method": method, "params": params, "id": id});
        if self.out.send(msg.to_string().into_bytes()).is_err() {
            self.shared.state().pending.remove(&id);
            return Err(self.shared.lost());
        }
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(error))) => {
                Err(CapError::failed(format!("OVSDB at {} rejected {method}: {error}", self.shared.uri)))
            }
            Ok(Err(_)) => Err(self.shared.lost()),
            Err(_) => {
                let why = format!(
                    "OVSDB at {} did not answer {method} within {} s",
                    self.shared.uri,
                    self.request_timeout.as_secs_f64()
                );
                // Closed, not kept: the server is wedged or the stream is out
                // of step; the next call fails at once as "lost" and the
                // owner connects anew.
                self.shared.close(format!("{why}; closed the connection"));
                for t in &self.tasks {
                    t.abort();
                }
                Err(CapError::failed(format!("{why} (closed the connection; the next call reconnects)")))
            }
        }
    }

    /// Run a transaction; any failed operation is an error.
    pub async fn transact(&self, db: &str, ops: Vec<Value>) -> CapResult<Vec<Value>> {
        self.transact_explained(db, ops, |_| None).await
    }

    /// Like [`transact`](Self::transact), but `explain` may turn the failed
    /// operation into a better error (it knows what each index checked).
    pub async fn transact_explained(
        &self,
        db: &str,
        ops: Vec<Value>,
        explain: impl FnOnce(&OpError) -> Option<CapError>,
    ) -> CapResult<Vec<Value>> {
        let names: Vec<String> = ops.iter().map(|o| o["op"].as_str().unwrap_or("?").to_string()).collect();
        let mut params = Vec::with_capacity(ops.len() + 1);
        params.push(Value::from(db));
        params.extend(ops);
        crate::backend::stats::ovsdb_transaction();
        let result = self.call("transact", Value::Array(params)).await?;
        check_results(result, &names).map_err(|f| match f {
            Ok(op) => explain(&op).unwrap_or_else(|| op.default_error()),
            Err(msg) => CapError::failed(format!("OVSDB at {}: {msg}", self.shared.uri)),
        })
    }
}

/// The per-operation results, or the first failed operation (`Ok`) or a
/// malformed reply (`Err`).
fn check_results(result: Value, op_names: &[String]) -> Result<Vec<Value>, Result<OpError, String>> {
    let Value::Array(results) = result else {
        return Err(Err(format!("transact result is not an array: {}", short_json(&result))));
    };
    for (index, r) in results.iter().enumerate() {
        if let Some(error) = r.get("error").filter(|e| !e.is_null()) {
            return Err(Ok(OpError {
                index,
                op: op_names.get(index).map_or("commit", |s| s.as_str()).to_string(),
                error: error.as_str().map_or_else(|| short_json(error), str::to_string),
                details: r.get("details").and_then(Value::as_str).map(str::to_string),
            }));
        }
    }
    if results.len() != op_names.len() {
        return Err(Err(format!(
            "transact returned {} results for {} operations",
            results.len(),
            op_names.len()
        )));
    }
    Ok(results)
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    notify: mpsc::UnboundedSender<Notification>,
) {
    let mut framer = Framer::default();
    let mut chunk = vec![0u8; 64 * 1024];
    let reason = loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) => break "the server closed the connection".to_string(),
            Ok(n) => n,
            Err(e) => break format!("read failed: {}", io_message(&e)),
        };
        match framer.push(&chunk[..n]) {
            Ok(values) => values.into_iter().for_each(|v| dispatch(v, &shared, &out, &notify)),
            Err(e) => break e,
        }
    };
    shared.close(reason);
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    while let Some(msg) = rx.recv().await {
        if let Err(e) = wr.write_all(&msg).await {
            shared.close(format!("write failed: {}", io_message(&e)));
            return;
        }
    }
}

/// Splits the undelimited stream of JSON values. RFC 7047 sends values
/// back to back, and JSON-RPC messages are objects: a value ends where its
/// outermost bracket closes. The bracket depth and string state carry over
/// from chunk to chunk, so every byte is scanned once and each value is
/// parsed once, when complete (re-parsing the buffer on every 64 KiB chunk
/// took quadratic time on a large reply). A syntax error is fatal: there is
/// no resync point.
#[derive(Default)]
pub(crate) struct Framer {
    /// The start of the incomplete value (whitespace before it is dropped).
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Framer {
    /// Add `data`; the values it completes, in order.
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<Vec<Value>, String> {
        self.buf.extend_from_slice(data);
        let mut values = Vec::new();
        // Bytes before `done` belong to complete values or whitespace.
        let mut done = 0;
        let malformed = |buf: &[u8], at: usize, why: &str| {
            let near = String::from_utf8_lossy(&buf[at..buf.len().min(at + 40)]).into_owned();
            format!("malformed JSON from the server ({why}) near {near:?}")
        };
        for i in self.scanned..self.buf.len() {
            let b = self.buf[i];
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' if self.depth > 0 => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let v = serde_json::from_slice(&self.buf[done..=i])
                            .map_err(|e| malformed(&self.buf, done, &e.to_string()))?;
                        values.push(v);
                        done = i + 1;
                    }
                }
                b' ' | b'\t' | b'\n' | b'\r' if self.depth == 0 => done = i + 1,
                _ if self.depth == 0 => return Err(malformed(&self.buf, i, "expected an object")),
                _ => {}
            }
        }
        self.buf.drain(..done);
        self.scanned = self.buf.len();
        if self.buf.len() > MAX_MESSAGE {
            return Err(format!("a message from the server exceeds {MAX_MESSAGE} bytes"));
        }
        Ok(values)
    }

    /// The incomplete value kept for the next chunk.
    #[cfg(test)]
    pub(crate) fn partial(&self) -> &[u8] {
        &self.buf
    }
}

fn dispatch(
    msg: Value,
    shared: &Shared,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    notify: &mpsc::UnboundedSender<Notification>,
) {
    // Anything that is not a JSON-RPC object cannot be answered; ignore it.
    let Value::Object(mut m) = msg else { return };
    let id = m.remove("id").unwrap_or(Value::Null);
    if let Some(method) = m.get("method").and_then(Value::as_str).map(str::to_string) {
        let params = m.remove("params").unwrap_or(Value::Null);
        let reply = match (method.as_str(), id.is_null()) {
            // Unanswered echoes make ovsdb-server drop us after its inactivity probe.
            ("echo", false) => json!({"result": params, "error": null, "id": id}),
            (_, true) => {
                let _ = notify.send(Notification { method, params });
                return;
            }
            (other, false) => {
                json!({"result": null, "error": format!("unknown method {other}"), "id": id})
            }
        };
        let _ = out.send(reply.to_string().into_bytes());
        return;
    }
    let Some(tx) = id.as_u64().and_then(|id| shared.state().pending.remove(&id)) else {
        return;
    };
    let error = m.remove("error").unwrap_or(Value::Null);
    let reply = if error.is_null() {
        Ok(m.remove("result").unwrap_or(Value::Null))
    } else {
        Err(describe_error(&error))
    };
    let _ = tx.send(reply);
}

/// `{"error": E, "details": D}` as "E: D"; anything else as compact JSON.
fn describe_error(e: &Value) -> String {
    match (e.as_str(), e.get("error").and_then(Value::as_str), e.get("details")) {
        (Some(s), _, _) => s.to_string(),
        (None, Some(err), Some(Value::String(d))) => format!("{err}: {d}"),
        (None, Some(err), _) => err.to_string(),
        _ => short_json(e),
    }
}

fn short_json(v: &Value) -> String {
    crate::types::shorten(&v.to_string())
}

/// "No such file or directory", without Rust's " (os error 2)" suffix.
pub(crate) fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_split_at_every_byte() {
        let text = br#"{"id":1,"result":[{"a":"\u00e9 \"}{"}]} {"method":"echo","params":[],"id":"x"}"#;
        for cut in 0..=text.len() {
            let mut f = Framer::default();
            let mut got = f.push(&text[..cut]).unwrap();
            got.extend(f.push(&text[cut..]).unwrap());
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[0]["result"][0]["a"], "é \"}{");
            assert!(f.partial().is_empty(), "cut at {cut}");
        }
    }

    #[test]
    fn stream_garbage_is_an_error_not_a_panic() {
        for junk in [&b"{\"id\":1}]]"[..], b"\xff\xfe{", b"{\"a\":tru e}", b"nul!", b"{\"a\":[}}"] {
            let e = Framer::default().push(junk).unwrap_err();
            assert!(e.contains("malformed JSON"), "{e}");
        }
        let mut f = Framer::default();
        assert!(f.push(b"  {\"a\":[1,2").unwrap().is_empty());
        assert_eq!(f.partial(), b"{\"a\":[1,2", "the partial value is kept");
    }

    /// A 16 MiB reply arriving in 64 KiB reads: each byte is looked at once.
    /// (Re-parsing the whole buffer on every read took 146 s on this loaded
    /// 2-core machine; framing takes under a second, most of it serde_json.)
    #[test]
    fn a_16_mib_reply_is_framed_in_linear_time() {
        let row = json!({"_uuid": ["uuid", "0b6ad4a6-4bd4-4d7f-9d8e-2b1a2f7d8c11"], "name": "p\\\"}{x"});
        let n = (16 << 20) / (row.to_string().len() + 1) + 1;
        let reply = json!({"id": 1, "error": null, "result": [{"rows": vec![row; n]}]}).to_string();
        assert!(reply.len() >= 16 << 20, "{}", reply.len());
        let started = std::time::Instant::now();
        let mut f = Framer::default();
        let mut got = 0;
        for chunk in reply.as_bytes().chunks(64 << 10) {
            got += f.push(chunk).unwrap().len();
        }
        let took = started.elapsed();
        assert!(got == 1 && f.partial().is_empty(), "{got}");
        eprintln!("framed {} MiB in {took:?}", reply.len() >> 20);
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn results_checked() {
        let names: Vec<String> = vec!["wait".into(), "insert".into()];
        let ok = json!([{}, {"uuid": ["uuid", "x"]}]);
        assert_eq!(check_results(ok, &names).unwrap().len(), 2);
        let failed = json!([{"error": "timed out"}, null]);
        let op = check_results(failed, &names).unwrap_err().unwrap();
        assert_eq!((op.index, op.op.as_str()), (0, "wait"));
        assert_eq!(op.default_error().kind, crate::error::ErrorKind::NotFound);
        let dup = json!([{}, {"uuid": ["uuid", "x"]},
            {"error": "constraint violation", "details": "... identical values (p1) for index on column \"name\" ..."}]);
        let op = check_results(dup, &names).unwrap_err().unwrap();
        assert_eq!((op.index, op.op.as_str()), (2, "commit"));
        let e = op.default_error();
        assert_eq!(e.kind, crate::error::ErrorKind::AlreadyExists);
        assert!(e.message.contains("identical values (p1)"), "{e}");
        assert!(check_results(json!([{}]), &names).unwrap_err().is_err());
        assert!(check_results(json!({"x": 1}), &names).unwrap_err().is_err());
    }

    #[tokio::test]
    async fn echo_responses_and_loss() {
        let (client, server) = tokio::io::duplex(4096);
        let (conn, mut notes) = Connection::from_stream(client, "unix:/test/db.sock".into());
        let (mut srd, mut swr) = tokio::io::split(server);
        swr.write_all(br#"{"method":"echo","params":["p"],"id":"e1"}{"method":"update","#).await.unwrap();
        swr.write_all(br#""params":[null,{}],"id":null}"#).await.unwrap();
        let call = tokio::spawn(async move {
            let r = conn.call("list_dbs", json!([])).await;
            (conn, r)
        });
        let mut buf = Framer::default();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let mut chunk = [0u8; 256];
            let n = srd.read(&mut chunk).await.unwrap();
            seen.extend(buf.push(&chunk[..n]).unwrap());
        }
        let echo = seen.iter().find(|v| v["id"] == "e1").unwrap();
        assert_eq!(echo["result"], json!(["p"]));
        let req = seen.iter().find(|v| v["method"] == "list_dbs").unwrap();
        let reply = json!({"id": req["id"], "result": ["Open_vSwitch"], "error": null});
        swr.write_all(reply.to_string().as_bytes()).await.unwrap();
        let (conn, r) = call.await.unwrap();
        assert_eq!(r.unwrap(), json!(["Open_vSwitch"]));
        assert_eq!(notes.recv().await.unwrap().method, "update");

        let pending = tokio::spawn(async move { conn.call("transact", json!([])).await });
        tokio::task::yield_now().await;
        drop((srd, swr));
        let e = pending.await.unwrap().unwrap_err();
        assert!(e.message.contains("unix:/test/db.sock") && e.message.contains("lost"), "{e}");
    }

    /// A server that accepts and never answers: the call times out, the
    /// connection is closed (the server sees EOF), and the next call fails
    /// at once as "lost", which is what makes the owner connect anew.
    #[tokio::test]
    async fn a_timed_out_request_closes_the_connection() {
        let (client, server) = tokio::io::duplex(4096);
        let (mut conn, _notes) = Connection::from_stream(client, "unix:/test/wedged.sock".into());
        conn.set_request_timeout(Duration::from_millis(100));
        let e = conn.call("transact", json!(["Open_vSwitch"])).await.unwrap_err();
        assert!(e.message.contains("did not answer") && e.message.contains("reconnects"), "{e}");
        assert!(conn.is_closed(), "a timed-out connection must be closed");
        let started = std::time::Instant::now();
        let e = conn.call("transact", json!(["Open_vSwitch"])).await.unwrap_err();
        assert!(e.message.contains("lost") && started.elapsed() < Duration::from_millis(50), "{e}");
        // The server's end sees the connection go (after our request).
        let (mut srd, _swr) = tokio::io::split(server);
        let mut all = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), srd.read_to_end(&mut all)).await;
        assert!(matches!(read, Ok(Ok(_))), "the socket was not closed: {read:?}");
    }
}

/// Random input for the reply parsers: bytes, and well-formed JSON of any
/// shape in the places where OVSDB puts results. None of it may panic.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::{check_results, Framer};

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn stream_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = Framer::default().push(&bytes);
        }

        #[test]
        fn stream_parser_splits_any_messages_at_any_point(
            vals in prop::collection::vec(prop::collection::btree_map("[a-z]{0,6}", json(), 0..4), 1..4),
            cut in any::<usize>(),
        ) {
            // JSON-RPC messages are objects; back to back they need no delimiter.
            let vals: Vec<Value> = vals.into_iter().map(|m| Value::Object(m.into_iter().collect())).collect();
            let text: Vec<u8> = vals.iter().flat_map(|v| serde_json::to_vec(v).unwrap()).collect();
            let cut = cut % (text.len() + 1);
            let mut f = Framer::default();
            let mut got = f.push(&text[..cut]).unwrap();
            got.extend(f.push(&text[cut..]).unwrap());
            prop_assert_eq!(got, vals);
        }

        #[test]
        fn transact_result_checker_never_panics(result in json(), n in 0usize..5) {
            let names: Vec<String> = (0..n).map(|i| format!("op{i}")).collect();
            let _ = check_results(result, &names);
        }
    }
}
