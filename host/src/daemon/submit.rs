//! `ovs-run submit`: send a script and its arguments to `ovs-run serve`,
//! print its output as it comes, and exit with its exit status. Runs as any
//! user; the daemon decides who that is from the socket's peer credentials.

use std::io::Write;
use std::path::PathBuf;

use tokio::net::UnixStream;

use super::protocol::{self, Exit, SubmitRequest};
use crate::runner::exit::{EXIT_UNAVAILABLE, EXIT_USAGE};

const AFTER_HELP: &str = "\
The script runs on the daemon's host, as the tenant your uid (or group) is
listed for in the daemon's tenants file, under the operator's policy and the
tenant's limits. Exit status: the script's (0 ok, 1 script error, 3 trap or
limit, 4 the system was unavailable), 2 when the daemon refused the request
(unknown uid, the tenant's concurrent-run limit, a script importing
interfaces the tenant may never use, unsigned or not on the daemon's
allow-list), 4 when the daemon cannot be reached.

With --json, stdout is one JSON document: {\"status\", \"code\", \"dry_run\",
\"error\", \"changes\", \"rolled_back\", ...} as `ovs-run --json` prints it
(also for a refusal: status and error only); the script's own stdout and
every message go to stderr.

Examples:
  ovs-run submit --socket /run/ovs-run/ovs-run.sock attach.wasm br-a eth1 web --ipaddress=10.1.0.5/24
  # the plan only, under your policy, from the host's real state
  ovs-run submit --dry-run --json attach.wasm br-a eth1 web --ipaddress=10.1.0.5/24";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct SubmitArgs {
    /// The daemon's socket
    #[arg(long, value_name = "PATH", default_value = "/run/ovs-run/ovs-run.sock")]
    pub socket: PathBuf,

    /// Show the script's info logs (-vv: debug)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Show only the script's error logs
    #[arg(short, long)]
    pub quiet: bool,

    /// Print the outcome (the plan or the changes, and the status) as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Change nothing: have the daemon print the plan of what the script would do, under your policy
    #[arg(long)]
    pub dry_run: bool,

    /// The script component (a file, SCRIPT@sha256:HEX, or oci://HOST/REPO[:TAG][@sha256:HEX], resolved here and sent as bytes)
    #[arg(value_name = "SCRIPT")]
    pub script: PathBuf,

    #[command(flatten)]
    pub registry: crate::registry::cli::RegistryArgs,

    /// Arguments for the script
    #[arg(value_name = "SCRIPT-ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub async fn run(a: SubmitArgs) -> i32 {
    let json = a.json;
    let fail_with = |code: i32, status: &str, m: String| {
        eprintln!("ovs-run submit: {m}");
        if json {
            print_json(&serde_json::json!({"status": status, "code": code, "error": m}));
        }
        code
    };
    let fail = |m: String| fail_with(EXIT_USAGE, "submit-error", m);
    let wasm = match crate::registry::source::load(&a.script, &a.registry.options()).await {
        Ok((r, bytes)) => match r.pin.map(|pin| crate::vetting::check_pin(&bytes, &pin)) {
            Some(Err(e)) => return fail(format!("{}: refused: {e}", r.path.display())),
            _ => bytes,
        },
        Err(e) => return fail(e),
    };
    let stream = match UnixStream::connect(&a.socket).await {
        Ok(s) => s,
        // The daemon is down (or not there): the system's fault, not the input's.
        Err(e) => {
            return fail_with(
                EXIT_UNAVAILABLE,
                "unavailable",
                format!(
                    "cannot connect to the daemon at {}: {e} (is `ovs-run serve` running?)",
                    a.socket.display()
                ),
            )
        }
    };
    let (mut reader, mut writer) = stream.into_split();
    let request =
        SubmitRequest { args: a.args, verbose: a.verbose, quiet: a.quiet, json: a.json, dry_run: a.dry_run };
    let body = serde_json::to_vec(&request).expect("a request serializes");
    // The daemon may answer (refuse) before reading the script: read its
    // answer even when sending failed.
    let sent = async {
        protocol::write_frame(&mut writer, protocol::REQUEST, &body).await?;
        protocol::write_frame(&mut writer, protocol::WASM, &wasm).await
    }
    .await;

    // With --json: whether the daemon sent its JSON document, and what it
    // said on stderr (a refusal's reason, for the document made here).
    let (mut got_json, mut said) = (false, String::new());
    loop {
        match protocol::read_frame(&mut reader, protocol::MAX_REPLY).await {
            Ok(Some((protocol::STDOUT, data))) => {
                got_json = true;
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&data);
                let _ = out.flush();
            }
            Ok(Some((protocol::STDERR, data))) => {
                if json && said.len() < 64 << 10 {
                    said.push_str(&String::from_utf8_lossy(&data));
                }
                let _ = std::io::stderr().lock().write_all(&data);
            }
            Ok(Some((protocol::EXIT, data))) => {
                return match serde_json::from_slice::<Exit>(&data) {
                    Ok(exit) => {
                        // Refused before it ran: no document from the daemon.
                        if json && !got_json {
                            let error = said.trim().trim_start_matches("ovs-run: ").to_string();
                            print_json(&serde_json::json!({
                                "status": exit.status, "code": exit.code, "error": error,
                            }));
                        }
                        exit.code
                    }
                    Err(e) => fail(format!("malformed exit frame from the daemon: {e}")),
                };
            }
            Ok(Some((tag, _))) => return fail(format!("unexpected frame tag {tag:#04x} from the daemon")),
            Ok(None) => {
                let why = match sent {
                    Err(e) => format!(" (sending the request failed: {e})"),
                    Ok(()) => String::new(),
                };
                return fail(format!("the daemon closed the connection without an exit status{why}"));
            }
            Err(e) => return fail(format!("reading from the daemon: {e}")),
        }
    }
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
