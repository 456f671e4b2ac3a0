//! Typed identifiers. Each is a UUID underneath, serialised as its plain string
//! form; a malformed id is rejected where it enters (path, JSON), never deeper.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        id_type!($(#[$doc])* $name, "A fresh random id.", Uuid::new_v4);
    };
    // The ids of log lines (a visit's activity, a download, a webhook
    // delivery), written as fast as visits come: ordered by their creation
    // (UUID version 7), so that a store's index of them grows at its end
    // instead of having a random page rewritten for every line. (A delivery
    // sent once per key has an id derived from its key instead.)
    ($(#[$doc:meta])* $name:ident, ordered) => {
        id_type!($(#[$doc])* $name, "A fresh id, after every one this process made before.", Uuid::now_v7);
    };
    ($(#[$doc:meta])* $name:ident, $new_doc:literal, $make:path) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            #[doc = $new_doc]
            pub fn new() -> Self {
                Self($make())
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
    DownloadId, ordered
);
id_type!(
    /// A ZIP archive job: many files, prepared for one download.
    ArchiveId
);
id_type!(
    /// One line of a link's activity log.
    ActivityId, ordered
);
id_type!(
    /// An account's webhook: an endpoint told of link events.
    WebhookId
);
id_type!(
    /// One event sent (or being sent) to one webhook.
    DeliveryId, ordered
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_ids_sort_as_text_in_the_order_they_were_made() {
        // Stores keep ids as text: an index of them grows at its end only
        // if the text of each new id sorts after the ones before.
        let made: Vec<String> = (0..10_000).map(|_| ActivityId::new().to_string()).collect();
        assert!(made.windows(2).all(|w| w[0] < w[1]), "activity ids out of order");
        let made: Vec<String> = (0..1_000).map(|_| DownloadId::new().to_string()).collect();
        assert!(made.windows(2).all(|w| w[0] < w[1]), "download ids out of order");
        let made: Vec<String> = (0..1_000).map(|_| DeliveryId::new().to_string()).collect();
        assert!(made.windows(2).all(|w| w[0] < w[1]), "delivery ids out of order");
    }

    #[test]
    fn other_ids_stay_wholly_random() {
        // Ids that name what visitors and managers reach (files, links,
        // archives) tell nothing of when they were made.
        assert_eq!(FileId::new().0.get_version_num(), 4);
        assert_eq!(LinkId::new().0.get_version_num(), 4);
        assert_eq!(ArchiveId::new().0.get_version_num(), 4);
        assert_eq!(ActivityId::new().0.get_version_num(), 7);
    }
}
