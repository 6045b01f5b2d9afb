//! `ovs-run serve`: the root daemon. One task accepts connections; each
//! connection is its own task: peer credentials -> tenant -> per-tenant run
//! slot -> bounded request -> load and check the script -> run it under the
//! tenant's policy, its output streamed back -> exit frame.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map};
use sha2::{Digest, Sha256};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::allowlist::AllowList;
use super::protocol::{self, Exit, SubmitRequest};
use super::reqlog::{Line, RequestLog};
use crate::audit::{AuditLog, RefusalLog, RunAudit};
use crate::backend::dryrun::DryRunBackend;
use crate::backend::system::{SystemBackend, SystemConfig};
use crate::backend::Backend;
use crate::capabilities::{LogLevel, ScriptPre};
use crate::config::SystemOpts;
use crate::engine::{cache, Chunk, CompileCache, Engine, Limits, OutputSink, RunState, Stream};
use crate::journal::store::{self, Header, JournalFile};
use crate::journal::Journal;
use crate::policy::cedar::{default_tenants_file, CedarPolicy, PolicyStore, Tenant};
use crate::runner::exit::EXIT_USAGE;
use crate::runner::{self, RunConfig};
use crate::types::Datapath;
use crate::vetting::{self, RequireSigned, TrustStore};

const AFTER_HELP: &str = "\
Each request gets one line on stderr (journald under systemd), logfmt:
`event=run request=N tenant=T uid=U pid=P sha256=HEX dry_run=false
status=ok code=0 changes=N duration_ms=M`, or `event=refused ... status=WHY
error=\"...\"` (refusals of uids that are no tenant: at most 5 a second).

Tenants connect to SOCKET (mode --socket-mode, default 0666: any local user
may connect; who they are is taken from the kernel, and a uid that no tenant
lists is refused). Use 0660 and a group to narrow who may even connect.

The tenants file lists each tenant as a Cedar entity with the uids (or gids)
that are that tenant, and optionally its limits: max_runs, timeout_seconds,
memory_mib (the flags below are the defaults for tenants that set none).

Example:
  ovs-run serve --socket /run/ovs-run.sock --policy /etc/ovs-run/tenants.cedar \\
      --audit /var/log/ovs-run/audit.log
  # as a tenant:
  ovs-run submit --socket /run/ovs-run.sock attach.wasm br-a eth1 web --ipaddress=10.1.0.5/24";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct ServeArgs {
    /// The Unix socket to listen on (replaced if a stale socket is there)
    #[arg(long, value_name = "PATH", default_value = "/run/ovs-run/ovs-run.sock")]
    pub socket: PathBuf,

    /// Permissions of the socket, octal
    #[arg(long, value_name = "MODE", default_value = "0666", value_parser = parse_mode)]
    pub socket_mode: u32,

    /// The Cedar policy file
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,

    /// The tenants (Cedar entities, JSON) [default: the policy file with .json]
    #[arg(long, value_name = "FILE")]
    pub tenants: Option<PathBuf>,

    /// The audit log (JSON lines, appended)
    #[arg(long, value_name = "FILE", default_value = "/var/log/ovs-run/audit.log")]
    pub audit: PathBuf,

    #[command(flatten)]
    pub system: SystemOpts,

    /// Datapath for bridges scripts create with the host default
    #[arg(long, value_name = "TYPE", value_parser = ["system", "netdev"])]
    pub datapath: Option<String>,

    /// Concurrent runs per tenant, for tenants that set no max_runs
    #[arg(long, value_name = "N", default_value = "2")]
    pub max_runs: u32,

    /// Timeout per run in seconds, for tenants that set no timeout_seconds
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    pub timeout: u64,

    /// Memory cap per run in MiB, for tenants that set no memory_mib
    #[arg(long, value_name = "MIB", default_value = "64")]
    pub memory: usize,

    /// Most capability calls per run
    #[arg(long, value_name = "N", default_value = "100000")]
    pub max_calls: u64,

    /// Largest script accepted, in MiB
    #[arg(long, value_name = "MIB", default_value = "32")]
    pub max_script: usize,

    /// Compile cache directory [default: /var/cache/ovs-run]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Where runs keep their journals; runs the daemon did not finish (it was killed) are rolled back at start-up [default: /run/ovs-run/journal]
    #[arg(long, value_name = "DIR", env = "OVS_RUN_JOURNAL_DIR")]
    pub journal_dir: Option<PathBuf>,

    /// Refuse a submitted script unless a key of the trust store signed exactly its bytes (checked before it is compiled)
    #[arg(long)]
    pub require_signed: bool,

    /// Trust store for --require-signed: a directory of public keys (*.pub) [default: /etc/ovs-run/trusted-keys]
    #[arg(long, value_name = "DIR", requires = "require_signed")]
    pub trust: Option<PathBuf>,

    /// Refuse a submitted script unless the sha256 of its bytes is listed in FILE (one a line: HEX, sha256:HEX or sha256sum's output; # comments), read at start-up
    #[arg(long, value_name = "FILE")]
    pub allow_digests: Option<PathBuf>,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("'{s}' is not an octal permission mode like 0660"))
}

/// Connections being read or run at once, all tenants (and strangers) together.
const MAX_CONNECTIONS: usize = 128;
/// A client has this long to send its request and script.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// On SIGTERM, how long the stopped runs have to roll back before the daemon exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

struct Daemon {
    store: Arc<PolicyStore>,
    audit: Arc<AuditLog>,
    /// Refusals of strangers, rate-limited.
    refusals: RefusalLog,
    engine: Arc<Engine>,
    args: ServeArgs,
    system: SystemConfig,
    datapath: Datapath,
    /// Where each run's journal goes (resolved once: recovery at start-up used it).
    journal_dir: PathBuf,
    /// One semaphore per tenant: its concurrent runs.
    slots: HashMap<String, Arc<Semaphore>>,
    /// With --require-signed: the keys one of which must have signed a script.
    trust: Option<TrustStore>,
    /// One backend for every run: its OVSDB connection, netlink sockets and
    /// Docker client stay open between runs (each reconnects by itself when
    /// its daemon went away), so a run pays for its changes, not for
    /// connecting. Runs stay apart where it matters: each has its own store,
    /// journal, policy and audit.
    backend: Arc<SystemBackend>,
    /// Scripts ready to instantiate, by sha256: a tenant submitting the same
    /// script again skips the compile cache's disk read and the linking.
    warm: std::sync::Mutex<WarmScripts>,
    /// With --allow-digests: the scripts that may run at all.
    allow: Option<AllowList>,
    /// Request numbers and the per-request log lines.
    log: RequestLog,
}

/// The last few scripts the daemon ran, ready to instantiate.
#[derive(Default)]
struct WarmScripts {
    /// Most recently used last.
    entries: Vec<(String, ScriptPre<RunState>)>,
}

impl WarmScripts {
    /// Enough for the scripts of a host's tenants; each holds its compiled code.
    const MAX: usize = 16;

    fn get(&mut self, sha: &str) -> Option<ScriptPre<RunState>> {
        let i = self.entries.iter().position(|(s, _)| s == sha)?;
        let e = self.entries.remove(i);
        let pre = e.1.clone();
        self.entries.push(e);
        Some(pre)
    }

    fn put(&mut self, sha: String, pre: ScriptPre<RunState>) {
        self.entries.retain(|(s, _)| *s != sha);
        if self.entries.len() == Self::MAX {
            self.entries.remove(0);
        }
        self.entries.push((sha, pre));
    }
}

pub async fn run(args: ServeArgs) -> i32 {
    match serve(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ovs-run serve: {e}");
            EXIT_USAGE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    // Every argument is checked before anything is created (the audit log first of all).
    if args.max_runs == 0 || args.timeout == 0 || args.memory == 0 || args.max_script == 0 {
        return Err("--max-runs, --timeout, --memory and --max-script must be positive".into());
    }
    let system = args.system.config()?;
    let datapath = match args.datapath.as_deref() {
        Some(d) => d.parse().map_err(|e| format!("--datapath: {e}"))?,
        None => Datapath::host_default(),
    };
    let tenants = args.tenants.clone().unwrap_or_else(|| default_tenants_file(&args.policy));
    let store = Arc::new(PolicyStore::load(&args.policy, &tenants)?);
    let audit =
        Arc::new(AuditLog::open(&args.audit).map_err(|e| format!("--audit {}: {e}", args.audit.display()))?);
    // Opened once, at start-up: a trust store that cannot be read, or holds
    // no key (every script would be refused), stops the daemon here.
    let trust = if args.require_signed {
        let dir = args.trust.clone().unwrap_or_else(vetting::trust::default_dir);
        let t = TrustStore::open(&dir).map_err(|e| format!("--trust: {e}"))?;
        if t.is_empty() {
            return Err(format!(
                "--require-signed: {} holds no keys (*.pub): every script would be refused",
                t.describe()
            ));
        }
        Some(t)
    } else {
        None
    };
    let allow = match &args.allow_digests {
        Some(f) => {
            let a = AllowList::load(f).map_err(|e| format!("--allow-digests {e}"))?;
            if a.len() == 0 {
                return Err(format!(
                    "--allow-digests: {} lists no digest: every script would be refused",
                    f.display()
                ));
            }
            Some(a)
        }
        None => None,
    };
    let cache = CompileCache::open(&args.cache_dir.clone().unwrap_or_else(cache::default_dir));
    let engine = Arc::new(Engine::new(cache).map_err(|e| format!("cannot start the Wasm engine: {e:#}"))?);
    let slots = store
        .tenants()
        .iter()
        .map(|t| (t.name.clone(), Arc::new(Semaphore::new(t.max_runs.unwrap_or(args.max_runs) as usize))))
        .collect();

    // Runs of a daemon that was killed are undone before new ones start.
    let journal_dir = args.journal_dir.clone().unwrap_or_else(store::default_dir);
    crate::journal::sweep::recover_all(&journal_dir, false, true, &log_notice).await;

    let listener = bind(&args.socket, args.socket_mode)?;
    eprintln!(
        "ovs-run serve: listening on {} (mode {:o}), {} tenant(s) from {}, audit log {}{}",
        args.socket.display(),
        args.socket_mode,
        store.tenants().len(),
        tenants.display(),
        audit.path().display(),
        trust
            .as_ref()
            .map(|t| format!(", scripts must be signed by a key of {}", t.describe()))
            .unwrap_or_default()
            + &allow
                .as_ref()
                .map(|a| format!(", only the {} script digest(s) of {}", a.len(), a.file().display()))
                .unwrap_or_default()
    );
    let socket = args.socket.clone();
    let refusals = RefusalLog::new(audit.clone());
    let backend = Arc::new(SystemBackend::new(system.clone()));
    backend.prewarm();
    let daemon = Arc::new(Daemon {
        store,
        audit,
        refusals,
        engine,
        args,
        system,
        datapath,
        journal_dir,
        slots,
        trust,
        backend,
        warm: Default::default(),
        allow,
        log: RequestLog::default(),
    });
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut summaries = tokio::time::interval(Duration::from_secs(1));
    let signal = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("ovs-run serve: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Over the limit: the connection is dropped unanswered, and counted.
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    daemon.audit_failure(daemon.refusals.dropped_at_cap());
                    continue;
                };
                let d = daemon.clone();
                tokio::spawn(async move {
                    d.connection(stream).await;
                    drop(permit);
                });
            }
            _ = summaries.tick() => daemon.audit_failure(daemon.refusals.flush(false)),
            _ = tokio::signal::ctrl_c() => break "SIGINT",
            _ = term.recv() => break "SIGTERM",
        }
    };
    // Stop accepting, stop the runs (each is rolled back and its journal
    // closed, as a run stopped by a signal is), and wait for them to finish.
    drop(listener);
    let _ = std::fs::remove_file(&socket);
    let running = MAX_CONNECTIONS - connections.available_permits();
    eprintln!("ovs-run serve: {signal}: stopping {running} connection(s) and their runs");
    runner::stop_all();
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.acquire_many(all)).await.is_err() {
        eprintln!(
            "ovs-run serve: runs still rolling back after {} s; their journals are left for the next start",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    daemon.audit_failure(daemon.refusals.flush(true));
    eprintln!("ovs-run serve: stopped");
    Ok(())
}

/// Listen on `path` with `mode`, replacing a stale socket (never a regular file).
fn bind(path: &std::path::Path, mode: u32) -> Result<UnixListener, String> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!("{} exists and is not a socket; not replacing it", path.display()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("{} is in use by another daemon", path.display()));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    Ok(listener)
}

/// What a connection sends back before the run: a refusal.
struct Refusal {
    code: i32,
    status: &'static str,
    message: String,
    /// Known once the peer was mapped to a tenant.
    tenant: Option<String>,
}

impl Refusal {
    fn usage(status: &'static str, message: impl Into<String>) -> Self {
        Self { code: EXIT_USAGE, status, message: message.into(), tenant: None }
    }
}

/// Who sent a request, for its log line.
struct Peer {
    request: u64,
    uid: u32,
    gid: u32,
    pid: Option<i32>,
    started: std::time::Instant,
}

/// A request that passed every check before running.
struct Prepared {
    tenant: Tenant,
    uid: u32,
    _slot: OwnedSemaphorePermit,
    request: SubmitRequest,
    pre: ScriptPre<RunState>,
    policy: Option<CedarPolicy>,
    sha: String,
}

impl Daemon {
    async fn connection(&self, stream: UnixStream) {
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("ovs-run serve: no peer credentials: {e}");
                return;
            }
        };
        let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid());
        let peer = Peer { request: self.log.next(), uid, gid, pid, started: std::time::Instant::now() };
        let (mut reader, mut writer) = stream.into_split();
        // A connection still sending its request when the daemon stops is refused.
        let prepared = tokio::select! {
            biased;
            p = self.prepare(uid, gid, &mut reader) => p,
            _ = runner::stopped() => Err(Refusal::usage("shutting-down", "the daemon is shutting down")),
        };
        match prepared {
            Ok(p) => self.execute(p, &peer, writer).await,
            Err(r) => {
                let stranger = r.tenant.is_none() && r.status == "unknown-tenant";
                let mut line = self.request_line("refused", &peer, r.tenant.as_deref());
                line.field("status", r.status).field("code", r.code).field("error", &r.message);
                if stranger {
                    self.log.emit_stranger(&mut line);
                } else {
                    line.emit();
                }
                let mut m = Map::new();
                m.insert("event".into(), json!("refused"));
                m.insert("uid".into(), json!(uid));
                m.insert("gid".into(), json!(gid));
                m.insert("pid".into(), json!(pid));
                m.insert("tenant".into(), json!(r.tenant));
                m.insert("status".into(), json!(r.status));
                m.insert("error".into(), json!(r.message));
                // Tenants are accountable and every refusal of theirs is on
                // record; strangers' refusals are rate-limited.
                self.audit_failure(if stranger {
                    self.refusals.refused(uid, m)
                } else {
                    self.audit.write(m)
                });
                let _ = send_text(&mut writer, protocol::STDERR, &format!("ovs-run: {}\n", r.message)).await;
                let _ = send_exit(&mut writer, r.code, r.status).await;
            }
        }
    }

    /// The start of a request's log line: who and which.
    fn request_line(&self, event: &str, peer: &Peer, tenant: Option<&str>) -> Line {
        let mut l = Line::new(event, peer.request);
        l.field("tenant", tenant.unwrap_or("-")).field("uid", peer.uid).field("gid", peer.gid);
        if let Some(pid) = peer.pid {
            l.field("pid", pid);
        }
        l
    }

    fn audit_failure(&self, r: std::io::Result<()>) {
        if let Err(e) = r {
            eprintln!("ovs-run serve: cannot write the audit log {}: {e}", self.audit.path().display());
        }
    }

    /// Everything before the run; Err: refused, nothing ran.
    async fn prepare(&self, uid: u32, gid: u32, reader: &mut OwnedReadHalf) -> Result<Prepared, Refusal> {
        // Identity from the kernel, before a byte of the request is read.
        let tenant =
            self.store.tenant_for_peer(uid, gid).map_err(|m| Refusal::usage("unknown-tenant", m))?.clone();
        let name = tenant.name.clone();
        self.prepare_for(tenant, uid, reader).await.map_err(|mut r| {
            r.tenant = Some(name);
            r
        })
    }

    async fn prepare_for(
        &self,
        tenant: Tenant,
        uid: u32,
        reader: &mut OwnedReadHalf,
    ) -> Result<Prepared, Refusal> {
        let slots = self.slots.get(&tenant.name).expect("a slot per tenant").clone();
        let max = tenant.max_runs.unwrap_or(self.args.max_runs);
        let slot = slots.try_acquire_owned().map_err(|_| {
            Refusal::usage("busy", format!("tenant {} already runs {max} script(s), its limit", tenant.name))
        })?;

        let (request, wasm) =
            tokio::time::timeout(REQUEST_TIMEOUT, self.read_request(reader)).await.map_err(|_| {
                Refusal::usage(
                    "bad-request",
                    format!("no complete request within {} s", REQUEST_TIMEOUT.as_secs()),
                )
            })??;
        let sha = hex::encode(Sha256::digest(&wasm));
        if let Some(allow) = &self.allow {
            if !allow.allows(&sha) {
                return Err(Refusal::usage(
                    "not-allowed",
                    format!("script sha256:{sha}: refused: not in the daemon's allow-list of script digests"),
                ));
            }
        }
        // Vetting reads the bytes only: a refused script is never compiled.
        if let Some(trust) = &self.trust {
            vetting::check(&wasm, trust, RequireSigned::Yes)
                .map_err(|e| Refusal::usage("unsigned", format!("script {}: refused: {e}", &sha[..12])))?;
        }

        let warm = self.warm.lock().expect("warm scripts").get(&sha);
        let pre = match warm {
            Some(pre) => pre,
            None => {
                // Compiling is CPU work: off the async workers.
                let engine = self.engine.clone();
                let compile_timeout = tenant.timeout.unwrap_or(Duration::from_secs(self.args.timeout));
                let pre = tokio::task::spawn_blocking(move || {
                    engine.load_within(&wasm, compile_timeout).map(|(pre, _)| pre)
                })
                .await
                .map_err(|e| Refusal::usage("bad-script", format!("loading the script failed: {e}")))?
                .map_err(|e| Refusal::usage("bad-script", format!("script {}: {e}", &sha[..12])))?;
                self.warm.lock().expect("warm scripts").put(sha.clone(), pre.clone());
                pre
            }
        };
        let policy = self.store.policy_for(&tenant.name).map_err(|m| Refusal::usage("unknown-tenant", m))?;
        if let Some(msg) = runner::refused_imports(&self.engine, &pre, &policy) {
            return Err(Refusal::usage("refused-imports", format!("script {}: {msg}", &sha[..12])));
        }
        Ok(Prepared { tenant, uid, _slot: slot, request, pre, policy: Some(policy), sha })
    }

    async fn execute(&self, mut p: Prepared, peer: &Peer, writer: OwnedWriteHalf) {
        let mut line = self.request_line("run", peer, Some(&p.tenant.name));
        line.field("sha256", &p.sha).field("dry_run", p.request.dry_run);
        let (sink, chunks) = OutputSink::channel(64);
        let forwarder = tokio::spawn(forward(chunks, writer));
        let policy = p.policy.take().expect("prepared with a policy");
        let cfg = match self.run_config(&p, policy, sink) {
            Ok(cfg) => cfg,
            Err(msg) => {
                // Nothing ran; the sink went with the config, so the forwarder ends.
                line.field("status", "journal-error").field("code", EXIT_USAGE).field("error", &msg);
                line.emit();
                let Ok((mut w, true)) = forwarder.await else { return };
                let _ = send_text(&mut w, protocol::STDERR, &format!("ovs-run: {msg}\n")).await;
                let _ = send_exit(&mut w, EXIT_USAGE, "journal-error").await;
                return;
            }
        };
        let result = runner::run(&self.engine, &p.pre, &p.request.args, cfg).await;
        line.field("status", result.status())
            .field("code", result.exit_code())
            .field("changes", result.changes.len());
        if let Some(m) = result.message() {
            line.field("error", m);
        }
        line.field("duration_ms", peer.started.elapsed().as_millis());
        line.emit();
        // The run's senders went with its store: the forwarder drains and ends.
        let Ok((mut w, true)) = forwarder.await else { return };
        // What `ovs-run --json` / `--dry-run` print, on the client's stdout.
        let (dry_run, ok) = (p.request.dry_run, !result.failed());
        if p.request.json {
            let doc = crate::runner::outcome_json(&result, dry_run, false);
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
            let _ = send_text(&mut w, protocol::STDOUT, &text).await;
        } else if dry_run {
            let _ = send_text(&mut w, protocol::STDOUT, &crate::runner::plan_text(&result.changes, ok)).await;
        }
        for line in result.report_lines(false) {
            let _ = send_text(&mut w, protocol::STDERR, &format!("{line}\n")).await;
        }
        let _ = send_exit(&mut w, result.exit_code(), result.status()).await;
    }

    async fn read_request(&self, reader: &mut OwnedReadHalf) -> Result<(SubmitRequest, Vec<u8>), Refusal> {
        let bad = |m: String| Refusal::usage("bad-request", m);
        let request = match protocol::read_frame(reader, protocol::MAX_REQUEST).await {
            Ok(Some((protocol::REQUEST, body))) => serde_json::from_slice::<SubmitRequest>(&body)
                .map_err(|e| bad(format!("malformed request: {e}")))?,
            Ok(Some((tag, _))) => return Err(bad(format!("expected a request frame, got tag {tag:#04x}"))),
            Ok(None) => return Err(bad("the client closed the connection before its request".into())),
            Err(e) => return Err(bad(format!("bad request frame: {e}"))),
        };
        let max = self.args.max_script << 20;
        let wasm = match protocol::read_frame(reader, max).await {
            Ok(Some((protocol::WASM, body))) => body,
            Ok(Some((tag, _))) => return Err(bad(format!("expected a script frame, got tag {tag:#04x}"))),
            Ok(None) => return Err(bad("the client closed the connection before its script".into())),
            Err(e) => return Err(bad(format!("bad script frame: {e}"))),
        };
        Ok((request, wasm))
    }

    fn run_config(&self, p: &Prepared, policy: CedarPolicy, sink: OutputSink) -> Result<RunConfig, String> {
        let system = self.system.clone();
        // A dry-run changes nothing (no journal) and plans from the real
        // state, read under the tenant's policy like every call.
        let (backend, journal): (Arc<dyn Backend>, Journal) = if p.request.dry_run {
            let reader: Arc<dyn Backend> = self.backend.clone();
            (Arc::new(DryRunBackend::new(Some(reader), vec![])), Journal::default())
        } else {
            let header = Header::for_system(&format!("sha256:{} (tenant {})", p.sha, p.tenant.name), &system);
            let journal = JournalFile::create(&self.journal_dir, &header)
                .map_err(|e| format!("cannot create a journal in {}: {e}", self.journal_dir.display()))?;
            (self.backend.clone(), Journal::on_disk(journal))
        };
        let log_level = match (p.request.quiet, p.request.verbose) {
            (true, _) => LogLevel::Error,
            (false, 0) => LogLevel::Warn,
            (false, 1) => LogLevel::Info,
            (false, 2) => LogLevel::Debug,
            _ => LogLevel::Trace,
        };
        let mut audit = RunAudit::new(self.audit.clone(), &p.tenant.name, Some(p.uid), &p.sha);
        // A dry-run's calls are on record too, but must not read as changes made.
        if p.request.dry_run {
            audit.run.push_str("-dry-run");
        }
        // The tenant's limits, or the daemon's: nothing in the request counts.
        let limits = Limits {
            timeout: p.tenant.timeout.unwrap_or(Duration::from_secs(self.args.timeout)),
            memory: p.tenant.memory_mib.unwrap_or(self.args.memory) << 20,
            max_calls: self.args.max_calls,
            // --json: stdout is the outcome document only.
            stdout_to_stderr: p.request.json,
        };
        Ok(RunConfig {
            backend,
            policy: Arc::new(policy),
            datapath: self.datapath,
            log_level,
            limits,
            rollback: true,
            journal,
            // The daemon's own SIGTERM handling stops it between runs.
            stop_on_signals: false,
            audit: Some(audit),
            output: Some(sink),
        })
    }
}

/// Copy the script's output to the client as frames. A client that went away
/// stops being written to, but the channel is still drained so the script
/// never waits on it. Returns the writer and whether the client is still there.
async fn forward(mut chunks: mpsc::Receiver<Chunk>, mut w: OwnedWriteHalf) -> (OwnedWriteHalf, bool) {
    let mut alive = true;
    while let Some(c) = chunks.recv().await {
        if alive {
            let tag = match c.stream {
                Stream::Stdout => protocol::STDOUT,
                Stream::Stderr => protocol::STDERR,
            };
            alive = protocol::write_frame(&mut w, tag, &c.data).await.is_ok();
        }
    }
    (w, alive)
}

async fn send_text(w: &mut OwnedWriteHalf, tag: u8, text: &str) -> std::io::Result<()> {
    protocol::write_frame(w, tag, text.as_bytes()).await
}

async fn send_exit(w: &mut OwnedWriteHalf, code: i32, status: &str) -> std::io::Result<()> {
    let exit = Exit { code, status: status.to_string() };
    protocol::write_frame(w, protocol::EXIT, &serde_json::to_vec(&exit).unwrap_or_default()).await
}

/// Recovery notices of a daemon go to its log (stderr, journald under systemd).
fn log_notice(notice: crate::journal::sweep::Notice) {
    match notice {
        crate::journal::sweep::Notice::Listing(line) | crate::journal::sweep::Notice::Warning(line) => {
            eprintln!("{line}")
        }
    }
}
