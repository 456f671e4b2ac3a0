//! How the routers register their endpoints, from each handler's
//! `#[utoipa::path]` (method and path), so that a route cannot exist without
//! its entry in the OpenAPI document.
//!
//! With the `openapi` feature (the local server, the admin tool, the tests)
//! this is utoipa-axum, which also collects each route's part of the
//! document. Without it (the Lambda functions) the same annotations route
//! straight into axum: no function carries the code that builds the
//! document's operations and schemas, nor runs it at every cold start.

#[cfg(any(feature = "openapi", test))]
pub(crate) use utoipa_axum::{router::OpenApiRouter, routes};

#[cfg(not(any(feature = "openapi", test)))]
pub(crate) use lean::{OpenApiRouter, routes};

/// The functions' routing, compiled always so that its test runs where the
/// feature is on (the test suite builds with it).
#[cfg_attr(any(feature = "openapi", test), allow(dead_code, unused_macros, unused_imports))]
mod lean {
    use axum::Router;
    use axum::routing::MethodRouter;

    /// An axum router built like utoipa-axum's, without the document.
    pub struct OpenApiRouter<S = ()>(Router<S>);

    impl<S: Clone + Send + Sync + 'static> OpenApiRouter<S> {
        /// An empty router.
        #[allow(clippy::new_without_default)]
        pub fn new() -> Self {
            OpenApiRouter(Router::new())
        }

        /// Adds what [`routes!`] made of one path's handlers.
        pub fn routes(self, (path, methods): (String, MethodRouter<S>)) -> Self {
            OpenApiRouter(self.0.route(&path, methods))
        }

        /// Both routers' routes.
        pub fn merge(self, other: OpenApiRouter<S>) -> Self {
            OpenApiRouter(self.0.merge(other.0))
        }

        /// The axum router; no document (the second part, as utoipa-axum's).
        pub fn split_for_parts(self) -> (Router<S>, ()) {
            (self.0, ())
        }
    }

    /// One path's handlers, each under the method and path of its
    /// `#[utoipa::path]`, for [`OpenApiRouter::routes`].
    macro_rules! routes {
        ( $( $handler:ident ),+ $(,)? ) => {{
            use utoipa::Path as _;
            use utoipa_axum::PathItemExt as _;
            let mut path = String::new();
            let mut methods = axum::routing::MethodRouter::new();
            $( utoipa_axum::paste! {
                let this = [<__path_ $handler>]::path();
                debug_assert!(path.is_empty() || path == this, "one `routes!` per path: {path} and {this}");
                path = this;
                for method in [<__path_ $handler>]::methods() {
                    methods = methods.on(method.to_method_filter(), $handler);
                }
            } )+
            (path, methods)
        }};
    }
    pub(crate) use routes;
}

#[cfg(test)]
mod tests {
    use super::lean::{OpenApiRouter, routes};
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;

    #[utoipa::path(get, path = "/things/{id}", params(("id" = String, Path)), responses((status = 200)))]
    async fn get_thing(axum::extract::Path(id): axum::extract::Path<String>) -> String {
        format!("get {id}")
    }

    #[utoipa::path(delete, path = "/things/{id}", params(("id" = String, Path)), responses((status = 204)))]
    async fn delete_thing() -> StatusCode {
        StatusCode::NO_CONTENT
    }

    #[utoipa::path(post, path = "/things", responses((status = 201)))]
    async fn create_thing() -> StatusCode {
        StatusCode::CREATED
    }

    /// The functions' routers take each handler's method and path from its
    /// annotation, as the document does: the right handler answers, another
    /// method is 405, another path 404.
    #[tokio::test]
    async fn lean_routes_follow_the_annotations() {
        let (router, ()) = OpenApiRouter::new()
            .routes(routes!(get_thing, delete_thing))
            .merge(OpenApiRouter::new().routes(routes!(create_thing)))
            .split_for_parts();
        let call = |method: Method, uri: &str| {
            let request = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
            router.clone().oneshot(request)
        };
        let res = call(Method::GET, "/things/7").await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"get 7");
        assert_eq!(call(Method::DELETE, "/things/7").await.unwrap().status(), StatusCode::NO_CONTENT);
        assert_eq!(call(Method::POST, "/things").await.unwrap().status(), StatusCode::CREATED);
        assert_eq!(call(Method::PUT, "/things/7").await.unwrap().status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(call(Method::GET, "/other").await.unwrap().status(), StatusCode::NOT_FOUND);
    }
}
