//! `--ros-args` parsing and ROS 2 name resolution, as rcl does it.
//!
//! `ros2 run` and `ros2 launch` pass a node executable arguments such as
//!
//! ```text
//! sim_node --robot ur5e --ros-args -r __node:=sim -r __ns:=/arm1 --params-file sim.yaml \
//!          -p rate_hz:=50 -r joint_states:=/robot/joint_states --log-level debug
//! ```
//!
//! Everything after `--ros-args` up to `--` (or the end) is a ROS argument; there may be several
//! `--ros-args` sections. Everything else is returned in [`RosArgs::user_args`] for the node's own
//! parser (clap). Sources: design article "ROS 2 command line arguments"
//! (design.ros2.org/articles/ros_command_line_arguments.html), rcl `src/rcl/arguments.c`,
//! `remap.c` and `expand_topic_name.c`; names: design.ros2.org/articles/topic_and_service_names.html.
//!
//! Supported: `-r`/`--remap` `[node:]from:=to` (topic/service remaps, `__node`/`__name`, `__ns`),
//! `-p`/`--param` `[node:]name:=yaml_value`, `--params-file FILE`, `--log-level [logger:=]LEVEL`.
//! Accepted and ignored with a warning in [`RosArgs::warnings`]: `-e`/`--enclave`, the
//! `--(enable|disable)-*-logs` switches, `--log-config-file`, `--log-file-name`, and anything
//! unknown.

use std::path::PathBuf;

use crate::params::ParamValue;

/// Errors from parsing ROS arguments or resolving names.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// A flag that needs a value was last.
    #[error("ROS argument `{flag}` needs a value")]
    MissingValue {
        /// The flag, e.g. `-r`.
        flag: String,
    },
    /// A remap rule or parameter override without `:=`.
    #[error("ROS argument `{flag} {value}`: expected `name:=value`")]
    BadRule {
        /// The flag.
        flag: String,
        /// Its value.
        value: String,
    },
    /// A `-p` value that is not a valid ROS parameter value.
    #[error("ROS argument `-p {name}:=...`: {reason}")]
    BadParam {
        /// Parameter name.
        name: String,
        /// Why the value was rejected.
        reason: String,
    },
    /// A topic, service, node or namespace name that ROS 2 does not allow.
    #[error("invalid ROS name `{name}`: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
}

/// One remap rule `[node:]from:=to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remap {
    /// Node name this rule is limited to (the `node_name:` prefix), if any.
    pub node: Option<String>,
    /// Name to match (`__node`, `__ns` or a topic/service name).
    pub from: String,
    /// Replacement.
    pub to: String,
}

/// One `-p [node:]name:=value` override.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamOverride {
    /// Node name this override is limited to, if any.
    pub node: Option<String>,
    /// Parameter name (dots for nesting).
    pub name: String,
    /// Typed value (YAML-parsed).
    pub value: ParamValue,
}

/// ROS command-line arguments of one process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RosArgs {
    /// Non-ROS arguments in order, starting with the program name when it was given (so they can
    /// go straight to `clap::Parser::parse_from`).
    pub user_args: Vec<String>,
    /// Remap rules in command-line order (the first matching rule wins, as in rcl).
    pub remaps: Vec<Remap>,
    /// `-p` overrides in command-line order (later wins).
    pub params: Vec<ParamOverride>,
    /// `--params-file` paths in order (later files override earlier ones).
    pub params_files: Vec<PathBuf>,
    /// `--log-level` settings: `(None, level)` for the default, `(Some(logger), level)` per logger.
    pub log_levels: Vec<(Option<String>, String)>,
    /// `-e`/`--enclave` (security is not supported; kept for reference).
    pub enclave: Option<String>,
    /// Arguments that were accepted but ignored, one message each.
    pub warnings: Vec<String>,
}

impl RosArgs {
    /// Parses the process's own arguments ([`std::env::args`]).
    pub fn from_env() -> Result<RosArgs, ArgsError> {
        RosArgs::parse(std::env::args())
    }

    /// Parses a full argument vector (program name first, as `std::env::args` gives it).
    pub fn parse<I, S>(args: I) -> Result<RosArgs, ArgsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out = RosArgs::default();
        let mut it = args.into_iter().map(Into::into);
        let mut in_ros = false;
        while let Some(arg) = it.next() {
            if !in_ros {
                if arg == "--ros-args" {
                    in_ros = true;
                } else {
                    out.user_args.push(arg);
                }
                continue;
            }
            let mut value_of = |flag: &str| {
                it.next().ok_or_else(|| ArgsError::MissingValue { flag: flag.to_owned() })
            };
            match arg.as_str() {
                "--" => in_ros = false,
                "--ros-args" => {}
                "-r" | "--remap" => {
                    let v = value_of(&arg)?;
                    out.remaps.push(parse_remap(&arg, &v)?);
                }
                "-p" | "--param" => {
                    let v = value_of(&arg)?;
                    out.params.push(parse_param(&arg, &v)?);
                }
                "--params-file" => out.params_files.push(PathBuf::from(value_of(&arg)?)),
                "--log-level" => {
                    let v = value_of(&arg)?;
                    match v.split_once(":=") {
                        Some((logger, level)) => out
                            .log_levels
                            .push((Some(logger.to_owned()), level.to_ascii_lowercase())),
                        None => out.log_levels.push((None, v.to_ascii_lowercase())),
                    }
                }
                "-e" | "--enclave" => {
                    let v = value_of(&arg)?;
                    out.warnings
                        .push(format!("`{arg} {v}` ignored: DDS security is not supported"));
                    out.enclave = Some(v);
                }
                "--log-config-file" | "--log-file-name" => {
                    let v = value_of(&arg)?;
                    out.warnings.push(format!("`{arg} {v}` ignored"));
                }
                "--enable-rosout-logs"
                | "--disable-rosout-logs"
                | "--enable-stdout-logs"
                | "--disable-stdout-logs"
                | "--enable-external-lib-logs"
                | "--disable-external-lib-logs" => {
                    out.warnings.push(format!("`{arg}` ignored"));
                }
                _ => out.warnings.push(format!("unknown ROS argument `{arg}` ignored")),
            }
        }
        Ok(out)
    }

    /// The node name after `__node:=` (or `__name:=`) remaps; `default` otherwise.
    /// Node-scoped rules (`talker:__node:=x`) match the name the node was created with.
    pub fn node_name(&self, default: &str) -> String {
        self.remaps
            .iter()
            .find(|r| {
                (r.from == "__node" || r.from == "__name")
                    && r.node.as_deref().is_none_or(|n| n == default)
            })
            .map_or_else(|| default.to_owned(), |r| r.to.clone())
    }

    /// The namespace after `__ns:=` remaps (made absolute); `default` otherwise.
    /// Node-scoped rules match the node name the node was created with.
    pub fn namespace(&self, node_default: &str, default: &str) -> String {
        let ns = self
            .remaps
            .iter()
            .find(|r| r.from == "__ns" && r.node.as_deref().is_none_or(|n| n == node_default))
            .map_or(default, |r| r.to.as_str());
        normalize_namespace(ns)
    }

    /// Resolves a topic or service name for the node `node_name` in `namespace` (the effective
    /// ones, after [`Self::node_name`] / [`Self::namespace`]) as rcl does: expand `~` and
    /// `{node}`/`{ns}`, make relative names absolute against the namespace, validate, then apply
    /// the first matching remap rule (whose `from` and `to` are expanded the same way).
    pub fn resolve_name(
        &self,
        name: &str,
        node_name: &str,
        namespace: &str,
    ) -> Result<String, ArgsError> {
        let namespace = normalize_namespace(namespace);
        let expanded = expand_name(name, node_name, &namespace)?;
        for rule in &self.remaps {
            if rule.from.starts_with("__") {
                continue;
            }
            if rule.node.as_deref().is_some_and(|n| n != node_name) {
                continue;
            }
            let Ok(from) = expand_name(&rule.from, node_name, &namespace) else {
                continue;
            };
            if from == expanded {
                return expand_name(&rule.to, node_name, &namespace);
            }
        }
        Ok(expanded)
    }

    /// A `tracing_subscriber::EnvFilter` directive for the `--log-level` settings, e.g.
    /// `"debug"` or `"info,sim=debug"`; `None` when no `--log-level` was given. ROS levels map to
    /// tracing's (`fatal` → `error`, `warn` → `warn`, `unset` → `info`).
    pub fn log_filter(&self) -> Option<String> {
        if self.log_levels.is_empty() {
            return None;
        }
        let map = |l: &str| match l {
            "fatal" | "error" => "error",
            "warn" | "warning" => "warn",
            "debug" => "debug",
            "trace" => "trace",
            _ => "info",
        };
        let mut parts = Vec::new();
        if let Some((_, l)) = self.log_levels.iter().rev().find(|(n, _)| n.is_none()) {
            parts.push(map(l).to_owned());
        }
        for (logger, l) in &self.log_levels {
            if let Some(logger) = logger {
                parts.push(format!("{}={}", logger.replace('.', "::"), map(l)));
            }
        }
        Some(parts.join(","))
    }
}

fn split_rule<'a>(
    flag: &str,
    value: &'a str,
) -> Result<(Option<&'a str>, &'a str, &'a str), ArgsError> {
    let bad = || ArgsError::BadRule { flag: flag.to_owned(), value: value.to_owned() };
    let (lhs, rhs) = value.split_once(":=").ok_or_else(bad)?;
    // `node:from` – a ':' before ':=' limits the rule to one node. The `rostopic://` and
    // `rosservice://` scheme prefixes are accepted and dropped (the rule then applies to both).
    let strip = |s: &'a str| {
        s.strip_prefix("rostopic://").or_else(|| s.strip_prefix("rosservice://")).unwrap_or(s)
    };
    let (node, from) = if lhs.starts_with("rostopic://") || lhs.starts_with("rosservice://") {
        (None, strip(lhs))
    } else {
        match lhs.split_once(':') {
            Some((node, from)) if !node.is_empty() => (Some(node), strip(from)),
            Some(_) => return Err(bad()),
            None => (None, lhs),
        }
    };
    if from.is_empty() {
        return Err(bad());
    }
    Ok((node, from, rhs))
}

fn parse_remap(flag: &str, value: &str) -> Result<Remap, ArgsError> {
    let (node, from, to) = split_rule(flag, value)?;
    if to.is_empty() {
        return Err(ArgsError::BadRule { flag: flag.to_owned(), value: value.to_owned() });
    }
    Ok(Remap { node: node.map(str::to_owned), from: from.to_owned(), to: to.to_owned() })
}

fn parse_param(flag: &str, value: &str) -> Result<ParamOverride, ArgsError> {
    let (node, name, text) = split_rule(flag, value)?;
    let value = ParamValue::from_yaml_text(text)
        .map_err(|reason| ArgsError::BadParam { name: name.to_owned(), reason })?;
    Ok(ParamOverride { node: node.map(str::to_owned), name: name.to_owned(), value })
}

/// Makes a namespace absolute, without a trailing slash (`""` and `"/"` are both the root `/`).
pub fn normalize_namespace(ns: &str) -> String {
    let trimmed = ns.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

/// Expands a topic or service name to its fully qualified form (rcl_expand_topic_name):
/// `~` is the node's private namespace `/ns/node`, `{node}` and `{ns}`/`{namespace}` are
/// substituted, relative names are prefixed with the namespace. The result is validated.
pub fn expand_name(name: &str, node_name: &str, namespace: &str) -> Result<String, ArgsError> {
    let bad = |reason| ArgsError::BadName { name: name.to_owned(), reason };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    let ns = normalize_namespace(namespace);
    let private = if ns == "/" { format!("/{node_name}") } else { format!("{ns}/{node_name}") };
    let mut full = if name == "~" {
        private.clone()
    } else if let Some(rest) = name.strip_prefix("~/") {
        format!("{private}/{rest}")
    } else if name.starts_with('~') {
        return Err(bad("`~` must be followed by `/`"));
    } else {
        name.to_owned()
    };
    full = full.replace("{node}", node_name).replace("{ns}", &ns).replace("{namespace}", &ns);
    if full.contains('{') || full.contains('}') {
        return Err(bad("unknown substitution"));
    }
    if !full.starts_with('/') {
        full = if ns == "/" { format!("/{full}") } else { format!("{ns}/{full}") };
    }
    // `{ns}` at the start of a relative name gives `//...`; collapse that one case.
    while full.starts_with("//") {
        full.remove(0);
    }
    validate_fqn(&full).map_err(bad)?;
    Ok(full)
}

/// Checks a fully qualified topic/service name (rmw_validate_full_topic_name).
fn validate_fqn(full: &str) -> Result<(), &'static str> {
    if full.len() > 1 && full.ends_with('/') {
        return Err("must not end with `/`");
    }
    for tok in full[1..].split('/') {
        if tok.is_empty() {
            return Err("must not contain `//`");
        }
        if !tok.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err("tokens may hold only letters, digits and `_`");
        }
        if tok.starts_with(|c: char| c.is_ascii_digit()) {
            return Err("tokens must not start with a digit");
        }
        if tok.contains("__") {
            return Err("must not contain `__`");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RosArgs {
        RosArgs::parse(s.split_whitespace()).unwrap()
    }

    #[test]
    fn splits_user_and_ros_args() {
        let a = parse("node --robot ur5e --ros-args -r __node:=sim -p rate:=50 -- --verbose");
        assert_eq!(a.user_args, ["node", "--robot", "ur5e", "--verbose"]);
        assert_eq!(a.node_name("sim_node"), "sim");
        assert_eq!(a.params[0].name, "rate");
        assert_eq!(a.params[0].value, ParamValue::Integer(50));
        let none = parse("node a b");
        assert_eq!(none.user_args, ["node", "a", "b"]);
        assert_eq!(none, RosArgs { user_args: none.user_args.clone(), ..Default::default() });
    }

    #[test]
    fn launch_style_arguments() {
        let a = parse(
            "/ws/lib/equigate/sim_node --ros-args -r __node:=sim -r __ns:=/arm1 \
             --params-file /tmp/a.yaml --params-file /tmp/b.yaml -p use_sim_time:=true \
             --remap joint_states:=/robot/joint_states --param names:=[a,b] -p gains:=[1.0,2.5] \
             -p label:=hello -p ids:=[1,2] -p flag:=false -p half:=0.5",
        );
        assert_eq!(a.node_name("sim_node"), "sim");
        assert_eq!(a.namespace("sim_node", "/"), "/arm1");
        assert_eq!(a.params_files, [PathBuf::from("/tmp/a.yaml"), PathBuf::from("/tmp/b.yaml")]);
        let v: Vec<_> = a.params.iter().map(|p| (p.name.as_str(), p.value.clone())).collect();
        assert_eq!(
            v,
            [
                ("use_sim_time", ParamValue::Bool(true)),
                ("names", ParamValue::StringArray(vec!["a".into(), "b".into()])),
                ("gains", ParamValue::DoubleArray(vec![1.0, 2.5])),
                ("label", ParamValue::String("hello".into())),
                ("ids", ParamValue::IntegerArray(vec![1, 2])),
                ("flag", ParamValue::Bool(false)),
                ("half", ParamValue::Double(0.5)),
            ]
        );
        assert_eq!(
            a.resolve_name("joint_states", "sim", "/arm1").unwrap(),
            "/robot/joint_states",
            "remap `from` is resolved against the namespace before matching"
        );
        assert!(a.warnings.is_empty());
    }

    #[test]
    fn node_scoped_rules() {
        let a = parse("x --ros-args -r talker:__node:=t2 -r listener:chatter:=/other -r __ns:=ns");
        assert_eq!(a.node_name("talker"), "t2");
        assert_eq!(a.node_name("listener"), "listener");
        assert_eq!(a.namespace("talker", "/"), "/ns");
        assert_eq!(a.resolve_name("chatter", "listener", "/ns").unwrap(), "/other");
        assert_eq!(a.resolve_name("chatter", "t2", "/ns").unwrap(), "/ns/chatter");
    }

    #[test]
    fn resolution_like_rcl() {
        let a = RosArgs::default();
        assert_eq!(a.resolve_name("joint_states", "n", "/").unwrap(), "/joint_states");
        assert_eq!(a.resolve_name("joint_states", "n", "").unwrap(), "/joint_states");
        assert_eq!(a.resolve_name("joint_states", "n", "/arm1").unwrap(), "/arm1/joint_states");
        assert_eq!(a.resolve_name("/clock", "n", "/arm1").unwrap(), "/clock");
        assert_eq!(a.resolve_name("~/reset", "sim", "/arm1").unwrap(), "/arm1/sim/reset");
        assert_eq!(a.resolve_name("~/reset", "sim", "/").unwrap(), "/sim/reset");
        assert_eq!(a.resolve_name("~", "sim", "/a/b").unwrap(), "/a/b/sim");
        assert_eq!(a.resolve_name("{node}/x", "sim", "/a").unwrap(), "/a/sim/x");
        assert_eq!(a.resolve_name("a/b/c", "sim", "/ns").unwrap(), "/ns/a/b/c");
        for bad in ["", "a//b", "a/", "1abc", "a b", "~x", "a__b", "{foo}/x"] {
            assert!(a.resolve_name(bad, "n", "/").is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn remap_first_match_wins_and_private_names_remap() {
        let a = parse("x --ros-args -r ~/reset:=/sim_reset -r cmd:=a -r cmd:=b -r /abs:=rel");
        assert_eq!(a.resolve_name("~/reset", "sim", "/").unwrap(), "/sim_reset");
        assert_eq!(a.resolve_name("/sim/reset", "sim", "/").unwrap(), "/sim_reset");
        assert_eq!(a.resolve_name("cmd", "n", "/ns").unwrap(), "/ns/a");
        assert_eq!(a.resolve_name("/abs", "n", "/ns").unwrap(), "/ns/rel");
    }

    #[test]
    fn unknown_and_ignored_arguments_warn() {
        let a = parse("x --ros-args --enclave /e --bogus --disable-rosout-logs --log-level debug");
        assert_eq!(a.enclave.as_deref(), Some("/e"));
        assert_eq!(a.warnings.len(), 3, "{:?}", a.warnings);
        assert!(a.warnings.iter().any(|w| w.contains("--bogus")));
        assert_eq!(a.log_filter().as_deref(), Some("debug"));
        let b = parse("x --ros-args --log-level WARN --log-level sim.core:=debug");
        assert_eq!(b.log_filter().as_deref(), Some("warn,sim::core=debug"));
        assert_eq!(parse("x").log_filter(), None);
    }

    #[test]
    fn malformed_arguments_are_errors() {
        for s in
            ["x --ros-args -r", "x --ros-args -r a=b", "x --ros-args -p x", "x --ros-args -r :a:=b"]
        {
            assert!(RosArgs::parse(s.split_whitespace()).is_err(), "{s}");
        }
        let e = RosArgs::parse(["x", "--ros-args", "-p", "a:=[1, x]"]).unwrap_err();
        assert!(e.to_string().contains("-p a"), "{e}");
    }

    #[test]
    fn url_scheme_prefixes() {
        let a = parse("x --ros-args -r rostopic://foo:=bar -r sim:rosservice://~/reset:=/r");
        assert_eq!(a.resolve_name("foo", "n", "/").unwrap(), "/bar");
        assert_eq!(a.resolve_name("~/reset", "sim", "/").unwrap(), "/r");
        assert_eq!(a.resolve_name("~/reset", "other", "/").unwrap(), "/other/reset");
    }

    #[test]
    fn several_ros_args_sections() {
        let a = parse("x --ros-args -p a:=1 -- mid --ros-args -p b:=2");
        assert_eq!(a.user_args, ["x", "mid"]);
        assert_eq!(a.params.len(), 2);
    }
}
