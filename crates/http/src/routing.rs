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

#[cfg(not(any(feature = "openapi", test)))]
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
