//! RFC 7047 JSON-RPC over one Unix or TCP stream. A reader task splits the
//! undelimited stream of JSON values ([`Framer`], which looks at each byte
//! once and bounds a message's size), hands responses to their callers by
//! `id`, answers the server's `echo` probes and forwards notifications
//! (`update`, ...); a writer task serialises everything sent.
//!
//! A request that gets no answer in time closes the connection: the late
//! answer could otherwise be taken for another's, and a wedged server is
//! only recovered from by connecting anew (the owner sees
//! [`Connection::is_closed`]). A session is not reconnected by itself: its
//! monitors and locks would silently be lost. [`Connection::connect_with_backoff`]
//! retries the connect only.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::address::Address;
use crate::error::{shorten, Error, Result};
use crate::monitor::{requests_json, MonitorRequest, TableUpdates};
use crate::operation::{parse_results, Failure, OpResult, Transaction};
use crate::row::Requirements;
use crate::schema::Schema;

/// Limits of one connection.
#[derive(Clone, Debug)]
pub struct Options {
    pub connect_timeout: Duration,
    /// How long a call waits for its answer before the connection is closed.
    /// A local ovsdb-server answers in microseconds; this only stops a
    /// wedged server from hanging the caller forever.
    pub request_timeout: Duration,
    /// A message bigger than this means a broken peer, not a big database:
    /// the connection is closed.
    pub max_message: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_message: 64 << 20,
        }
    }
}

/// How [`Connection::connect_with_backoff`] retries: `initial` after the
/// first failure, doubling up to `max`, `attempts` tries in all.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub attempts: u32,
}

/// A request from the server that needs no answer (`update`, `locked`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Json,
}

impl Notification {
    /// An `update` notification: the monitor's id and its changes.
    pub fn as_update(&self) -> Option<(&Json, TableUpdates)> {
        if self.method != "update" {
            return None;
        }
        let id = self.params.get(0)?;
        Some((id, TableUpdates::from_json(self.params.get(1)?).ok()?))
    }
}

/// A JSON-RPC error answer: `error` plus RFC 7047's optional `details`.
#[derive(Debug)]
struct RpcError {
    error: String,
    details: Option<String>,
}

type Pending = oneshot::Sender<std::result::Result<Json, RpcError>>;

#[derive(Default)]
struct State {
    pending: HashMap<u64, Pending>,
    /// Why the connection ended; set once, new calls fail at once.
    closed: Option<String>,
}

struct Shared {
    uri: String,
    state: Mutex<State>,
    /// Tells the writer to stop once the connection is closed, so that the
    /// socket is closed too (the peer sees EOF), not only marked closed.
    gone: tokio::sync::Notify,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not turn every later call into a panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lost(&self) -> Error {
        let reason = self.state().closed.clone().unwrap_or_else(|| "closed".into());
        Error::ConnectionLost { uri: self.uri.clone(), reason }
    }

    /// Dropping the senders wakes every waiting call with "lost".
    fn close(&self, reason: String) {
        let pending = {
            let mut st = self.state();
            st.closed.get_or_insert(reason);
            std::mem::take(&mut st.pending)
        };
        drop(pending);
        // A permit is stored if the writer is not waiting right now.
        self.gone.notify_one();
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
    /// Connect to `addr` with the default [`Options`]; notifications arrive
    /// on the returned receiver (drop it to ignore them).
    pub async fn connect(addr: &Address) -> Result<(Connection, mpsc::UnboundedReceiver<Notification>)> {
        Self::connect_with(addr, &Options::default()).await
    }

    pub async fn connect_with(
        addr: &Address,
        opts: &Options,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<Notification>)> {
        let uri = addr.to_string();
        let fail = |reason: String| Error::Connect { uri: uri.clone(), reason };
        let attempt = async {
            match addr {
                Address::Unix(path) => {
                    UnixStream::connect(path).await.map(|s| Self::from_stream_with(s, uri.clone(), opts))
                }
                Address::Tcp(hostport) => {
                    let s = TcpStream::connect(hostport.as_str()).await?;
                    // Requests are small and latency-bound: never wait for Nagle.
                    s.set_nodelay(true)?;
                    Ok(Self::from_stream_with(s, uri.clone(), opts))
                }
            }
        };
        match tokio::time::timeout(opts.connect_timeout, attempt).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(fail(io_message(&e))),
            Err(_) => Err(fail(format!("no answer within {} s", opts.connect_timeout.as_secs_f64()))),
        }
    }

    /// Like [`connect_with`](Self::connect_with), but a refused or failed
    /// connect (the server is starting or restarting) is tried again after
    /// a growing pause. Only the connect is retried: a session that is lost
    /// later is the caller's to replace (its monitors and locks went with it).
    pub async fn connect_with_backoff(
        addr: &Address,
        opts: &Options,
        backoff: &Backoff,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<Notification>)> {
        let mut delay = backoff.initial;
        let mut tries = 1;
        loop {
            match Self::connect_with(addr, opts).await {
                Err(Error::Connect { .. }) if tries < backoff.attempts.max(1) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(backoff.max);
                    tries += 1;
                }
                done => return done,
            }
        }
    }

    /// Run the protocol over any byte stream; `uri` names it in errors.
    pub fn from_stream<S>(stream: S, uri: String) -> (Self, mpsc::UnboundedReceiver<Notification>)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self::from_stream_with(stream, uri, &Options::default())
    }

    pub fn from_stream_with<S>(
        stream: S,
        uri: String,
        opts: &Options,
    ) -> (Self, mpsc::UnboundedReceiver<Notification>)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(stream);
        let shared = Arc::new(Shared { uri, state: Mutex::default(), gone: tokio::sync::Notify::new() });
        let (out, out_rx) = mpsc::unbounded_channel();
        let (notify, notify_rx) = mpsc::unbounded_channel();
        let framer = Framer::new(opts.max_message);
        let reader = tokio::spawn(read_loop(rd, framer, shared.clone(), out.clone(), notify));
        let writer = tokio::spawn(write_loop(wr, out_rx, shared.clone()));
        let conn = Self {
            shared,
            out,
            next_id: AtomicU64::new(1),
            tasks: [reader, writer],
            request_timeout: opts.request_timeout,
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

    /// The server closed the connection, it broke or a request timed out:
    /// calls fail at once; connect anew.
    pub fn is_closed(&self) -> bool {
        self.shared.state().closed.is_some()
    }

    /// The error calls get once the connection has ended.
    pub fn lost_error(&self) -> Error {
        self.shared.lost()
    }

    /// Send one request and wait for its response's `result`.
    pub async fn call(&self, method: &str, params: Json) -> Result<Json> {
        self.call_with(method, |out| serde_json::to_writer(out, &params)).await
    }

    /// [`Connection::call`] with the `params` written straight into the
    /// request by `params`, so that a large one (a transaction adding 1000
    /// ports) is never a JSON tree as a whole.
    async fn call_with(
        &self,
        method: &str,
        params: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
    ) -> Result<Json> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = b"{\"method\":".to_vec();
        let written = serde_json::to_writer(&mut msg, method).and_then(|()| {
            msg.extend_from_slice(b",\"params\":");
            params(&mut msg)
        });
        if let Err(e) = written {
            return Err(self.malformed(format!("{method}: cannot encode the request: {e}")));
        }
        msg.extend_from_slice(format!(",\"id\":{id}}}").as_bytes());
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.state();
            if st.closed.is_some() {
                drop(st);
                return Err(self.shared.lost());
            }
            st.pending.insert(id, tx);
        }
        if self.out.send(msg).is_err() {
            self.shared.state().pending.remove(&id);
            return Err(self.shared.lost());
        }
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(RpcError { error, details }))) => {
                Err(Error::Rpc { uri: self.shared.uri.clone(), method: method.to_string(), error, details })
            }
            Ok(Err(_)) => Err(self.shared.lost()),
            Err(_) => {
                let e = Error::Timeout {
                    uri: self.shared.uri.clone(),
                    method: method.to_string(),
                    after: self.request_timeout,
                };
                // Closed, not kept: the server is wedged or the stream is out
                // of step; the next call fails at once as "lost".
                self.shared.close(format!(
                    "no answer to {method} within {} s; closed the connection",
                    self.request_timeout.as_secs_f64()
                ));
                for t in &self.tasks {
                    t.abort();
                }
                Err(e)
            }
        }
    }

    /// `echo`: a round trip that proves the session is alive.
    pub async fn echo(&self) -> Result<()> {
        self.call("echo", json!(["ovsdb-client"])).await.map(drop)
    }

    pub async fn list_dbs(&self) -> Result<Vec<String>> {
        let r = self.call("list_dbs", json!([])).await?;
        serde_json::from_value(r.clone())
            .map_err(|_| self.malformed(format!("list_dbs result {}", short(&r))))
    }

    /// `get_schema`; an unknown database is [`Error::UnknownDatabase`].
    pub async fn get_schema(&self, database: &str) -> Result<Schema> {
        match self.call("get_schema", json!([database])).await {
            Ok(r) => {
                Schema::from_json(&r).map_err(|why| self.malformed(format!("get_schema {database}: {why}")))
            }
            Err(Error::Rpc { error, .. }) if error == "unknown database" => Err(Error::UnknownDatabase {
                uri: self.shared.uri.clone(),
                database: database.to_string(),
                available: self.list_dbs().await.unwrap_or_default(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Check that `database` exists and has every table and column in
    /// `required`; a lacking one is [`Error::SchemaMismatch`] naming it.
    pub async fn check_schema(&self, database: &str, required: Requirements<'_>) -> Result<Schema> {
        let schema = self.get_schema(database).await?;
        match schema.missing(required) {
            None => Ok(schema),
            Some(m) => Err(Error::SchemaMismatch {
                uri: self.shared.uri.clone(),
                database: database.to_string(),
                table: m.table,
                column: m.column,
            }),
        }
    }

    /// Start monitor `id` on `database`: the current contents of the
    /// requested columns now, then `update` notifications tagged `id`.
    pub async fn monitor(
        &self,
        database: &str,
        id: &str,
        requests: &[MonitorRequest],
    ) -> Result<TableUpdates> {
        let r = self.call("monitor", json!([database, id, requests_json(requests)])).await?;
        TableUpdates::from_json(&r).map_err(|why| self.malformed(format!("monitor {id}: {why}")))
    }

    pub async fn monitor_cancel(&self, id: &str) -> Result<()> {
        self.call("monitor_cancel", json!([id])).await.map(drop)
    }

    /// Run a transaction: its typed results, one per operation, or the first
    /// failed operation as [`Error::Op`] (nothing of it was applied).
    pub async fn transact(&self, txn: &Transaction) -> Result<Vec<OpResult>> {
        let result = self.call_with("transact", |out| txn.write_params(out)).await?;
        parse_results(&result, &txn.ops).map_err(|f| match f {
            Failure::Op(op) => Error::Op(op),
            Failure::Malformed(msg) => self.malformed(msg),
        })
    }

    fn malformed(&self, message: String) -> Error {
        Error::Protocol { uri: self.shared.uri.clone(), message }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    mut framer: Framer,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    notify: mpsc::UnboundedSender<Notification>,
) {
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
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = shared.gone.notified() => None,
        };
        // Dropping the write half (the reader has dropped its half) closes the socket.
        let Some(msg) = msg else { return };
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
pub struct Framer {
    /// The start of the incomplete value (whitespace before it is dropped).
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    max_message: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(Options::default().max_message)
    }
}

impl Framer {
    /// A framer that refuses a message longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Framer {
        Framer { buf: Vec::new(), scanned: 0, depth: 0, in_string: false, escaped: false, max_message }
    }

    /// Add `data`; the values it completes, in order.
    pub fn push(&mut self, data: &[u8]) -> std::result::Result<Vec<Json>, String> {
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
        if self.buf.len() > self.max_message {
            return Err(format!("a message from the server exceeds {} bytes", self.max_message));
        }
        Ok(values)
    }

    /// The incomplete value kept for the next chunk.
    pub fn partial(&self) -> &[u8] {
        &self.buf
    }
}

fn dispatch(
    msg: Json,
    shared: &Shared,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    notify: &mpsc::UnboundedSender<Notification>,
) {
    // Anything that is not a JSON-RPC object cannot be answered; ignore it.
    let Json::Object(mut m) = msg else { return };
    let id = m.remove("id").unwrap_or(Json::Null);
    if let Some(method) = m.get("method").and_then(Json::as_str).map(str::to_string) {
        let params = m.remove("params").unwrap_or(Json::Null);
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
    let error = m.remove("error").unwrap_or(Json::Null);
    let reply =
        if error.is_null() { Ok(m.remove("result").unwrap_or(Json::Null)) } else { Err(rpc_error(&error)) };
    let _ = tx.send(reply);
}

/// `"E"` or `{"error": E, "details": D}`; anything else as compact JSON.
fn rpc_error(e: &Json) -> RpcError {
    match (e.as_str(), e.get("error").and_then(Json::as_str)) {
        (Some(s), _) => RpcError { error: s.to_string(), details: None },
        (None, Some(err)) => RpcError {
            error: err.to_string(),
            details: e.get("details").and_then(Json::as_str).map(str::to_string),
        },
        _ => RpcError { error: short(e), details: None },
    }
}

fn short(v: &Json) -> String {
    shorten(&v.to_string())
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

    #[test]
    fn an_oversize_partial_message_is_refused() {
        let mut f = Framer::new(16);
        assert!(f.push(b"{\"a\":\"0123456789\"}").is_ok(), "complete values are not limited");
        let e = f.push(b"{\"a\":\"0123456789abcdef").unwrap_err();
        assert_eq!(e, "a message from the server exceeds 16 bytes");
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
}

/// Random input for the framer and the reply parsers: bytes, and
/// well-formed JSON of any shape in the places where OVSDB puts results.
/// None of it may panic.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::Framer;
    use crate::operation::{parse_results, Operation};
    use crate::row::Row;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                Just("set".to_string()),
                Just("map".to_string()),
                Just("uuid".to_string()),
                ".{0,12}"
            ]
            .prop_map(Value::String),
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
        fn transact_result_parser_never_panics(result in json(), n in 0usize..5) {
            let ops: Vec<Operation> = (0..n).map(|i| match i % 3 {
                0 => Operation::select("T", vec![], &[]),
                1 => Operation::insert("T", Row::new(), None),
                _ => Operation::delete("T", vec![]),
            }).collect();
            let _ = parse_results(&result, &ops);
        }

        #[test]
        fn value_and_row_parsers_never_panic(v in json()) {
            let _ = crate::value::Value::from_json(&v);
            let _ = Row::from_json(&v);
            let _ = crate::monitor::TableUpdates::from_json(&v);
        }
    }
}
