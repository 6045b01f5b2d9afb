//! `ovs-run submit`: send a script and its arguments to `ovs-run serve`,
//! print its output as it comes, and exit with its exit status. Runs as any
//! user; the daemon decides who that is from the socket's peer credentials.

use std::io::Write;
use std::path::PathBuf;

use tokio::net::UnixStream;

use super::protocol::{self, Exit, SubmitRequest};
use crate::runner::exit::EXIT_USAGE;

const AFTER_HELP: &str = "\
The script runs on the daemon's host, as the tenant your uid (or group) is
listed for in the daemon's tenants file, under the operator's policy and the
tenant's limits. Exit status: the script's (0 ok, 1 script error, 3 trap or
limit), or 2 when the daemon refused the request (unknown uid, the tenant's
concurrent-run limit, a script importing interfaces the tenant may never use).

Example:
  ovs-run submit --socket /run/ovs-run/ovs-run.sock attach.wasm br-a eth1 web --ipaddress=10.1.0.5/24";

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
    let fail = |m: String| {
        eprintln!("ovs-run submit: {m}");
        EXIT_USAGE
    };
    let wasm = match crate::registry::source::load(&a.script, &a.registry.options()).await {
        Ok((r, bytes)) => match r.pin.map(|pin| crate::vetting::check_pin(&bytes, &pin)) {
            Some(Err(e)) => return fail(format!("{}: refused: {e}", r.path.display())),
            _ => bytes,
        },
        Err(e) => return fail(e),
    };
    let stream = match UnixStream::connect(&a.socket).await {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot connect to the daemon at {}: {e}", a.socket.display())),
    };
    let (mut reader, mut writer) = stream.into_split();
    let request = SubmitRequest { args: a.args, verbose: a.verbose, quiet: a.quiet };
    let body = serde_json::to_vec(&request).expect("a request serializes");
    // The daemon may answer (refuse) before reading the script: read its
    // answer even when sending failed.
    let sent = async {
        protocol::write_frame(&mut writer, protocol::REQUEST, &body).await?;
        protocol::write_frame(&mut writer, protocol::WASM, &wasm).await
    }
    .await;

    loop {
        match protocol::read_frame(&mut reader, protocol::MAX_REPLY).await {
            Ok(Some((protocol::STDOUT, data))) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&data);
                let _ = out.flush();
            }
            Ok(Some((protocol::STDERR, data))) => {
                let _ = std::io::stderr().lock().write_all(&data);
            }
            Ok(Some((protocol::EXIT, data))) => {
                return match serde_json::from_slice::<Exit>(&data) {
                    Ok(exit) => exit.code,
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
