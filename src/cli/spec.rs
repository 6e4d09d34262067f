//! `quantix spec ...`: customization specs (create, update, get, list, delete) and the
//! time-zone list. `update` reads the spec, changes only what the flags name and writes it
//! back with the revision it read, so a concurrent change is refused instead of lost.
//! Secrets come from files (`--admin-password-file`, `--join-password-file`, `-` for stdin)
//! so they stay out of shell history; nothing printed ever contains one, only `has_*` flags.

mod flags;
mod show;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::output::{self, Format};
use super::{connect, request_id, CliError, Consistency};
use crate::proto::v1::spec_service_client::SpecServiceClient;
use crate::proto::v1::*;
use flags::{apply_linux, apply_windows, usage, windows_input};
use show::{list_row, print_spec, spec_json, spec_rows};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OsArg {
    Linux,
    Windows,
}

/// What `spec update --clear` can empty or remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClearArg {
    Description,
    Domain,
    Users,
    SshKeys,
    Dns,
    SearchDomains,
    Packages,
    Run,
    AdminPassword,
    ProductKey,
}

#[derive(Subcommand)]
pub enum SpecCmd {
    /// Create a spec: `quantix spec create web --os linux --timezone Europe/Berlin
    /// --user alice:@~/.ssh/id_ed25519.pub --static 10.0.0.10/24 --gateway 10.0.0.1`.
    Create {
        name: String,
        #[arg(long, value_enum)]
        os: OsArg,
        #[command(flatten)]
        fields: Box<Fields>,
    },
    /// Change a spec: only the options given change; a repeated option (--user, --dns, ...)
    /// replaces its whole list. Secrets not given are kept.
    Update {
        name: String,
        #[command(flatten)]
        fields: Box<Fields>,
        /// Empty a field or remove a secret (repeatable).
        #[arg(long, value_enum)]
        clear: Vec<ClearArg>,
    },
    /// Show one spec (secrets show only as set / not set).
    Get {
        name: String,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// List specs.
    List {
        #[arg(long, value_enum)]
        os: Option<OsArg>,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Delete a spec no VM uses (built-ins cannot be deleted).
    Delete { name: String },
    /// IANA time-zone names accepted by --timezone, by region.
    Timezones {
        /// Only this region, e.g. Europe.
        #[arg(long)]
        region: Option<String>,
    },
}

/// Settings shared by create and update.
#[derive(Args, Default)]
pub struct Fields {
    #[arg(long)]
    description: Option<String>,
    /// IANA name, e.g. Europe/Berlin (see `quantix spec timezones`). Default UTC.
    #[arg(long)]
    timezone: Option<String>,
    // clap turns the text {n} into a line break in help, so that placeholder is described.
    /// Linux: hostname pattern; {vm} is the VM name (the default), n in braces the VM's number.
    #[arg(long, help_heading = "Linux")]
    hostname_pattern: Option<String>,
    /// Linux: DNS domain of the guest.
    #[arg(long, help_heading = "Linux")]
    domain: Option<String>,
    /// Linux: a user, with an SSH public key or @FILE of keys (repeatable).
    #[arg(
        long = "user",
        value_name = "NAME[:SSH_KEY|:@FILE]",
        help_heading = "Linux"
    )]
    users: Vec<String>,
    /// Linux: an SSH public key or @FILE of keys for the image's default user (repeatable).
    #[arg(long = "ssh-key", value_name = "KEY|@FILE", help_heading = "Linux")]
    ssh_keys: Vec<String>,
    /// Linux: a DNS server IP address (repeatable, at most 3).
    #[arg(long = "dns", value_name = "IP", help_heading = "Linux")]
    dns: Vec<String>,
    /// Linux: a DNS search domain (repeatable).
    #[arg(long = "search-domain", value_name = "DOMAIN", help_heading = "Linux")]
    search_domains: Vec<String>,
    /// Linux: a static address instead of DHCP.
    #[arg(
        long = "static",
        value_name = "ADDR/PREFIX",
        conflicts_with = "dhcp",
        help_heading = "Linux"
    )]
    static_addr: Option<String>,
    /// Linux: the default gateway of the static address.
    #[arg(
        long,
        value_name = "IP",
        requires = "static_addr",
        help_heading = "Linux"
    )]
    gateway: Option<String>,
    /// Linux: configure the network by DHCP (the default).
    #[arg(long, help_heading = "Linux")]
    dhcp: bool,
    /// Linux: a package to install (repeatable).
    #[arg(long = "package", value_name = "PACKAGE", help_heading = "Linux")]
    packages: Vec<String>,
    /// Linux: a one-line command to run at first boot (repeatable, run in order).
    #[arg(long = "run", value_name = "CMD", help_heading = "Linux")]
    run: Vec<String>,
    /// Linux: install the Quantix guest agent (the default).
    #[arg(long, overrides_with = "no_agent", help_heading = "Linux")]
    agent: bool,
    /// Linux: do not install the Quantix guest agent.
    #[arg(long, help_heading = "Linux")]
    no_agent: bool,
    /// Windows: computer name or pattern (placeholders as for --hostname-pattern), at most 15
    /// characters. Default {vm}.
    #[arg(long, help_heading = "Windows")]
    computer_name: Option<String>,
    /// Windows: file holding the administrator password (- for stdin).
    #[arg(long, value_name = "FILE", help_heading = "Windows")]
    admin_password_file: Option<String>,
    /// Windows: workgroup to join (default WORKGROUP).
    #[arg(long, conflicts_with = "join_domain", help_heading = "Windows")]
    workgroup: Option<String>,
    /// Windows: Active Directory domain to join.
    #[arg(long, value_name = "DOMAIN", help_heading = "Windows")]
    join_domain: Option<String>,
    /// Windows: account that joins the domain (user, DOMAIN\user or user@domain).
    #[arg(long, value_name = "USER", help_heading = "Windows")]
    join_user: Option<String>,
    /// Windows: file holding the join account's password (- for stdin).
    #[arg(long, value_name = "FILE", help_heading = "Windows")]
    join_password_file: Option<String>,
    /// Windows: product key XXXXX-XXXXX-XXXXX-XXXXX-XXXXX, or @FILE.
    #[arg(long, value_name = "KEY|@FILE", help_heading = "Windows")]
    product_key: Option<String>,
}

pub async fn run(endpoint: &str, out: Format, cmd: SpecCmd) -> Result<(), CliError> {
    let mut c = SpecServiceClient::new(connect(endpoint).await?);
    match cmd {
        SpecCmd::Create { name, os, fields } => {
            fields.only_for(os)?;
            let settings = match os {
                OsArg::Linux => {
                    let mut l = LinuxSettings::default();
                    apply_linux(&mut l, &fields, &[])?;
                    create_spec_request::Settings::Linux(l)
                }
                OsArg::Windows => {
                    let mut w = WindowsSettingsInput::default();
                    apply_windows(&mut w, &fields, &[])?;
                    create_spec_request::Settings::Windows(w)
                }
            };
            let s = c
                .create_spec(CreateSpecRequest {
                    request_id: request_id(),
                    name,
                    description: fields.description.unwrap_or_default(),
                    settings: Some(settings),
                })
                .await?
                .into_inner();
            print_spec(out, "created", &s);
        }
        SpecCmd::Update {
            name,
            fields,
            clear,
        } => {
            if fields.is_empty() && clear.is_empty() {
                return Err(usage(
                    "nothing to change: give at least one option (see --help)",
                ));
            }
            let cur = c
                .get_spec(GetSpecRequest {
                    name: name.clone(),
                    consistency: Consistency::Linearizable.proto(),
                })
                .await?
                .into_inner();
            let settings = match &cur.settings {
                Some(customization_spec::Settings::Linux(l)) => {
                    fields.only_for(OsArg::Linux)?;
                    let mut l = l.clone();
                    apply_linux(&mut l, &fields, &clear)?;
                    update_spec_request::Settings::Linux(l)
                }
                Some(customization_spec::Settings::Windows(w)) => {
                    fields.only_for(OsArg::Windows)?;
                    let mut w = windows_input(w);
                    apply_windows(&mut w, &fields, &clear)?;
                    update_spec_request::Settings::Windows(w)
                }
                None => return Err(usage(format!("spec {name} has no settings to update"))),
            };
            let description = match (&fields.description, clear.contains(&ClearArg::Description)) {
                (Some(d), _) => d.clone(),
                (None, true) => String::new(),
                (None, false) => cur.description.clone(),
            };
            let s = c
                .update_spec(UpdateSpecRequest {
                    request_id: request_id(),
                    name,
                    description,
                    expected_revision: cur.revision,
                    settings: Some(settings),
                })
                .await?
                .into_inner();
            print_spec(out, "updated", &s);
        }
        SpecCmd::Get { name, consistency } => {
            let s = c
                .get_spec(GetSpecRequest {
                    name,
                    consistency: consistency.proto(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&spec_json(&s)),
                Format::Table => output::table(&["field", "value"], spec_rows(&s)),
            }
        }
        SpecCmd::List { os, consistency } => {
            let os = match os {
                None => SpecOs::Unspecified,
                Some(OsArg::Linux) => SpecOs::Linux,
                Some(OsArg::Windows) => SpecOs::Windows,
            };
            let r = c
                .list_specs(ListSpecsRequest {
                    consistency: consistency.proto(),
                    os: os as i32,
                })
                .await?
                .into_inner();
            output::list(
                out,
                "specs",
                &r.specs,
                spec_json,
                &[
                    "name",
                    "os",
                    "built-in",
                    "name pattern",
                    "timezone",
                    "network",
                    "revision",
                ],
                list_row,
            )
        }
        SpecCmd::Delete { name } => {
            c.delete_spec(DeleteSpecRequest {
                request_id: request_id(),
                name: name.clone(),
            })
            .await?;
            match out {
                Format::Json => output::json(&json!({"deleted": name})),
                Format::Table => println!("deleted spec {name}"),
            }
        }
        SpecCmd::Timezones { region } => {
            let r = c
                .list_timezones(ListTimezonesRequest {
                    region: region.unwrap_or_default(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(
                    &json!({"regions": r.regions.iter().map(|g| json!({"name": g.name, "timezones": g.timezones})).collect::<Vec<_>>()}),
                ),
                Format::Table => output::table(
                    &["region", "timezone"],
                    r.regions
                        .iter()
                        .flat_map(|g| g.timezones.iter().map(|t| vec![g.name.clone(), t.clone()]))
                        .collect(),
                ),
            }
        }
    }
    Ok(())
}
