//! The web application's pages (`civia-web`, embedded): `/` leads to `/app/`, which serves
//! the application's page; `/app/{path}` its scripts and styles. Open to the allowed source
//! ranges without credentials (the pages hold no data: they ask the API, which checks).

use crate::error::Class;
use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

pub(crate) async fn root() -> Redirect {
    Redirect::to("/app/")
}

pub(crate) async fn index() -> Response {
    serve("")
}

pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

fn serve(path: &str) -> Response {
    let Some(a) = civia_web::asset(path) else {
        return crate::ApiError::of(Class::NotFound, "not_found", "Unknown URL.").into_response();
    };
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(a.content_type),
        )],
        a.bytes,
    )
        .into_response();
    for (name, value) in civia_web::SECURITY_HEADERS {
        resp.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    resp
}
