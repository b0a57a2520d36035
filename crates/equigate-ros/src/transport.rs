//! A thin layer over ros2-client (RustDDS): one participant and one node per [`Ros`], with the
//! domain and discovery range read from the environment, names resolved and remapped through
//! [`RosArgs`], and the project's QoS presets.
//!
//! # Discovery range (the exact rule, [`DiscoveryConfig::from_lookup`])
//!
//! Follows ROS 2 Jazzy's variables (docs.ros.org, Jazzy tutorial "Improved Dynamic Discovery";
//! rmw `rmw_discovery_options_t`), except that this project never defaults to the whole subnet:
//!
//! 1. `ROS_AUTOMATIC_DISCOVERY_RANGE` set and non-empty:
//!    `LOCALHOST` → loopback only; `SUBNET` → all interfaces; `SYSTEM_DEFAULT` → RustDDS's
//!    defaults (all interfaces); `OFF` → loopback only and no SPDP announcements to the
//!    localhost ports (RustDDS cannot switch discovery off entirely: a peer could still find the
//!    node by multicast on `lo` if `lo` has the MULTICAST flag, which Linux does not set by
//!    default); any other value → a warning and loopback only.
//! 2. Otherwise `ROS_LOCALHOST_ONLY` (Humble): `1` → loopback only; `0` → all interfaces.
//! 3. Otherwise (both unset) → loopback only. (Stock Humble would use the subnet here.)
//!
//! "Loopback only" builds the participant with RustDDS
//! `DomainParticipantBuilder::with_only_networks([127.0.0.1])`: multicast is joined and sent only
//! on interfaces whose address is 127.0.0.1, only 127.0.0.1 locators are announced, and SPDP goes
//! to the well-known unicast discovery ports on 127.0.0.1 (RustDDS's same-host loopback). Peers
//! (Cyclone DDS, Fast DDS) find it through their own localhost-only settings.
//!
//! `ROS_DOMAIN_ID` (0–232, default 0) is read here; ros2-client's `Context::new()` would always
//! use domain 0. `ROS_STATIC_PEERS` is not supported (warning).
//!
//! # Services
//! `rq/<name>Request` and `rr/<name>Reply` topics with ros2-client's service mapping: `Enhanced`
//! (what rmw_fastrtps, the Humble/Jazzy default, uses) unless `RMW_IMPLEMENTATION` names Cyclone
//! DDS, then `Cyclone`.

use std::net::{IpAddr, Ipv4Addr};

use ros2_client::dds::rustdds::{DomainParticipant, DomainParticipantBuilder};
use ros2_client::qos::{Durability, History, Reliability, WhenFull};
use ros2_client::{
    Client, Context, Name, Node, NodeName, NodeOptions, Publisher, QosProfile, Server,
    ServiceMapping, Subscription,
};

use crate::args::{ArgsError, RosArgs};
use crate::msg::{RosMsg, RosSrv};

/// Errors from setting up the transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// `ROS_DOMAIN_ID` is not an integer in 0..=232.
    #[error("ROS_DOMAIN_ID={value:?} is not a domain id (an integer 0..=232)")]
    DomainId {
        /// The variable's value.
        value: String,
    },
    /// A bad node, topic or service name, or a bad remap.
    #[error(transparent)]
    Name(#[from] ArgsError),
    /// ros2-client refused a resolved name.
    #[error("name `{name}` rejected by ros2-client: {reason}")]
    ClientName {
        /// The resolved name.
        name: String,
        /// ros2-client's reason.
        reason: String,
    },
    /// Creating the participant, node, topic, reader or writer failed.
    #[error("DDS: cannot create {what}: {reason}")]
    Dds {
        /// What was being created, e.g. "publisher on /joint_states".
        what: String,
        /// The middleware's message.
        reason: String,
    },
}

/// How far discovery reaches (Jazzy `ROS_AUTOMATIC_DISCOVERY_RANGE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryRange {
    /// No discovery announcements (see the module docs for RustDDS's limits).
    Off,
    /// Loopback only (the default).
    Localhost,
    /// All interfaces.
    Subnet,
    /// The middleware's defaults (RustDDS: all interfaces).
    SystemDefault,
}

/// Domain and discovery range for one participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// DDS domain (ROS_DOMAIN_ID).
    pub domain_id: u16,
    /// Discovery range.
    pub range: DiscoveryRange,
    /// Things worth a warning (unknown values, unsupported variables).
    pub warnings: Vec<String>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig { domain_id: 0, range: DiscoveryRange::Localhost, warnings: Vec::new() }
    }
}

impl DiscoveryConfig {
    /// Reads `ROS_DOMAIN_ID`, `ROS_AUTOMATIC_DISCOVERY_RANGE`, `ROS_LOCALHOST_ONLY` and
    /// `ROS_STATIC_PEERS` from the process environment.
    pub fn from_env() -> Result<DiscoveryConfig, TransportError> {
        DiscoveryConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as [`Self::from_env`] with a custom variable lookup (for tests). The rule is in the
    /// module docs.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<DiscoveryConfig, TransportError> {
        let mut warnings = Vec::new();
        let domain_id = match get("ROS_DOMAIN_ID").map(|s| s.trim().to_owned()) {
            None => 0,
            Some(s) if s.is_empty() => 0,
            Some(s) => match s.parse::<u16>() {
                Ok(d) if d <= 232 => d,
                _ => return Err(TransportError::DomainId { value: s }),
            },
        };
        let nonempty = |k: &str| get(k).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let range = if let Some(r) = nonempty("ROS_AUTOMATIC_DISCOVERY_RANGE") {
            match r.to_ascii_uppercase().as_str() {
                "OFF" => DiscoveryRange::Off,
                "LOCALHOST" => DiscoveryRange::Localhost,
                "SUBNET" => DiscoveryRange::Subnet,
                "SYSTEM_DEFAULT" => DiscoveryRange::SystemDefault,
                _ => {
                    warnings.push(format!(
                        "ROS_AUTOMATIC_DISCOVERY_RANGE={r:?} unknown; using LOCALHOST"
                    ));
                    DiscoveryRange::Localhost
                }
            }
        } else {
            match nonempty("ROS_LOCALHOST_ONLY").as_deref() {
                Some("0") => DiscoveryRange::Subnet,
                Some("1") | None => DiscoveryRange::Localhost,
                Some(other) => {
                    warnings.push(format!("ROS_LOCALHOST_ONLY={other:?} unknown; using 1"));
                    DiscoveryRange::Localhost
                }
            }
        };
        if nonempty("ROS_STATIC_PEERS").is_some() {
            warnings.push("ROS_STATIC_PEERS is not supported and is ignored".into());
        }
        Ok(DiscoveryConfig { domain_id, range, warnings })
    }

    /// Builds the RustDDS participant for this configuration.
    pub fn participant(&self) -> Result<DomainParticipant, TransportError> {
        let loopback = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let builder = DomainParticipantBuilder::new(self.domain_id);
        let builder = match self.range {
            DiscoveryRange::Localhost => builder.with_only_networks(loopback),
            DiscoveryRange::Off => builder.with_only_networks(loopback).same_host_loopback(false),
            DiscoveryRange::Subnet | DiscoveryRange::SystemDefault => builder,
        };
        builder.build().map_err(|e| TransportError::Dds {
            what: format!("participant in domain {}", self.domain_id),
            reason: e.to_string(),
        })
    }
}

/// QoS for states and commands (ROS default): reliable, volatile, keep last 10.
pub fn qos_reliable() -> QosProfile {
    QosProfile::publisher_default()
        .reliability(Reliability::Reliable { when_full: WhenFull::DEFAULT })
        .durability(Durability::Volatile)
        .history(History::KeepLast { depth: 10 })
}

/// QoS for sensor data such as images: best effort, volatile, keep last 5.
/// A best-effort publisher never matches a reliable subscriber.
pub fn qos_sensor_data() -> QosProfile {
    QosProfile::subscription_default()
        .reliability(Reliability::BestEffort)
        .durability(Durability::Volatile)
        .history(History::KeepLast { depth: 5 })
}

/// QoS for latched topics (e.g. a static map): reliable, transient local, keep last 1.
pub fn qos_latched() -> QosProfile {
    qos_reliable().durability(Durability::TransientLocal).history(History::KeepLast { depth: 1 })
}

/// One ROS 2 node on its own DDS participant.
pub struct Ros {
    context: Context,
    node: Node,
    args: RosArgs,
    name: String,
    namespace: String,
    service_mapping: ServiceMapping,
    discovery: DiscoveryConfig,
}

impl Ros {
    /// Creates the node `node_name` in `namespace` (both may be overridden by `__node`/`__ns`
    /// remaps in `args`), with domain and discovery range from the environment.
    pub fn new(node_name: &str, namespace: &str, args: &RosArgs) -> Result<Ros, TransportError> {
        let discovery = DiscoveryConfig::from_env()?;
        Ros::with_discovery(node_name, namespace, args, discovery)
    }

    /// Like [`Ros::new`] with an explicit discovery configuration.
    pub fn with_discovery(
        node_name: &str,
        namespace: &str,
        args: &RosArgs,
        discovery: DiscoveryConfig,
    ) -> Result<Ros, TransportError> {
        for w in discovery.warnings.iter().chain(&args.warnings) {
            tracing::warn!("{w}");
        }
        let name = args.node_name(node_name);
        let namespace = args.namespace(node_name, namespace);
        // Validate the node's fully qualified name with the topic-name rules.
        crate::args::expand_name("~", &name, &namespace)?;
        let participant = discovery.participant()?;
        let context = Context::from_domain_participant(participant).map_err(|e| {
            TransportError::Dds { what: "ros2-client context".into(), reason: e.to_string() }
        })?;
        let node_name_rc =
            NodeName::new(&namespace, &name).map_err(|e| TransportError::ClientName {
                name: format!("{namespace}/{name}"),
                reason: e.to_string(),
            })?;
        let node = context.new_node(node_name_rc, NodeOptions::new().enable_rosout(true)).map_err(
            |e| TransportError::Dds { what: format!("node {name}"), reason: e.to_string() },
        )?;
        let service_mapping = match std::env::var("RMW_IMPLEMENTATION") {
            Ok(rmw) if rmw.contains("cyclonedds") => ServiceMapping::Cyclone,
            _ => ServiceMapping::Enhanced,
        };
        tracing::debug!(
            node = %name, namespace = %namespace, domain = discovery.domain_id,
            range = ?discovery.range, "ROS node created"
        );
        Ok(Ros { context, node, args: args.clone(), name, namespace, service_mapping, discovery })
    }

    /// The node's name (after remaps).
    pub fn node_name(&self) -> &str {
        &self.name
    }

    /// The node's namespace (after remaps, absolute).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The node's fully qualified name, e.g. `/arm1/sim`.
    pub fn fully_qualified_name(&self) -> String {
        if self.namespace == "/" {
            format!("/{}", self.name)
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }

    /// The node's parameters: every `--params-file` (wildcard then exact entries), then `-p`,
    /// for this node's effective name and namespace. Turn them into a settings struct with
    /// [`crate::Params::deserialize`].
    pub fn load_params(&self) -> Result<crate::Params, crate::ParamsError> {
        crate::Params::load(&self.args, &self.name, &self.namespace)
    }

    /// The discovery configuration in use.
    pub fn discovery(&self) -> &DiscoveryConfig {
        &self.discovery
    }

    /// The service mapping used for servers and clients.
    pub fn service_mapping(&self) -> ServiceMapping {
        self.service_mapping
    }

    /// Overrides the service mapping (e.g. `Cyclone` to serve rmw_cyclonedds clients).
    pub fn set_service_mapping(&mut self, mapping: ServiceMapping) {
        self.service_mapping = mapping;
    }

    /// Resolves a topic or service name (relative, `~`, absolute) and applies remaps.
    pub fn resolve(&self, name: &str) -> Result<String, TransportError> {
        Ok(self.args.resolve_name(name, &self.name, &self.namespace)?)
    }

    fn client_name(&self, name: &str) -> Result<(String, Name), TransportError> {
        let full = self.resolve(name)?;
        let parsed = Name::parse(&full).map_err(|e| TransportError::ClientName {
            name: full.clone(),
            reason: e.to_string(),
        })?;
        Ok((full, parsed))
    }

    /// A publisher of `M` on `topic` (resolved and remapped; DDS topic `rt<resolved>`).
    pub fn publisher<M: RosMsg>(
        &mut self,
        topic: &str,
        qos: QosProfile,
    ) -> Result<Publisher<M>, TransportError> {
        let (full, name) = self.client_name(topic)?;
        let dds = |e: ros2_client::CreateError| TransportError::Dds {
            what: format!("publisher on {full}"),
            reason: e.to_string(),
        };
        let t = self.node.create_topic(&name, M::type_name(), &qos).map_err(dds)?;
        self.node.create_publisher(&t, Some(qos)).map_err(dds)
    }

    /// A subscription to `M` on `topic`. Poll it with `take()` (non-blocking).
    pub fn subscription<M: RosMsg>(
        &mut self,
        topic: &str,
        qos: QosProfile,
    ) -> Result<Subscription<M>, TransportError> {
        let (full, name) = self.client_name(topic)?;
        let dds = |e: ros2_client::CreateError| TransportError::Dds {
            what: format!("subscription on {full}"),
            reason: e.to_string(),
        };
        let t = self.node.create_topic(&name, M::type_name(), &qos).map_err(dds)?;
        self.node.create_subscription(&t, Some(qos)).map_err(dds)
    }

    /// A service server for `S` (e.g. [`crate::msg::TriggerSrv`]) on `service` (resolved and
    /// remapped; DDS topics `rq<resolved>Request` / `rr<resolved>Reply`), reliable keep last 10.
    /// Poll with `receive_request()`, answer with `send_response(id, response)`.
    pub fn service_server<S: RosSrv>(
        &mut self,
        service: &str,
    ) -> Result<Server<S::Request, S::Response>, TransportError> {
        let (full, name) = self.client_name(service)?;
        self.node
            .create_server::<S::Request, S::Response>(
                self.service_mapping,
                &name,
                &S::type_name(),
                qos_reliable(),
                qos_reliable(),
            )
            .map_err(|e| TransportError::Dds {
                what: format!("service server {full}"),
                reason: e.to_string(),
            })
    }

    /// A service client for `S` on `service`. `send_request(req)` then poll `receive_response()`.
    pub fn service_client<S: RosSrv>(
        &mut self,
        service: &str,
    ) -> Result<Client<S::Request, S::Response>, TransportError> {
        let (full, name) = self.client_name(service)?;
        self.node
            .create_client::<S::Request, S::Response>(
                self.service_mapping,
                &name,
                &S::type_name(),
                qos_reliable(),
                qos_reliable(),
            )
            .map_err(|e| TransportError::Dds {
                what: format!("service client {full}"),
                reason: e.to_string(),
            })
    }

    /// The ros2-client node, for anything this wrapper does not cover.
    pub fn node_mut(&mut self) -> &mut Node {
        &mut self.node
    }

    /// The ros2-client context (one DDS participant).
    pub fn context(&self) -> &Context {
        &self.context
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<DiscoveryConfig, TransportError> {
        let vars: Vec<(String, String)> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        DiscoveryConfig::from_lookup(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn discovery_rule() {
        use DiscoveryRange::*;
        let range = |v: &[(&str, &str)]| cfg(v).unwrap().range;
        assert_eq!(range(&[]), Localhost);
        assert_eq!(range(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "")]), Localhost);
        assert_eq!(range(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")]), Localhost);
        assert_eq!(range(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")]), Subnet);
        assert_eq!(range(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "SYSTEM_DEFAULT")]), SystemDefault);
        assert_eq!(range(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "OFF")]), Off);
        assert_eq!(range(&[("ROS_LOCALHOST_ONLY", "1")]), Localhost);
        assert_eq!(range(&[("ROS_LOCALHOST_ONLY", "0")]), Subnet);
        assert_eq!(
            range(&[("ROS_LOCALHOST_ONLY", "0"), ("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")]),
            Localhost,
            "the Jazzy variable wins"
        );
        let odd = cfg(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "everywhere")]).unwrap();
        assert_eq!(odd.range, Localhost);
        assert_eq!(odd.warnings.len(), 1);
    }

    #[test]
    fn domain_id() {
        assert_eq!(cfg(&[]).unwrap().domain_id, 0);
        assert_eq!(cfg(&[("ROS_DOMAIN_ID", " 42 ")]).unwrap().domain_id, 42);
        assert!(matches!(cfg(&[("ROS_DOMAIN_ID", "233")]), Err(TransportError::DomainId { .. })));
        assert!(cfg(&[("ROS_DOMAIN_ID", "x")]).is_err());
        assert!(cfg(&[("ROS_DOMAIN_ID", "-1")]).is_err());
    }

    #[test]
    fn qos_presets() {
        assert_eq!(qos_reliable().history, History::KeepLast { depth: 10 });
        assert!(matches!(qos_reliable().reliability, Reliability::Reliable { .. }));
        assert_eq!(qos_sensor_data().reliability, Reliability::BestEffort);
        assert_eq!(qos_sensor_data().history, History::KeepLast { depth: 5 });
        assert_eq!(qos_latched().durability, Durability::TransientLocal);
    }
}
