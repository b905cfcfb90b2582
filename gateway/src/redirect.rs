//! The plain-HTTP listener's answer: a permanent redirect to HTTPS.

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tansu_shared::problem::Problem;

use crate::forwarding;
use crate::proxy::{ProxyBody, empty_body, problem_response};

/// 308 to the same path on HTTPS (308 keeps the method and body, unlike 301).
pub(crate) fn redirect(req: &Request<Incoming>, https_port: u16) -> Response<ProxyBody> {
    let rid = forwarding::request_id(req.headers());
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .filter(|h| forwarding::is_valid_host(h))
        .map(forwarding::host_name);
    let Some(host) = host else {
        return problem_response(Problem::bad_request("a Host header is required"), &rid);
    };
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let Ok(location) = HeaderValue::from_str(&format!("https://{host}{port}{pq}")) else {
        return problem_response(Problem::bad_request("malformed request target"), &rid);
    };
    let mut resp = Response::new(empty_body());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut().insert(header::LOCATION, location);
    resp
}
