//! An async client for OVSDB, the Open vSwitch database protocol (RFC 7047),
//! on tokio.
//!
//! - [`Connection`] ([`jsonrpc`]): JSON-RPC over a Unix or TCP socket
//!   ([`Address`]): requests with timeouts that close a wedged connection,
//!   echo answered, notifications forwarded, bounded incremental framing;
//!   `get_schema` with a check of the tables and columns a caller needs,
//!   `monitor`, `transact`.
//! - [`value`]: [`Atom`], [`Value`] (atom, set, map) and [`Uuid`], with serde
//!   in RFC 7047's wire forms.
//! - [`operation`]: typed [`Operation`]s with [`Condition`]s and
//!   [`Mutation`]s, a [`Transaction`] builder and typed [`OpResult`]s.
//! - [`error`]: one [`Error`] enum; a failed operation keeps the server's
//!   `error` and `details` and a typed [`OpErrorKind`].
//! - [`row`] and [`vswitch`]: rows, the [`Table`] trait, and row structs for
//!   the `Open_vSwitch` database; [`ovn_nb`]: the same for `OVN_Northbound`
//!   (logical switches, their ports, logical routers and router ports).
//!
//! ```no_run
//! use ovsdb_client::{vswitch, Condition, Connection, Operation, Table, Transaction};
//!
//! # async fn demo() -> ovsdb_client::Result<()> {
//! let (conn, _notifications) = Connection::connect(&"unix:/run/openvswitch/db.sock".parse()?).await?;
//! conn.check_schema(vswitch::DATABASE, vswitch::REQUIREMENTS).await?;
//! let txn = Transaction::new(vswitch::DATABASE).with(Operation::select(
//!     vswitch::Bridge::NAME,
//!     vec![Condition::eq("name", "br0")],
//!     vswitch::Bridge::COLUMNS,
//! ));
//! let results = conn.transact(&txn).await?;
//! for row in results[0].rows() {
//!     println!("{:?}", vswitch::Bridge::from_row(row));
//! }
//! # Ok(())
//! # }
//! ```

pub mod address;
pub mod error;
pub mod jsonrpc;
pub mod monitor;
pub mod operation;
pub mod ovn_nb;
pub mod row;
pub mod schema;
pub mod value;
pub mod vswitch;

pub use address::Address;
pub use error::{Error, OpError, OpErrorKind, Result};
pub use jsonrpc::{Backoff, Connection, Notification, Options};
pub use monitor::{MonitorRequest, RowUpdate, TableUpdates};
pub use operation::{Condition, Function, Mutation, Mutator, OpResult, Operation, Transaction, Until};
pub use row::{Requirements, Row, Table};
pub use schema::Schema;
pub use value::{Atom, Uuid, Value};

/// The README's example is compiled as a doc test, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
