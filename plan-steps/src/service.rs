//! The `Service` step: how a service is started, stopped and asked, and
//! what is captured so a revert puts it back exactly as it was.

use plan_core::template::quote;
use plan_core::{ServiceControl, ServiceState};

/// The three commands of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commands {
    /// Starts it.
    pub start: String,
    /// Stops it.
    pub stop: String,
    /// Exits 0 when it runs.
    pub status: String,
}

/// The commands for `unit` under `control`.
pub fn commands(unit: &str, control: &ServiceControl) -> Commands {
    match control {
        ServiceControl::Systemd => {
            let unit = quote(unit);
            Commands {
                start: format!("systemctl start {unit}"),
                stop: format!("systemctl stop {unit}"),
                status: format!("systemctl is-active --quiet {unit}"),
            }
        }
        ServiceControl::Commands {
            start,
            stop,
            status,
        } => Commands {
            start: start.clone(),
            stop: stop.clone(),
            status: status.clone(),
        },
    }
}

impl Commands {
    /// The command that brings the service to `state`.
    pub fn to(&self, state: ServiceState) -> &str {
        match state {
            ServiceState::Running => &self.start,
            ServiceState::Stopped => &self.stop,
        }
    }
}

/// The captured state, as journaled: `running` or `stopped`.
pub fn capture_text(running: bool) -> &'static str {
    if running {
        "running"
    } else {
        "stopped"
    }
}

/// Reads a captured state back.
pub fn parse_capture(text: &str) -> Option<ServiceState> {
    match text.trim() {
        "running" => Some(ServiceState::Running),
        "stopped" => Some(ServiceState::Stopped),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_units_are_quoted() {
        let c = commands("mailman; reboot", &ServiceControl::Systemd);
        assert_eq!(c.stop, "systemctl stop 'mailman; reboot'");
        assert_eq!(
            c.to(ServiceState::Running),
            "systemctl start 'mailman; reboot'"
        );
        assert_eq!(
            commands("exim4", &ServiceControl::Systemd).status,
            "systemctl is-active --quiet exim4"
        );
    }

    #[test]
    fn captures_read_back() {
        for state in [ServiceState::Running, ServiceState::Stopped] {
            let text = capture_text(state == ServiceState::Running);
            assert_eq!(parse_capture(text), Some(state));
        }
        assert_eq!(parse_capture("maybe"), None);
    }
}
