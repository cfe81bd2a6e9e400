//! The HTTP routes, matched in one place so that 404 and 405 (with `Allow`) are decided
//! the same way for every path, and the OpenAPI test can check the list.

use crate::api::problem::ApiError;
use crate::api::ui;

/// Every (method, path template) the component serves.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/generate-name"),
    ("GET", "/names"),
    ("GET", "/names/export"),
    ("GET", "/names/{hostname}"),
    ("PATCH", "/names/{hostname}"),
    ("DELETE", "/names/{hostname}"),
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("GET", "/session"),
    ("GET", "/suggestions"),
    ("GET", "/"),
    ("GET", "/ui/{asset}"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Generate,
    ListNames,
    ExportNames,
    GetName(&'a str),
    AnnotateName(&'a str),
    ReleaseName(&'a str),
    Healthz,
    OpenApi,
    Session,
    Suggestions,
    /// The web page.
    Page,
    /// One of the page's files, by a name [`ui::asset`] knows.
    Asset(&'a str),
}

/// Matches a request line. `path` excludes the query string.
pub fn route<'a>(method: &str, path: &'a str) -> Result<Route<'a>, ApiError> {
    let wrong = |allow| Err(ApiError::MethodNotAllowed { allow });
    match path {
        "/generate-name" => match method {
            "POST" => Ok(Route::Generate),
            _ => wrong("POST"),
        },
        "/names" => match method {
            "GET" => Ok(Route::ListNames),
            _ => wrong("GET"),
        },
        "/healthz" => match method {
            "GET" => Ok(Route::Healthz),
            _ => wrong("GET"),
        },
        // Matched before `/names/{hostname}`: the service never issues a name `export`.
        "/names/export" => match method {
            "GET" => Ok(Route::ExportNames),
            _ => wrong("GET"),
        },
        "/openapi.json" => match method {
            "GET" => Ok(Route::OpenApi),
            _ => wrong("GET"),
        },
        "/session" => match method {
            "GET" => Ok(Route::Session),
            _ => wrong("GET"),
        },
        "/suggestions" => match method {
            "GET" => Ok(Route::Suggestions),
            _ => wrong("GET"),
        },
        "/" => match method {
            "GET" => Ok(Route::Page),
            _ => wrong("GET"),
        },
        _ if path.starts_with("/ui/") => match ui::asset(&path[4..]) {
            Some(asset) if method == "GET" => Ok(Route::Asset(asset.name)),
            Some(_) => wrong("GET"),
            None => Err(ApiError::NotFound { path: path.into() }),
        },
        _ => match path.strip_prefix("/names/") {
            Some(name) if !name.is_empty() && !name.contains('/') => match method {
                "GET" => Ok(Route::GetName(name)),
                "PATCH" => Ok(Route::AnnotateName(name)),
                "DELETE" => Ok(Route::ReleaseName(name)),
                _ => wrong("GET, PATCH, DELETE"),
            },
            _ => Err(ApiError::NotFound { path: path.into() }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_route_is_matched() {
        for (method, template) in ROUTES {
            let path = template
                .replace("{hostname}", "web-app-prod-vm1")
                .replace("{asset}", "app.js");
            assert!(route(method, &path).is_ok(), "{method} {path}");
        }
    }

    #[test]
    fn a_wrong_method_gets_405_with_the_allowed_methods() {
        assert_eq!(
            route("GET", "/generate-name"),
            Err(ApiError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            route("POST", "/names/x"),
            Err(ApiError::MethodNotAllowed {
                allow: "GET, PATCH, DELETE"
            })
        );
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "/ui/",
            "/ui/nope.js",
            "/ui/../openapi.json",
            "/generate-name/",
            "/names/",
            "/names/a/b",
            "/nope",
        ] {
            assert!(
                matches!(route("GET", path), Err(ApiError::NotFound { .. })),
                "{path}"
            );
        }
    }
}
