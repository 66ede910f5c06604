//! The `dns` section: the server, the zone, its records and their addresses.

use std::net::IpAddr;
use std::path::PathBuf;

use super::Validator;
use crate::diagnostic::{Diagnostic, Rule};
use crate::plan::*;
use crate::raw::*;
use crate::span::Spanned;
use crate::suggest::{closest, did_you_mean};

impl Validator<'_> {
    pub(super) fn check_record(&mut self, record: &Spanned<String>) -> String {
        let name = fqdn(&record.value);
        if !self.has_dns {
            self.report(
                Diagnostic::new(Rule::NoDns, format!("record `{}` is used but the plan has no `dns` section", record.value))
                    .label(record.span, "needs a DNS server")
                    .help("add `dns: Rfc2136(server: ..., zone: ..., key: TsigFile(...), records: { ... })`"),
            );
        } else if !self.records.contains(&name) {
            let help = match closest(&name, self.records.iter().map(String::as_str)) {
                Some(near) => did_you_mean(
                    near,
                    "Records are declared under `dns: Rfc2136(records: { ... })`",
                ),
                None => {
                    "declare it under `records: { ... }` in the `dns` section, with its current TTL"
                        .into()
                }
            };
            self.report(
                Diagnostic::new(
                    Rule::UnknownRecord,
                    format!("record `{name}` is not declared"),
                )
                .label(record.span, "unknown record")
                .help(help),
            );
        }
        name
    }

    pub(super) fn dns(&mut self, raw: Spanned<RawDns>) -> Dns {
        let RawDns::Rfc2136 {
            server,
            zone,
            key,
            records,
        } = raw.value;
        self.has_dns = true;
        let server_text = self.expand(&server, None, false);
        if let Err(message) = check_server(&server_text) {
            self.invalid(
                server.span,
                message,
                "write `host:port`, e.g. \"ns0.example.org:53\" or \"127.0.0.1:5353\"",
            );
        }
        let zone_name = fqdn(&zone.value);
        self.check_dns_name(&zone_name, zone.span, "zone");
        let key = match key.value {
            RawTsig::TsigFile(path) => {
                TsigKeySource::File(PathBuf::from(self.expand(&path, None, false)))
            }
            RawTsig::TsigEnv(var) => TsigKeySource::Env(var.value),
        };
        let mut out = Vec::new();
        for (name, record) in records.0 {
            let fq = fqdn(&name.value);
            self.check_dns_name(&fq, name.span, "record");
            if !in_zone(&fq, &zone_name) {
                self.report(
                    Diagnostic::new(
                        Rule::UnknownRecord,
                        format!("record `{fq}` is not in zone `{zone_name}`"),
                    )
                    .label(name.span, "outside the zone")
                    .label(zone.span, "the zone")
                    .help("RFC 2136 updates can only change names inside the zone"),
                );
            }
            if !self.records.insert(fq.clone()) {
                self.duplicate(
                    format!("record `{fq}` is declared twice"),
                    "declared",
                    name.span,
                    None,
                    "remove one of them",
                );
            }
            let ttl = self.duration(&record.ttl);
            let addresses = record
                .addresses
                .iter()
                .filter_map(|a| self.address(a))
                .collect();
            out.push(Record {
                name: fq,
                ttl,
                addresses,
                span: name.span,
            });
        }
        Dns {
            server: server_text,
            zone: zone_name,
            key,
            records: out,
        }
    }

    /// Reports `name` (a zone or record, fully qualified) unless it is a
    /// valid DNS name: refused by `check`, not by the server mid-run.
    fn check_dns_name(&mut self, name: &str, span: crate::span::Span, what: &str) {
        if let Err(problem) = crate::load::names::dns_name(name) {
            self.invalid(
                span,
                format!("`{name}` is not a valid DNS {what} name: {problem}"),
                "a DNS name is dot-separated labels of letters, digits, `-` and `_`, each at \
                 most 63 bytes, 253 in all, e.g. \"lists.wikimedia.org.\"",
            );
        }
    }

    pub(super) fn address(&mut self, text: &Spanned<String>) -> Option<IpAddr> {
        let before = self.diagnostics.len();
        let expanded = self.expand(text, None, false);
        if self.diagnostics.len() > before {
            // The variable is already reported; its name is no address.
            return None;
        }
        match expanded.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.invalid(
                    text.span,
                    format!("`{expanded}` is not an IP address"),
                    "write an IPv4 or IPv6 address, e.g. \"208.80.154.61\"",
                );
                None
            }
        }
    }
}

fn check_server(server: &str) -> Result<(), String> {
    let (host, port) = match server.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.ends_with(':') => (h, Some(p)),
        _ => (server, None),
    };
    if host.trim().is_empty() {
        return Err("the DNS server is empty".into());
    }
    if let Some(port) = port {
        port.parse::<u16>()
            .map_err(|_| format!("`{port}` is not a port"))?;
    }
    Ok(())
}

/// Lowercases a name and makes it fully qualified.
fn fqdn(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}")) || zone == "."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified() {
        assert_eq!(fqdn("Lists.Wikimedia.org"), "lists.wikimedia.org.");
        assert!(in_zone("lists.wikimedia.org.", "wikimedia.org."));
        assert!(!in_zone("lists.wikimedia.org.", "media.org."));
        assert!(!in_zone("xwikimedia.org.", "wikimedia.org."));
    }

    #[test]
    fn servers_need_a_host_and_a_port_that_is_a_port() {
        assert!(check_server("ns0.wikimedia.org:53").is_ok());
        assert!(check_server("127.0.0.1").is_ok());
        assert!(check_server("[::1]:53").is_ok());
        assert!(check_server("ns0:port").is_err());
        assert!(check_server("").is_err());
    }
}
