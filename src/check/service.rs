//! Checks of the service's names against what its consumers can read: docker-compose reads
//! YAML 1.1, where a bare `on` or `no` is a boolean and `1:10` a number, and the compose
//! overrides define the `nginx`, `prometheus` and `alertmanager` services themselves.

use crate::diagnostic::Diagnostic;
use crate::model::Plan;

/// Words YAML 1.1 reads as booleans or null when unquoted (docker-compose 1.x parses with
/// YAML 1.1, and a service name is a mapping key, which serialisers do not quote).
const YAML11_SCALARS: [&str; 11] = [
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "",
];

/// Services every phase's compose override defines besides the plan's own.
pub(crate) const RESERVED_SERVICES: [&str; 3] = ["nginx", "prometheus", "alertmanager"];

pub(crate) fn check(plan: &Plan, f: &mut Vec<Diagnostic>) {
    let name = plan.service.name.as_str();
    if RESERVED_SERVICES.contains(&name) {
        f.push(
            Diagnostic::error("reserved-service-name", "/service/name", format!("the service cannot be called `{name}`: the compose overrides define that service themselves"))
                .with_hint("use the name of your application's service in the base compose file, e.g. `backend`"),
        );
    }
    if YAML11_SCALARS.contains(&name) {
        f.push(
            Diagnostic::error(
                "yaml11-service-name",
                "/service/name",
                format!(
                    "docker-compose reads a service named `{name}` as a boolean or null (YAML 1.1)"
                ),
            )
            .with_hint("choose another name, e.g. `backend`"),
        );
    }
    if !plan.service.image.chars().any(|c| c.is_ascii_alphabetic()) {
        f.push(
            Diagnostic::error(
                "numeric-image",
                "/service/image",
                format!(
                    "docker-compose (YAML 1.1) may read the image `{}` with its tag as a number",
                    plan.service.image
                ),
            )
            .with_hint("an image repository name contains at least one letter, e.g. `team/app`"),
        );
    }
}
