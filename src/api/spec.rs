//! `quantix.v1.SpecService`: customization specs and the time-zone list.
//! Turns requests into `SpecCommand`s (parse errors become InvalidArgument naming the field),
//! checks time zones against this binary's IANA list (apply checks only their shape, see
//! `model::spec::SpecConfig::validate`), and answers reads from the local state. Responses
//! are built by `to_proto`, whose output type has no field for a secret: only `has_*` flags.
//! May use: `cluster`, `state`, `model`.

use std::net::IpAddr;
use tonic::{Request, Response, Status};

use super::cluster::is_stale;
use super::status::to_status;
use crate::cluster::{ClusterError, Host};
use crate::model::spec::{
    self as m, check, timezone, DomainJoin as MDomainJoin, LinuxSpec, LinuxUser, Membership,
    Network, Os, Secret, SecretField, SpecConfig, SpecError, WindowsSpec,
};
use crate::proto::v1::spec_service_server::SpecService;
use crate::proto::v1::*;
use crate::state::specs::{self, SpecApplied, SpecCommand};
use crate::state::{Applied, Command};

pub struct SpecApi {
    pub host: Host,
}

const DEFAULT_PATTERN: &str = "{vm}";
const DEFAULT_TIMEZONE: &str = "UTC";
const DEFAULT_WORKGROUP: &str = "WORKGROUP";

fn invalid(e: impl std::fmt::Display) -> Status {
    to_status(ClusterError::InvalidArgument(e.to_string()))
}

fn internal(e: impl std::fmt::Display) -> Status {
    to_status(ClusterError::internal(e))
}

fn or_default(s: String, default: &str) -> String {
    if s.is_empty() {
        default.into()
    } else {
        s
    }
}

fn ip(field: String, s: &str) -> Result<IpAddr, SpecError> {
    s.trim()
        .parse()
        .map_err(|_| SpecError::invalid(field, format!("'{s}' is not an IP address")))
}

/// `LinuxSettings` → model. Fills the documented defaults for empty fields.
pub(crate) fn linux_from_proto(p: LinuxSettings) -> Result<LinuxSpec, SpecError> {
    let dns_servers = p
        .dns_servers
        .iter()
        .enumerate()
        .map(|(i, s)| ip(format!("dns_servers[{i}]"), s))
        .collect::<Result<_, _>>()?;
    let network = match p.static_network {
        None => Network::Dhcp,
        Some(s) => Network::Static(m::StaticNetwork {
            address: ip("static_network.address".into(), &s.address)?,
            prefix: u8::try_from(s.prefix).map_err(|_| {
                SpecError::invalid(
                    "static_network.prefix",
                    format!("/{} is out of range", s.prefix),
                )
            })?,
            gateway: match s.gateway.trim() {
                "" => None,
                g => Some(ip("static_network.gateway".into(), g)?),
            },
        }),
    };
    Ok(LinuxSpec {
        hostname_pattern: or_default(p.hostname_pattern, DEFAULT_PATTERN),
        domain: p.domain,
        timezone: or_default(p.timezone, DEFAULT_TIMEZONE),
        users: p
            .users
            .into_iter()
            .map(|u| LinuxUser {
                name: u.name,
                ssh_keys: u.ssh_keys,
            })
            .collect(),
        ssh_keys: p.ssh_keys,
        dns_servers,
        search_domains: p.search_domains,
        network,
        packages: p.packages,
        run_commands: p.run_commands,
        install_agent: p.install_agent.unwrap_or(true),
    })
}

fn secret(s: String) -> Option<Secret> {
    (!s.is_empty()).then(|| Secret::new(s))
}

/// `WindowsSettingsInput` → model and the secrets to clear on update.
pub(crate) fn windows_from_proto(
    p: WindowsSettingsInput,
) -> Result<(WindowsSpec, Vec<SecretField>), SpecError> {
    let membership = match (p.workgroup.is_empty(), p.domain_join) {
        (false, Some(_)) => {
            return Err(SpecError::invalid(
                "workgroup",
                "and domain_join exclude each other: give one",
            ))
        }
        (_, Some(d)) => Membership::Domain(MDomainJoin {
            domain: d.domain,
            user: d.user,
            password: secret(p.join_password),
        }),
        (wg_empty, None) => {
            if !p.join_password.is_empty() {
                return Err(SpecError::invalid(
                    "join_password",
                    "is only for a domain join (domain_join is not set)",
                ));
            }
            Membership::Workgroup(if wg_empty {
                DEFAULT_WORKGROUP.into()
            } else {
                p.workgroup
            })
        }
    };
    let mut clear = Vec::new();
    for (flag, value, field, name) in [
        (
            p.clear_admin_password,
            &p.admin_password,
            SecretField::AdminPassword,
            "admin_password",
        ),
        (
            p.clear_product_key,
            &p.product_key,
            SecretField::ProductKey,
            "product_key",
        ),
    ] {
        if flag {
            if !value.is_empty() {
                return Err(SpecError::invalid(
                    name,
                    format!("is given and cleared at once (clear_{name}): give one"),
                ));
            }
            clear.push(field);
        }
    }
    Ok((
        WindowsSpec {
            computer_name: or_default(p.computer_name, DEFAULT_PATTERN),
            timezone: or_default(p.timezone, DEFAULT_TIMEZONE),
            membership,
            admin_password: secret(p.admin_password),
            product_key: secret(p.product_key),
        },
        clear,
    ))
}

/// Parses either kind of settings; for Linux nothing is ever cleared.
fn config_from_proto(
    linux: Option<LinuxSettings>,
    windows: Option<WindowsSettingsInput>,
) -> Result<(SpecConfig, Vec<SecretField>), Status> {
    let (config, clear) = match (linux, windows) {
        (Some(l), None) => (
            SpecConfig::Linux(linux_from_proto(l).map_err(invalid)?),
            Vec::new(),
        ),
        (None, Some(w)) => {
            let (w, clear) = windows_from_proto(w).map_err(invalid)?;
            (SpecConfig::Windows(w), clear)
        }
        _ => return Err(invalid("settings: give either linux or windows settings")),
    };
    timezone::check_known("timezone", config.timezone()).map_err(invalid)?;
    Ok((config, clear))
}

fn linux_to_proto(l: &LinuxSpec) -> LinuxSettings {
    LinuxSettings {
        hostname_pattern: l.hostname_pattern.clone(),
        domain: l.domain.clone(),
        timezone: l.timezone.clone(),
        users: l
            .users
            .iter()
            .map(|u| SpecUser {
                name: u.name.clone(),
                ssh_keys: u.ssh_keys.clone(),
            })
            .collect(),
        ssh_keys: l.ssh_keys.clone(),
        dns_servers: l.dns_servers.iter().map(ToString::to_string).collect(),
        search_domains: l.search_domains.clone(),
        static_network: match &l.network {
            Network::Dhcp => None,
            Network::Static(s) => Some(StaticNetwork {
                address: s.address.to_string(),
                prefix: u32::from(s.prefix),
                gateway: s.gateway.map(|g| g.to_string()).unwrap_or_default(),
            }),
        },
        packages: l.packages.clone(),
        run_commands: l.run_commands.clone(),
        install_agent: Some(l.install_agent),
    }
}

/// Windows settings as read: whether each secret is set, never its value.
fn windows_to_proto(w: &WindowsSpec) -> WindowsSettings {
    let (membership, has_join_password) = match &w.membership {
        Membership::Workgroup(g) => (windows_settings::Membership::Workgroup(g.clone()), false),
        Membership::Domain(d) => (
            windows_settings::Membership::DomainJoin(DomainJoin {
                domain: d.domain.clone(),
                user: d.user.clone(),
            }),
            d.password.is_some(),
        ),
    };
    WindowsSettings {
        computer_name: w.computer_name.clone(),
        timezone: w.timezone.clone(),
        membership: Some(membership),
        has_admin_password: w.admin_password.is_some(),
        has_product_key: w.product_key.is_some(),
        has_join_password,
    }
}

pub(crate) fn to_proto(s: &m::Spec) -> CustomizationSpec {
    let (os, settings) = match &s.config {
        SpecConfig::Linux(l) => (
            SpecOs::Linux,
            customization_spec::Settings::Linux(linux_to_proto(l)),
        ),
        SpecConfig::Windows(w) => (
            SpecOs::Windows,
            customization_spec::Settings::Windows(windows_to_proto(w)),
        ),
    };
    CustomizationSpec {
        name: s.name.clone(),
        description: s.description.clone(),
        built_in: s.built_in,
        revision: s.revision,
        created_at_ms: s.created_at,
        updated_at_ms: s.updated_at,
        os: os as i32,
        settings: Some(settings),
    }
}

fn spec_of(applied: Applied) -> Result<CustomizationSpec, Status> {
    match applied {
        Applied::Spec(SpecApplied::SpecCreated(s) | SpecApplied::SpecUpdated(s)) => {
            Ok(to_proto(&s))
        }
        other => Err(internal(format!("unexpected outcome {other:?}"))),
    }
}

fn split_create(
    s: Option<create_spec_request::Settings>,
) -> (Option<LinuxSettings>, Option<WindowsSettingsInput>) {
    match s {
        Some(create_spec_request::Settings::Linux(l)) => (Some(l), None),
        Some(create_spec_request::Settings::Windows(w)) => (None, Some(w)),
        None => (None, None),
    }
}

fn split_update(
    s: Option<update_spec_request::Settings>,
) -> (Option<LinuxSettings>, Option<WindowsSettingsInput>) {
    match s {
        Some(update_spec_request::Settings::Linux(l)) => (Some(l), None),
        Some(update_spec_request::Settings::Windows(w)) => (None, Some(w)),
        None => (None, None),
    }
}

impl SpecApi {
    /// Seals the config's plain secrets with the cluster key, so only ciphertext enters the
    /// log. Refused on a host without the key rather than storing a secret in plain.
    fn seal(&self, mut config: SpecConfig) -> Result<SpecConfig, Status> {
        if !config.has_plain_secrets() {
            return Ok(config);
        }
        let Some(key) = self.host.cluster_key() else {
            return Err(to_status(ClusterError::FailedPrecondition(format!(
                "host {} has no cluster key, so it cannot store secrets sealed; send the request to another host",
                self.host.name()
            ))));
        };
        config
            .seal_secrets(|plain| key.seal(plain))
            .map_err(|e| to_status(ClusterError::internal(e)))?;
        Ok(config)
    }

    async fn state(&self, consistency: i32) -> Result<crate::state::redb_kv::RedbRead, Status> {
        self.host
            .read_barrier(is_stale(consistency))
            .await
            .map_err(to_status)?;
        self.host.state().map_err(to_status)
    }
}

#[tonic::async_trait]
impl SpecService for SpecApi {
    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn create_spec(
        &self,
        req: Request<CreateSpecRequest>,
    ) -> Result<Response<CustomizationSpec>, Status> {
        let r = req.into_inner();
        check::spec_name(&r.name).map_err(invalid)?;
        check::description(&r.description).map_err(invalid)?;
        let (linux, windows) = split_create(r.settings);
        let (config, _) = config_from_proto(linux, windows)?;
        // Early, complete check (apply repeats it): a create has no old secrets to keep.
        let mut normalized = config.clone();
        normalized.normalize();
        normalized.validate().map_err(invalid)?;
        let config = self.seal(normalized)?;
        let cmd = Command::Spec(SpecCommand::CreateSpec {
            name: r.name,
            description: r.description,
            config: Box::new(config),
        });
        let applied = self
            .host
            .write_ok(cmd, Some(r.request_id))
            .await
            .map_err(to_status)?;
        Ok(Response::new(spec_of(applied)?))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn update_spec(
        &self,
        req: Request<UpdateSpecRequest>,
    ) -> Result<Response<CustomizationSpec>, Status> {
        let r = req.into_inner();
        check::spec_name(&r.name).map_err(invalid)?;
        check::description(&r.description).map_err(invalid)?;
        let (linux, windows) = split_update(r.settings);
        // New secrets are checked here, before sealing; the rest in apply, once the kept
        // secrets are merged in.
        let (mut config, clear) = config_from_proto(linux, windows)?;
        config.normalize();
        check::plain_secrets(&config).map_err(invalid)?;
        let config = self.seal(config)?;
        let cmd = Command::Spec(SpecCommand::UpdateSpec {
            name: r.name,
            description: r.description,
            config: Box::new(config),
            clear,
            expected_revision: (r.expected_revision != 0).then_some(r.expected_revision),
        });
        let applied = self
            .host
            .write_ok(cmd, Some(r.request_id))
            .await
            .map_err(to_status)?;
        Ok(Response::new(spec_of(applied)?))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn delete_spec(
        &self,
        req: Request<DeleteSpecRequest>,
    ) -> Result<Response<DeleteSpecResponse>, Status> {
        let r = req.into_inner();
        check::spec_name(&r.name).map_err(invalid)?;
        self.host
            .write_ok(
                Command::Spec(SpecCommand::DeleteSpec { name: r.name }),
                Some(r.request_id),
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(DeleteSpecResponse {}))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn get_spec(
        &self,
        req: Request<GetSpecRequest>,
    ) -> Result<Response<CustomizationSpec>, Status> {
        let r = req.into_inner();
        check::spec_name(&r.name).map_err(invalid)?;
        let state = self.state(r.consistency).await?;
        match specs::get(&state, &r.name).map_err(internal)? {
            Some(s) => Ok(Response::new(to_proto(&s))),
            None => Err(to_status(ClusterError::NotFound(format!(
                "spec {} does not exist",
                r.name
            )))),
        }
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn list_specs(
        &self,
        req: Request<ListSpecsRequest>,
    ) -> Result<Response<ListSpecsResponse>, Status> {
        let r = req.into_inner();
        let want = match SpecOs::try_from(r.os) {
            Ok(SpecOs::Unspecified) => None,
            Ok(SpecOs::Linux) => Some(Os::Linux),
            Ok(SpecOs::Windows) => Some(Os::Windows),
            Err(_) => return Err(invalid(format!("os {} is not a known OS", r.os))),
        };
        let state = self.state(r.consistency).await?;
        let list = specs::list(&state).map_err(internal)?;
        Ok(Response::new(ListSpecsResponse {
            specs: list
                .iter()
                .filter(|s| want.is_none_or(|os| s.config.os() == os))
                .map(to_proto)
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn list_timezones(
        &self,
        req: Request<ListTimezonesRequest>,
    ) -> Result<Response<ListTimezonesResponse>, Status> {
        let r = req.into_inner();
        let region = Some(r.region.trim()).filter(|s| !s.is_empty());
        let Some(groups) = timezone::by_region(region) else {
            let known: Vec<&str> = timezone::by_region(None)
                .map(|all| all.into_keys().collect())
                .unwrap_or_default();
            return Err(to_status(ClusterError::NotFound(format!(
                "no time-zone region '{}' (regions: {})",
                r.region,
                known.join(", ")
            ))));
        };
        Ok(Response::new(ListTimezonesResponse {
            regions: groups
                .into_iter()
                .map(|(name, zones)| TimezoneRegion {
                    name: name.into(),
                    timezones: zones.into_iter().map(String::from).collect(),
                })
                .collect(),
        }))
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
