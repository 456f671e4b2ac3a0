//! Typed identifiers. Each is a UUID underneath, serialised as its plain string
//! form; a malformed id is rejected where it enters (path, JSON), never deeper.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// An account (a tenant): everything else belongs to exactly one.
    AccountId
);
id_type!(
    /// A person who signs in to the dashboard.
    UserId
);
id_type!(
    /// A folder in an account's tree.
    FolderId
);
id_type!(
    /// A file (an asset); its bytes live in versions.
    FileId
);
id_type!(
    /// A media collection: a named set of files from anywhere in the account.
    CollectionId
);
id_type!(
    /// A pending presigned upload.
    UploadId
);
id_type!(
    /// A comment on a file.
    CommentId
);
id_type!(
    /// A public link.
    LinkId
);
id_type!(
    /// A recorded download.
    DownloadId
);
id_type!(
    /// A ZIP archive job: many files, prepared for one download.
    ArchiveId
);
id_type!(
    /// One line of a link's activity log.
    ActivityId
);
id_type!(
    /// An account's webhook: an endpoint told of link events.
    WebhookId
);
id_type!(
    /// One event sent (or being sent) to one webhook.
    DeliveryId
);
