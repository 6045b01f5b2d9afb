//! ovs-docker style command lines: positional arguments plus `--key=value`
//! or `--key value` options from a fixed list; `--help`/`-h` asks for the
//! usage text; `--` ends the options. An unknown option is an error naming it.

use std::fmt;
use std::str::FromStr;

use crate::net::shorten;
use crate::Error;

/// What a script accepts: its usage text and option names (without `--`).
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub usage: &'static str,
    pub options: &'static [&'static str],
}

/// The parsed command line handed to a script's `main`.
#[derive(Clone, Debug)]
pub struct Args {
    spec: Spec,
    positional: Vec<String>,
    options: Vec<(&'static str, String)>,
}

/// One positional argument with its name from the usage (`BRIDGE`), so
/// parse errors say which argument was wrong.
#[derive(Clone, Copy, Debug)]
pub struct Arg<'a> {
    pub name: &'static str,
    pub value: &'a str,
}

impl Arg<'_> {
    /// Parses the value; the error is prefixed with the argument's name.
    pub fn parse<T: FromStr>(&self) -> Result<T, Error>
    where
        T::Err: fmt::Display,
    {
        self.value.parse().map_err(|e| invalid_value(self.name, self.value, e))
    }

    pub fn as_str(&self) -> &str {
        self.value
    }
}

impl fmt::Display for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.value)
    }
}

/// `--mtu: MTU '70000' is out of range 68-65535`; the value is added
/// (`--gateway: 'x': invalid IP address syntax`) when the message lacks it.
fn invalid_value(name: &str, value: &str, e: impl fmt::Display) -> Error {
    let message = e.to_string();
    let shown = shorten(value);
    // SDK types quote the (shortened) value themselves.
    if !value.is_empty() && message.contains(&format!("'{shown}'")) {
        Error::invalid(format!("{name}: {message}"))
    } else {
        Error::invalid(format!("{name}: '{shown}': {message}"))
    }
}

impl Args {
    /// Parses `raw` against `spec`. `Ok(None)` means help was asked for.
    pub fn parse(raw: Vec<String>, spec: Spec) -> Result<Option<Args>, Error> {
        let before_dashes = raw.iter().take_while(|a| a.as_str() != "--");
        if before_dashes.into_iter().any(|a| a == "--help" || a == "-h") {
            return Ok(None);
        }
        let mut args = Args { spec, positional: Vec::new(), options: Vec::new() };
        let mut raw = raw.into_iter();
        while let Some(arg) = raw.next() {
            if arg == "--" {
                args.positional.extend(raw.by_ref());
                break;
            }
            let Some(option) = arg.strip_prefix("--") else {
                args.positional.push(arg);
                continue;
            };
            let (key, inline) = match option.split_once('=') {
                Some((key, value)) => (key, Some(value.to_string())),
                None => (option, None),
            };
            let Some(&known) = spec.options.iter().find(|o| **o == key) else {
                return Err(args.usage_error(format!("unknown option --{}", shorten(key))));
            };
            let value = match inline {
                Some(value) => value,
                // `--key value`, but not `--key --other`: that is a forgotten value.
                None => match raw.next() {
                    Some(value) if !value.starts_with("--") => value,
                    _ => return Err(args.usage_error(format!("option --{known} needs a value"))),
                },
            };
            if args.get(known).is_some() {
                return Err(args.usage_error(format!("option --{known} given twice")));
            }
            args.options.push((known, value));
        }
        Ok(Some(args))
    }

    /// The script's usage text.
    pub fn usage(&self) -> &'static str {
        self.spec.usage
    }

    /// An invalid-argument error that points at the usage line.
    pub fn usage_error(&self, message: impl fmt::Display) -> Error {
        let line = self.spec.usage.lines().find(|l| !l.trim().is_empty());
        match line {
            Some(line) => Error::invalid(format!("{message} ({}; see --help)", line.trim())),
            None => Error::invalid(message.to_string()),
        }
    }

    /// All positional arguments, in order.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }

    /// Exactly `N` positional arguments, named for error messages:
    /// `let [bridge, port] = args.exact(["BRIDGE", "PORT"])?;`
    pub fn exact<const N: usize>(&self, names: [&'static str; N]) -> Result<[Arg<'_>; N], Error> {
        if let Some(missing) = names.get(self.positional.len()) {
            return Err(self.usage_error(format!("missing argument {missing}")));
        }
        if let Some(extra) = self.positional.get(N) {
            return Err(self.usage_error(format!("unexpected argument '{}'", shorten(extra))));
        }
        Ok(std::array::from_fn(|i| Arg { name: names[i], value: &self.positional[i] }))
    }

    /// The raw value of option `key`, if given.
    ///
    /// # Panics
    /// When `key` is not in the script's option list: that is a bug in the
    /// script, and silently answering "not given" would hide it.
    pub fn get(&self, key: &str) -> Option<&str> {
        assert!(self.spec.options.contains(&key), "option --{key} is not in this script's option list");
        self.options.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    /// Option `key` parsed as `T`, if given; the error names the option.
    pub fn opt<T: FromStr>(&self, key: &str) -> Result<Option<T>, Error>
    where
        T::Err: fmt::Display,
    {
        self.get(key)
            .map(|value| value.parse().map_err(|e| invalid_value(&format!("--{key}"), value, e)))
            .transpose()
    }

    /// Option `key` parsed as `T`, or `default` parsed the same way.
    pub fn opt_or<T: FromStr>(&self, key: &str, default: &str) -> Result<T, Error>
    where
        T::Err: fmt::Display,
    {
        let value = self.get(key).unwrap_or(default);
        value.parse().map_err(|e| invalid_value(&format!("--{key}"), value, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Cidr, IpAddr, Mtu};

    const SPEC: Spec =
        Spec { usage: "Usage: t A B [--mtu=N] [--gateway=IP]\nmore text", options: &["mtu", "gateway"] };

    fn parse(raw: &[&str]) -> Result<Option<Args>, Error> {
        Args::parse(raw.iter().map(|s| s.to_string()).collect(), SPEC)
    }

    #[test]
    fn positionals_and_both_option_forms() {
        let args = parse(&["a", "--mtu=1400", "b", "--gateway", "10.0.0.1"]).unwrap().unwrap();
        let [a, b] = args.exact(["A", "B"]).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("a", "b"));
        assert_eq!(args.opt::<Mtu>("mtu").unwrap().unwrap().get(), 1400);
        let gw: IpAddr = args.opt("gateway").unwrap().unwrap();
        assert_eq!(gw.to_string(), "10.0.0.1");
    }

    #[test]
    fn help_wins_even_with_other_errors() {
        assert!(parse(&["--bogus", "--help"]).unwrap().is_none());
        assert!(parse(&["-h"]).unwrap().is_none());
        // After `--` it is just an argument.
        let args = parse(&["--", "--help"]).unwrap().unwrap();
        assert_eq!(args.positional(), ["--help"]);
    }

    #[test]
    fn errors_name_the_culprit() {
        let e = parse(&["--bogus=1"]).unwrap_err().to_string();
        assert!(e.contains("unknown option --bogus") && e.contains("Usage: t A B"), "{e}");
        let e = parse(&["--mtu"]).unwrap_err().to_string();
        assert!(e.contains("--mtu needs a value"), "{e}");
        let e = parse(&["--mtu", "--gateway=1.2.3.4"]).unwrap_err().to_string();
        assert!(e.contains("--mtu needs a value"), "{e}");
        let e = parse(&["--mtu=1", "--mtu=2"]).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");

        let args = parse(&["a", "--mtu=70000", "--gateway=1.2.3"]).unwrap().unwrap();
        let e = args.exact(["A", "B"]).unwrap_err().to_string();
        assert!(e.starts_with("missing argument B"), "{e}");
        let e = args.opt::<Mtu>("mtu").unwrap_err().to_string();
        assert_eq!(e, "--mtu: MTU '70000' is out of range 68-65535");
        let e = args.opt::<IpAddr>("gateway").unwrap_err().to_string();
        assert_eq!(e, "--gateway: '1.2.3': invalid IP address syntax");

        let args = parse(&["a", "b", "c"]).unwrap().unwrap();
        let e = args.exact(["A", "B"]).unwrap_err().to_string();
        assert!(e.starts_with("unexpected argument 'c'"), "{e}");
        let args = parse(&["10.1.0.300/24", "b"]).unwrap().unwrap();
        let [a, _] = args.exact(["A", "B"]).unwrap();
        let e = a.parse::<Cidr>().unwrap_err().to_string();
        assert!(e.starts_with("A: '10.1.0.300/24' is not a valid CIDR"), "{e}");
    }

    #[test]
    fn defaults_are_parsed_like_values() {
        let args = parse(&[]).unwrap().unwrap();
        assert_eq!(args.opt_or::<Mtu>("mtu", "1500").unwrap().get(), 1500);
        assert!(args.opt::<Mtu>("mtu").unwrap().is_none());
    }

    #[test]
    #[should_panic(expected = "not in this script's option list")]
    fn asking_for_an_undeclared_option_is_a_bug() {
        let _ = parse(&[]).unwrap().unwrap().get("vlan");
    }
}
