//! A shared folder or collection as the visitor's pages show it: sorted by
//! name, date or size, searched by name, counted and cut into numbered
//! pages ("Page 2 of 5"). The files shown beside each other are read
//! through [`PublicService::listing`] (so the link's scope and drafts rule
//! hold), then ordered and cut here: a store lists by name (a folder) or in
//! the order added (a collection) only.

use crate::ids::FolderId;
use crate::public::{Listing, MAX_NEIGHBOURS, PublicFile, PublicFolder, PublicService, Visit};
use crate::rules::name_key;
use crate::store::{Cursor, PageRequest};
use crate::{DomainError, DomainResult};

/// What the files are ordered by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// The share's own order: by name in a folder, as added in a collection.
    #[default]
    Shared,
    Name,
    /// When the current version was uploaded.
    Date,
    Size,
}

impl SortKey {
    /// The name in an address (`sort=`), empty for the share's own order.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Shared => "",
            SortKey::Name => "name",
            SortKey::Date => "date",
            SortKey::Size => "size",
        }
    }
}

/// Most characters of a search.
pub const MAX_SEARCH_CHARS: usize = 100;

/// Files on one numbered page.
pub const FILES_PER_PAGE: usize = 60;

/// How a visitor asked to see a share: a checked query of the page's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowseQuery {
    pub sort: SortKey,
    /// Largest, newest or last name first.
    pub descending: bool,
    /// Part of a name, any case (`None`: every file).
    pub search: Option<String>,
    /// From 1; past the last page, the last page is shown.
    pub page: usize,
}

impl Default for BrowseQuery {
    fn default() -> Self {
        BrowseQuery { sort: SortKey::Shared, descending: false, search: None, page: 1 }
    }
}

impl BrowseQuery {
    /// Reads the address's `sort`, `order`, `q` and `page` (each optional;
    /// empty is absent), naming the one that is wrong.
    pub fn parse(sort: Option<&str>, order: Option<&str>, q: Option<&str>, page: Option<&str>) -> DomainResult<Self> {
        let sort = match present(sort) {
            None => SortKey::Shared,
            Some("name") => SortKey::Name,
            Some("date") => SortKey::Date,
            Some("size") => SortKey::Size,
            Some(_) => return Err(DomainError::invalid("sort", "sort must be name, date or size")),
        };
        let descending = match present(order) {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(DomainError::invalid("order", "order must be asc or desc")),
        };
        let search = present(q).map(str::to_string);
        if search.as_ref().is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS) {
            let message = format!("the search q must be at most {MAX_SEARCH_CHARS} characters");
            return Err(DomainError::invalid("q", message));
        }
        if search.as_ref().is_some_and(|s| s.chars().any(char::is_control)) {
            return Err(DomainError::invalid("q", "the search q must not hold control characters"));
        }
        let page = match present(page) {
            None => 1,
            Some(p) => match p.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(DomainError::invalid("page", "page must be a whole number from 1")),
            },
        };
        Ok(BrowseQuery { sort, descending, search, page })
    }
}

/// One numbered page of a shared folder or collection, with the totals of
/// everything the query matches.
#[derive(Clone, Debug, PartialEq)]
pub struct Browse {
    /// The folder shown (`None` for a collection).
    pub folder: Option<PublicFolder>,
    /// From the shared folder down to the shown one's parent.
    pub breadcrumbs: Vec<PublicFolder>,
    /// The shown folder's subfolders that match the search, by name (on the
    /// first page only).
    pub subfolders: Vec<PublicFolder>,
    /// The subfolders that match the search, on every page.
    pub total_subfolders: usize,
    /// This page's files.
    pub files: Vec<PublicFile>,
    /// The files that match the search, on every page, and their bytes.
    pub total_files: usize,
    pub total_bytes: u64,
    /// The page shown (from 1) and how many there are (at least 1).
    pub page: usize,
    pub pages: usize,
    /// Whether the folder holds more than [`MAX_NEIGHBOURS`] files, of which
    /// only the first (by name, or as added) are sorted and searched.
    pub truncated: bool,
}

/// A query value, trimmed; empty is absent.
fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Whether `name` holds `search`, any case.
fn matches(name: &str, search: &str) -> bool {
    name_key(name).contains(&name_key(search))
}

impl PublicService {
    /// A numbered page of the shared folder (`folder`: the shared one when
    /// `None`, or one under it) or collection, as `query` asks. Searches the
    /// shown folder's own files and subfolders by name, never deeper.
    pub async fn browse(&self, visit: &Visit, folder: Option<FolderId>, query: &BrowseQuery) -> DomainResult<Browse> {
        let mut request = PageRequest::first(200);
        let mut first: Option<Listing> = None;
        let mut files = Vec::new();
        let truncated = loop {
            let mut listing = self.listing(visit, folder, &request).await?;
            files.append(&mut listing.files);
            let next = listing.next_cursor.clone();
            first.get_or_insert(listing);
            match next {
                Some(_) if files.len() >= MAX_NEIGHBOURS => break true,
                Some(cursor) => request = PageRequest { cursor: Some(Cursor(cursor)), limit: 200 },
                None => break false,
            }
        };
        let first = first.ok_or(DomainError::NotFound("folder"))?;
        let mut subfolders = first.subfolders;
        if let Some(search) = &query.search {
            files.retain(|f| matches(&f.name, search));
            subfolders.retain(|f| matches(&f.name, search));
        }
        match query.sort {
            SortKey::Shared => {}
            SortKey::Name => files.sort_by_cached_key(|f| name_key(&f.name)),
            SortKey::Date => files.sort_by_key(|f| f.updated_at),
            SortKey::Size => files.sort_by_key(|f| f.size),
        }
        if query.descending {
            files.reverse();
            if query.sort == SortKey::Name || query.sort == SortKey::Shared {
                subfolders.reverse();
            }
        }
        let total_files = files.len();
        let total_bytes = files.iter().map(|f| f.size).sum();
        let pages = total_files.div_ceil(FILES_PER_PAGE).max(1);
        let page = query.page.min(pages);
        let total_subfolders = subfolders.len();
        if page > 1 {
            subfolders.clear();
        }
        let files = files.into_iter().skip((page - 1) * FILES_PER_PAGE).take(FILES_PER_PAGE).collect();
        Ok(Browse {
            folder: first.folder,
            breadcrumbs: first.breadcrumbs,
            subfolders,
            total_subfolders,
            files,
            total_files,
            total_bytes,
            page,
            pages,
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_and_bad_ones_named() {
        assert_eq!(BrowseQuery::parse(None, None, None, None).unwrap(), BrowseQuery::default());
        let q = BrowseQuery::parse(Some("size"), Some("desc"), Some("  dusk "), Some("3")).unwrap();
        assert_eq!(q, BrowseQuery { sort: SortKey::Size, descending: true, search: Some("dusk".into()), page: 3 });
        assert_eq!(BrowseQuery::parse(Some(""), Some(""), Some(" "), Some("")).unwrap(), BrowseQuery::default());
        for (args, field) in [
            ((Some("colour"), None, None, None), "sort"),
            ((None, Some("up"), None, None), "order"),
            ((None, None, None, Some("0")), "page"),
            ((None, None, None, Some("-1")), "page"),
            ((None, None, None, Some("two")), "page"),
            ((None, None, None, Some("99999999999999999999999")), "page"),
            ((None, None, Some("a\u{7}b"), None), "q"),
        ] {
            match BrowseQuery::parse(args.0, args.1, args.2, args.3) {
                Err(DomainError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        let long = "x".repeat(MAX_SEARCH_CHARS + 1);
        assert!(BrowseQuery::parse(None, None, Some(&long), None).is_err());
        assert!(BrowseQuery::parse(None, None, Some(&long[1..]), None).is_ok());
    }

    #[test]
    fn a_search_ignores_case() {
        assert!(matches("Dusk.JPG", "dusk"));
        assert!(matches("Été.png", "ÉTÉ"));
        assert!(!matches("dawn.jpg", "dusk"));
    }
}
