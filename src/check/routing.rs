//! Checks of the routing section: a header that sends a request to the canary is honoured
//! only from networks the plan names, so that no client can choose its version by sending
//! the header itself.

use crate::diagnostic::Diagnostic;
use crate::model::Plan;

pub(crate) fn check(plan: &Plan, f: &mut Vec<Diagnostic>) {
    let r = &plan.routing;
    if r.trusted_networks.is_some() {
        return;
    }
    let headers = [
        ("group_header", &r.group_header, "its group"),
        ("force_header", &r.force_header, "its version"),
    ];
    for (key, header, what) in headers {
        if let Some(h) = header {
            f.push(
                Diagnostic::error(
                    "untrusted-header",
                    format!("/routing/{key}"),
                    format!("`{h}` would let any client choose {what} by sending the header: say which networks may set it"),
                )
                .with_hint("add `trusted_networks:` under `routing` with your gateway's or testers' networks, e.g. `[10.0.0.0/8]`; `[0.0.0.0/0, \"::/0\"]` trusts every client"),
            );
        }
    }
}

/// Where NGINX's access log goes when the plan does not say.
pub(crate) const DEFAULT_ACCESS_LOG: &str = "/var/log/nginx/access.log";

/// `routing.listen_address` as an address; an error at its line when it is not one.
pub(crate) fn listen_address(plan: &Plan, f: &mut Vec<Diagnostic>) -> Option<std::net::IpAddr> {
    let text = plan.routing.listen_address.as_deref()?;
    match text.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            f.push(
                Diagnostic::error(
                    "routing-listen",
                    "/routing/listen_address",
                    format!("`{text}` is not an IP address"),
                )
                .with_hint("write it like `127.0.0.1` or `::1`"),
            );
            None
        }
    }
}
