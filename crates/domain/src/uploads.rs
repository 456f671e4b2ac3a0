//! Uploads. A client declares a file (`start_upload`) and gets one URL per
//! part; it PUTs the parts straight to storage and completes the upload.
//! Completion checks every part against the declared size, has the store
//! assemble them into the version's own key — after which no URL ever handed
//! out can change those bytes — and records the object's ETag. The bytes are
//! then read once (checksums, dimensions, EXIF): within the request for a
//! small file, by a library job for a big one. The upload moves open →
//! ingesting → done (or failed) through conditional writes, so completion
//! can be retried or run twice at once, and the file is recorded once.

use super::access::Actor;
use super::jobs::LibraryJob;
use super::library::{Library, retry_on_conflict};
use super::model::*;
use super::{DomainError, DomainResult, rules};
use crate::ids::*;
use crate::inspect::Inspection;
use crate::store::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A request for an upload: a new file (`name`, optional `folder_id`) or a
/// new version of `file_id`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// A new file's name.
    #[schema(schema_with = super::rules::name_schema)]
    pub name: Option<String>,
    /// Where a new file goes (absent: the top).
    pub folder_id: Option<FolderId>,
    /// The file a new version is for (without `name` and `folder_id`).
    pub file_id: Option<FileId>,
    #[schema(schema_with = super::rules::content_type_schema)]
    pub content_type: String,
    /// The exact byte count of the file; every part is checked against it at completion.
    pub size: u64,
}

/// One part of an upload: the bytes `offset..offset + size` of the file, PUT to `url`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PartTicket {
    /// 1 for the first part, then 2, 3...
    pub number: u32,
    pub url: String,
    /// Where the part's bytes start in the file.
    pub offset: u64,
    /// Exactly how many bytes the part holds.
    pub size: u64,
}

/// An upload as its client sees it: where it stands and, while it is open,
/// where to PUT each part.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UploadTicket {
    pub upload_id: UploadId,
    pub state: UploadState,
    /// The declared size of the file.
    pub size: u64,
    /// Every part but the last holds exactly this many bytes.
    pub part_size: u64,
    /// While open: every part to PUT, with a URL valid until `expires_at`
    /// (asking for the upload again gives fresh ones); empty otherwise.
    pub parts: Vec<PartTicket>,
    /// While open: the first part's URL, all there is to PUT when the
    /// upload has one part (files up to `part_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How to send each part.
    #[schema(value_type = String, example = "PUT")]
    pub method: &'static str,
    /// Headers to send with each part.
    pub headers: BTreeMap<String, String>,
    /// Until when the parts may be sent and the upload completed.
    pub expires_at: DateTime<Utc>,
    /// Once done: the file it made, or gave a new version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    /// Once failed: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// What a completion came to.
#[derive(Debug)]
pub enum Completion {
    /// The upload became this file (or gave it its new version) during this request.
    Created(File),
    /// It had become this file before: a retried completion.
    AlreadyDone(File),
    /// The bytes are complete and a library job is reading them: the ticket
    /// shows the state (`GET /api/uploads/{id}` follows it).
    Accepted(UploadTicket),
}

const RETRIES: usize = 8;

fn multipart(upload: &Upload) -> MultipartUpload {
    MultipartUpload { key: upload.blob_key.clone(), upload_id: upload.multipart_id.clone() }
}

fn expired() -> DomainError {
    DomainError::Conflict { code: "upload_expired", message: "the upload expired; start again".into() }
}

fn failed(upload: &Upload) -> DomainError {
    let reason = upload.failure.as_deref().unwrap_or("it failed");
    DomainError::Conflict { code: "upload_failed", message: format!("the upload did not become a file: {reason}") }
}

fn busy() -> DomainError {
    DomainError::Conflict { code: "busy", message: "the upload is being changed by others; try again".into() }
}

/// The parts to assemble, if every one of them arrived with its exact size.
fn check_parts(upload: &Upload, stored: &[StoredPart]) -> DomainResult<Vec<StoredPart>> {
    let count = upload.part_count();
    let (mut wanted, mut missing) = (Vec::new(), Vec::new());
    for number in 1..=count {
        let range = upload.part_range(number);
        let expected = range.end - range.start;
        match stored.iter().find(|p| p.number == number) {
            None => missing.push(number.to_string()),
            Some(p) if p.size != expected => {
                return Err(DomainError::Conflict {
                    code: "upload_size_mismatch",
                    message: format!(
                        "part {number} holds {} bytes but must hold exactly {expected} (bytes {}..{} of the \
                         {} declared): PUT it again, then complete",
                        p.size, range.start, range.end, upload.declared_size
                    ),
                });
            }
            Some(p) => wanted.push(p.clone()),
        }
    }
    match missing.len() {
        0 => Ok(wanted),
        _ if count == 1 => Err(DomainError::Conflict {
            code: "upload_incomplete",
            message: "no bytes have arrived yet: PUT them to the upload URL first".into(),
        }),
        _ => Err(DomainError::Conflict {
            code: "upload_incomplete",
            message: format!("parts {} have not arrived yet: PUT them, then complete", missing.join(", ")),
        }),
    }
}

impl Library {
    /// Declares an upload of a new file or a new version, and hands out the
    /// URLs of its parts.
    pub async fn start_upload(&self, actor: &Actor, req: UploadRequest) -> DomainResult<UploadTicket> {
        let content_type = rules::content_type(&req.content_type)?;
        if req.size > self.settings.max_upload_bytes {
            return Err(DomainError::invalid(
                "size",
                format!("size must be at most {} bytes", self.settings.max_upload_bytes),
            ));
        }
        let purpose = match (req.file_id, req.name) {
            (Some(file_id), None) if req.folder_id.is_none() => {
                self.load_file(actor, file_id, Permission::Edit).await?;
                UploadPurpose::NewVersion { file_id }
            }
            (None, Some(name)) => {
                let name = rules::name("name", &name)?;
                self.require_on_place(actor, req.folder_id, Permission::Edit).await?;
                // Said now rather than after the bytes came; the file's insert enforces it.
                self.check_name_free(actor.account.id, req.folder_id, &name, None).await?;
                UploadPurpose::NewFile { folder_id: req.folder_id, name }
            }
            (Some(_), _) => {
                return Err(DomainError::invalid(
                    "file_id",
                    "a new version takes file_id alone, without name or folder_id",
                ));
            }
            (None, None) => return Err(DomainError::invalid("name", "name is required for a new file")),
        };
        let file_id = match &purpose {
            UploadPurpose::NewVersion { file_id } => *file_id,
            UploadPurpose::NewFile { .. } => FileId::new(),
        };
        let id = UploadId::new();
        let now = self.clock.now();
        let window = chrono::Duration::from_std(self.settings.upload_window(req.size)).expect("the window fits");
        let blob_key = format!("accounts/{}/uploads/{id}", actor.account.id);
        let started = self.asset_uploads.start_upload(&blob_key, &content_type).await?;
        let upload = Upload {
            id,
            account_id: actor.account.id,
            user_id: actor.user.id,
            purpose,
            content_type,
            blob_key,
            declared_size: req.size,
            created_at: now,
            expires_at: now + window,
            multipart_id: started.upload_id.clone(),
            part_size: self.settings.part_size_for(req.size),
            file_id,
            state: UploadState::Open,
            e_tag: None,
            failure: None,
            updated_at: now,
            revision: 0,
        };
        if let Err(e) = self.catalog.insert_upload(&upload).await {
            let _ = self.asset_uploads.abort_upload(&started).await;
            return Err(e.into());
        }
        self.ticket(&upload).await
    }

    /// Where the caller's upload stands; while it is open, with fresh part URLs.
    pub async fn upload_status(&self, actor: &Actor, id: UploadId) -> DomainResult<UploadTicket> {
        let upload = self.own_upload(actor, id).await?;
        self.ticket(&upload).await
    }

    async fn own_upload(&self, actor: &Actor, id: UploadId) -> DomainResult<Upload> {
        match self.catalog.upload(id).await? {
            Some(u) if u.user_id == actor.user.id => Ok(u),
            _ => Err(DomainError::NotFound("upload")),
        }
    }

    async fn ticket(&self, upload: &Upload) -> DomainResult<UploadTicket> {
        let mut parts = Vec::new();
        let left = (upload.expires_at - self.clock.now()).to_std().unwrap_or_default();
        if upload.state == UploadState::Open && left.as_secs() >= 1 {
            let target = multipart(upload);
            for number in 1..=upload.part_count() {
                let range = upload.part_range(number);
                let size = range.end - range.start;
                let url = self.asset_uploads.presign_part(&target, number, size, left).await?;
                parts.push(PartTicket { number, url, offset: range.start, size });
            }
        }
        Ok(UploadTicket {
            upload_id: upload.id,
            state: upload.state,
            size: upload.declared_size,
            part_size: upload.part_size,
            url: parts.first().map(|p| p.url.clone()),
            parts,
            method: "PUT",
            headers: BTreeMap::from([("content-type".to_string(), upload.content_type.clone())]),
            expires_at: upload.expires_at,
            file_id: (upload.state == UploadState::Done).then_some(upload.file_id),
            failure: upload.failure.clone(),
        })
    }

    /// Completes the caller's upload: checks its parts, fixes its bytes, and
    /// reads them now (a small file) or has a library job read them (a big
    /// one). Retrying is safe: a done upload answers with its file again.
    pub async fn complete_upload(&self, actor: &Actor, id: UploadId) -> DomainResult<Completion> {
        let mut upload = self.own_upload(actor, id).await?;
        if upload.state == UploadState::Done {
            return Ok(Completion::AlreadyDone(self.file_of(&upload).await?));
        }
        for _ in 0..RETRIES {
            match upload.state {
                UploadState::Done => return Ok(Completion::Created(self.file_of(&upload).await?)),
                UploadState::Failed => return Err(failed(&upload)),
                UploadState::Ingesting => return self.await_ingest(upload, false).await,
                UploadState::Open => match self.seal(actor, &upload).await? {
                    (sealed, true) => return self.await_ingest(sealed, true).await,
                    (current, false) => upload = current,
                },
            }
        }
        Err(busy())
    }

    /// Moves an open upload to ingesting once its bytes are complete and
    /// fixed; returns the upload as it then is, and whether this call moved it.
    async fn seal(&self, actor: &Actor, upload: &Upload) -> DomainResult<(Upload, bool)> {
        if upload.expires_at <= self.clock.now() || upload.multipart_id.is_empty() {
            self.discard(upload).await?;
            self.catalog.delete_upload(upload.id).await?;
            return Err(expired());
        }
        self.check_purpose(actor, &upload.purpose, upload.file_id).await?;
        let e_tag = self.assemble(upload).await?;
        let mut next = upload.clone();
        next.state = UploadState::Ingesting;
        next.e_tag = Some(e_tag);
        next.updated_at = self.clock.now();
        match self.catalog.replace_upload(&next).await {
            Ok(stored) => Ok((stored, true)),
            Err(StoreError::Conflict(_)) => {
                Ok((self.catalog.upload(upload.id).await?.ok_or(DomainError::NotFound("upload"))?, false))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Has the store assemble the parts into the upload's key; its ETag.
    async fn assemble(&self, upload: &Upload) -> DomainResult<String> {
        let target = multipart(upload);
        match self.asset_uploads.list_parts(&target).await {
            Ok(stored) => {
                let parts = check_parts(upload, &stored)?;
                match self.asset_uploads.complete_upload(&target, &parts).await {
                    Ok(e_tag) => Ok(e_tag),
                    Err(StoreError::Conflict(_)) => Err(DomainError::Conflict {
                        code: "upload_changed",
                        message: "a part was sent again while the upload was completed; complete it again".into(),
                    }),
                    Err(StoreError::NotFound(_)) => self.assembled(upload).await,
                    Err(e) => Err(e.into()),
                }
            }
            Err(StoreError::NotFound(_)) => self.assembled(upload).await,
            Err(e) => Err(e.into()),
        }
    }

    /// The ETag of an upload the store completed already (a completion that
    /// did not get to record it, or one running beside this one).
    async fn assembled(&self, upload: &Upload) -> DomainResult<String> {
        match self.blobs.head(&upload.blob_key).await? {
            Some(info) if info.size == upload.declared_size => Ok(info.e_tag),
            _ => Err(expired()),
        }
    }

    /// The answer to a completion of an upload being ingested: a small one
    /// is read now, a big one by a job (handed out by the completion that
    /// sealed it, again when that job seems lost).
    async fn await_ingest(&self, upload: Upload, sealed_here: bool) -> DomainResult<Completion> {
        if upload.declared_size <= self.settings.inline_ingest_bytes {
            self.ingest_upload(upload.id).await?;
            let after = self.catalog.upload(upload.id).await?.ok_or(DomainError::NotFound("upload"))?;
            return match after.state {
                UploadState::Done => Ok(Completion::Created(self.file_of(&after).await?)),
                UploadState::Failed => Err(failed(&after)),
                _ => Err(busy()),
            };
        }
        let upload = if sealed_here || self.job_seems_lost(&upload) { self.hand_out(upload).await? } else { upload };
        Ok(Completion::Accepted(self.ticket(&upload).await?))
    }

    fn job_seems_lost(&self, upload: &Upload) -> bool {
        let retry_after = chrono::Duration::from_std(self.settings.ingest_retry_after).expect("fits");
        upload.state == UploadState::Ingesting && self.clock.now() - upload.updated_at > retry_after
    }

    /// Queues the ingest of `upload`. A queue that refuses leaves the
    /// upload looking lost, so that the next completion queues it again.
    async fn hand_out(&self, mut upload: Upload) -> DomainResult<Upload> {
        let queue =
            self.jobs.as_ref().ok_or_else(|| StoreError::Backend("no library job queue is configured".into()))?;
        if upload.updated_at + chrono::Duration::seconds(5) < self.clock.now() {
            upload.updated_at = self.clock.now();
            upload = match self.catalog.replace_upload(&upload).await {
                Ok(stored) => stored,
                // Someone else moved it meanwhile: they hand it out.
                Err(StoreError::Conflict(_)) => return Ok(upload),
                Err(e) => return Err(e.into()),
            };
        }
        if let Err(e) = queue.enqueue(&LibraryJob::Ingest { upload_id: upload.id }).await {
            let mut lost = upload.clone();
            lost.updated_at = DateTime::<Utc>::UNIX_EPOCH;
            let _ = self.catalog.replace_upload(&lost).await;
            return Err(e.into());
        }
        Ok(upload)
    }

    /// Whether `actor` may still do what the upload is for, and a new file's
    /// name is still free (or held by `file`, the one the upload makes).
    async fn check_purpose(&self, actor: &Actor, purpose: &UploadPurpose, file: FileId) -> DomainResult<()> {
        match purpose {
            UploadPurpose::NewFile { folder_id, name } => {
                self.require_on_place(actor, *folder_id, Permission::Edit).await?;
                self.check_name_free(actor.account.id, *folder_id, name, Some(Target::File(file))).await
            }
            UploadPurpose::NewVersion { file_id } => {
                self.load_file(actor, *file_id, Permission::Edit).await.map(|_| ())
            }
        }
    }

    async fn file_of(&self, upload: &Upload) -> DomainResult<File> {
        match self.catalog.file(upload.file_id).await? {
            Some(f) if f.account_id == upload.account_id => Ok(f),
            _ => Err(DomainError::NotFound("file")),
        }
    }

    /// Reads a sealed upload's bytes once and records its file or new
    /// version, exactly once however often it runs (the library job's work,
    /// and a small upload's completion). `Err` only when storage failed and
    /// it should run again; an upload that cannot become a file is marked
    /// failed with the reason.
    pub async fn ingest_upload(&self, id: UploadId) -> DomainResult<()> {
        let Some(upload) = self.catalog.upload(id).await? else { return Ok(()) };
        if upload.state != UploadState::Ingesting {
            return Ok(());
        }
        let Some(actor) = self.actor(upload.user_id).await? else {
            return self.fail_upload(&upload, "the uploader no longer exists".into()).await;
        };
        match self.check_purpose(&actor, &upload.purpose, upload.file_id).await {
            Ok(()) => {}
            Err(DomainError::NotFound(what)) => {
                return self.fail_upload(&upload, format!("the {what} it was for is gone")).await;
            }
            Err(DomainError::Forbidden(why)) => return self.fail_upload(&upload, why).await,
            Err(DomainError::Conflict { code: "name_taken", message }) => {
                return self.fail_upload(&upload, message).await;
            }
            Err(e) => return Err(e),
        }
        let reader = match self.blobs.open(&upload.blob_key).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => {
                return self.fail_upload(&upload, "the uploaded bytes are gone".into()).await;
            }
            Err(e) => return Err(e.into()),
        };
        let found = crate::inspect::inspect(reader)
            .await
            .map_err(|e| StoreError::Backend(format!("reading the upload: {e}")))?;
        if found.size != upload.declared_size {
            let reason = format!("{} bytes were stored but {} declared", found.size, upload.declared_size);
            return self.fail_upload(&upload, reason).await;
        }
        let recorded = self
            .record(
                &actor,
                &upload.purpose,
                upload.file_id,
                &upload.blob_key,
                &upload.content_type,
                upload.e_tag.clone(),
                found,
            )
            .await;
        match recorded {
            Ok(_) => self.finish_upload(&upload, UploadState::Done, None).await,
            Err(DomainError::NotFound(what)) => {
                self.fail_upload(&upload, format!("the {what} it was for is gone")).await
            }
            Err(DomainError::Conflict { code: "name_taken", message }) => self.fail_upload(&upload, message).await,
            Err(e) => Err(e),
        }
    }

    async fn fail_upload(&self, upload: &Upload, reason: String) -> DomainResult<()> {
        tracing::info!(upload = %upload.id, %reason, "an upload failed");
        self.finish_upload(upload, UploadState::Failed, Some(reason)).await?;
        self.discard(upload).await
    }

    /// Moves an ingesting upload to `state` (done or failed), unless a run
    /// beside this one finished it first.
    async fn finish_upload(&self, upload: &Upload, state: UploadState, failure: Option<String>) -> DomainResult<()> {
        let mut current = upload.clone();
        for _ in 0..RETRIES {
            if current.state != UploadState::Ingesting {
                return Ok(());
            }
            let mut next = current.clone();
            next.state = state;
            next.failure = failure.clone();
            next.updated_at = self.clock.now();
            match self.catalog.replace_upload(&next).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => {
                    let Some(reloaded) = self.catalog.upload(upload.id).await? else { return Ok(()) };
                    current = reloaded;
                }
                Err(StoreError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(busy())
    }

    /// Drops what an upload that did not become a file left in storage: its
    /// multipart upload and, unless a version holds them, its bytes.
    async fn discard(&self, upload: &Upload) -> DomainResult<()> {
        if !upload.multipart_id.is_empty() {
            self.asset_uploads.abort_upload(&multipart(upload)).await?;
        }
        let held = match self.catalog.file(upload.file_id).await? {
            Some(f) if f.current.blob_key == upload.blob_key => true,
            Some(f) => self.catalog.versions(f.id).await?.iter().any(|v| v.blob_key == upload.blob_key),
            None => false,
        };
        if !held {
            self.blobs.delete(&upload.blob_key).await?;
        }
        Ok(())
    }

    /// What the local sweep does with one upload record (DynamoDB's TTL and
    /// the assets bucket's lifecycle rule do it in AWS): an upload being read
    /// whose job seems lost (a restart) is handed out again; past
    /// [`Upload::keep_until`], an open or failed one's parts and bytes are
    /// dropped, and the record goes. `true` if it did anything.
    pub async fn tidy_upload(&self, upload: &Upload, now: DateTime<Utc>) -> DomainResult<bool> {
        if upload.state == UploadState::Ingesting && self.job_seems_lost(upload) {
            self.hand_out(upload.clone()).await?;
            return Ok(true);
        }
        if upload.keep_until() > now {
            return Ok(false);
        }
        if matches!(upload.state, UploadState::Open | UploadState::Failed) {
            self.discard(upload).await?;
        }
        self.catalog.delete_upload(upload.id).await?;
        Ok(true)
    }

    /// Stores bytes and makes them a file (or a new version) at once, without
    /// an upload: for seeding, operators and tests.
    pub async fn import_file(
        &self,
        actor: &Actor,
        purpose: UploadPurpose,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> DomainResult<File> {
        let content_type = rules::content_type(content_type)?;
        let purpose = match purpose {
            UploadPurpose::NewFile { folder_id, name } => {
                UploadPurpose::NewFile { folder_id, name: rules::name("name", &name)? }
            }
            other => other,
        };
        let file_id = match &purpose {
            UploadPurpose::NewVersion { file_id } => *file_id,
            UploadPurpose::NewFile { .. } => FileId::new(),
        };
        self.check_purpose(actor, &purpose, file_id).await?;
        let key = format!("accounts/{}/uploads/{}", actor.account.id, UploadId::new());
        self.blobs.put(&key, bytes, &content_type).await?;
        let e_tag = self.blobs.head(&key).await?.map(|info| info.e_tag);
        let found = crate::inspect::inspect(self.blobs.open(&key).await?)
            .await
            .map_err(|e| StoreError::Backend(format!("reading the upload: {e}")))?;
        self.record(actor, &purpose, file_id, &key, &content_type, e_tag, found).await
    }

    /// Records read bytes as the file `file_id` (new) or as its new current
    /// version, once: a file already made, or a version already holding
    /// `blob_key`, is the earlier run's work and is returned as it is.
    /// Then hands out the making of the version's renditions (an image's),
    /// when this library has a job queue: a queue that refuses it leaves the
    /// version without previews, logged, rather than failing the upload (the
    /// first view asks again).
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        actor: &Actor,
        purpose: &UploadPurpose,
        file_id: FileId,
        blob_key: &str,
        content_type: &str,
        e_tag: Option<String>,
        found: Inspection,
    ) -> DomainResult<File> {
        let size = found.size;
        let file = self.record_once(actor, purpose, file_id, blob_key, content_type, e_tag, found).await?;
        if let (Some(queue), true) = (&self.jobs, crate::renditions::renditions_possible(content_type)) {
            let job =
                LibraryJob::Renditions { blob_key: blob_key.to_string(), content_type: content_type.to_string(), size };
            let now = self.clock.now();
            if let Err(e) =
                crate::renditions::hand_out_renditions(self.blobs.as_ref(), queue.as_ref(), &job, blob_key, now).await
            {
                tracing::warn!(file = %file_id, error = %e, "the renditions of a new version could not be handed out");
            }
        }
        Ok(file)
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_once(
        &self,
        actor: &Actor,
        purpose: &UploadPurpose,
        file_id: FileId,
        blob_key: &str,
        content_type: &str,
        e_tag: Option<String>,
        found: Inspection,
    ) -> DomainResult<File> {
        let now = self.clock.now();
        let version = |number: u32| FileVersion {
            file_id,
            number,
            blob_key: blob_key.to_string(),
            content_type: content_type.to_string(),
            size: found.size,
            crc32: found.crc32,
            sha256: found.sha256.clone(),
            e_tag: e_tag.clone(),
            width: found.width,
            height: found.height,
            embedded_metadata: found.embedded_metadata.clone(),
            uploaded_by: actor.user.id,
            uploaded_at: now,
        };
        match purpose {
            UploadPurpose::NewFile { folder_id, name } => {
                let file = File {
                    id: file_id,
                    account_id: actor.account.id,
                    folder_id: *folder_id,
                    name: name.clone(),
                    owner_id: actor.user.id,
                    tags: Vec::new(),
                    ai_tags: Vec::new(),
                    custom_coordinates: Vec::new(),
                    custom_metadata: BTreeMap::new(),
                    comments: Vec::new(),
                    private: false,
                    published: true,
                    current: version(1),
                    created_at: now,
                    updated_at: now,
                    revision: 0,
                };
                let file = &file;
                // Placed where the folder is now, checked in the insert itself:
                // a folder moved or deleted meanwhile is seen on the retry.
                retry_on_conflict(move || async move {
                    let chain = self.require_on_place(actor, *folder_id, Permission::Edit).await?;
                    match self.catalog.insert_file(file, &Placement::of(&chain)).await {
                        Ok(()) => Ok(file.clone()),
                        Err(StoreError::AlreadyExists("file")) => {
                            self.catalog.file(file_id).await?.ok_or(DomainError::NotFound("file"))
                        }
                        Err(e) => Err(self.name_taken(e).await),
                    }
                })
                .await
            }
            UploadPurpose::NewVersion { .. } => {
                let version = &version;
                retry_on_conflict(move || async move {
                    let mut file = match self.catalog.file(file_id).await? {
                        Some(f) if f.account_id == actor.account.id => f,
                        _ => return Err(DomainError::NotFound("file")),
                    };
                    if file.current.blob_key == blob_key
                        || self.catalog.versions(file_id).await?.iter().any(|v| v.blob_key == blob_key)
                    {
                        return Ok(file);
                    }
                    file.current = version(file.current.number + 1);
                    file.updated_at = now;
                    Ok(self.catalog.replace_file(&file).await?)
                })
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::LibrarySettings;

    fn upload(size: u64, part_size: u64) -> Upload {
        let now = Utc::now();
        Upload {
            id: UploadId::new(),
            account_id: AccountId::new(),
            user_id: UserId::new(),
            purpose: UploadPurpose::NewFile { folder_id: None, name: "a".into() },
            content_type: "text/plain".into(),
            blob_key: "k".into(),
            declared_size: size,
            created_at: now,
            expires_at: now,
            multipart_id: "m".into(),
            part_size,
            file_id: FileId::new(),
            state: UploadState::Open,
            e_tag: None,
            failure: None,
            updated_at: now,
            revision: 0,
        }
    }

    fn part(number: u32, size: u64) -> StoredPart {
        StoredPart { number, size, e_tag: format!("e{number}") }
    }

    #[test]
    fn a_file_is_cut_into_parts_of_the_part_size_and_a_shorter_last_one() {
        let u = upload(20, 8);
        assert_eq!(u.part_count(), 3);
        assert_eq!((u.part_range(1), u.part_range(2), u.part_range(3)), (0..8, 8..16, 16..20));
        assert_eq!(upload(16, 8).part_count(), 2);
        let empty = upload(0, 8);
        assert_eq!((empty.part_count(), empty.part_range(1)), (1, 0..0), "an empty file is one empty part");
    }

    #[test]
    fn the_part_size_grows_so_that_fifty_gib_fit_a_thousand_parts() {
        let s = LibrarySettings::default();
        assert_eq!(s.part_size_for(0), 64 << 20);
        assert_eq!(s.part_size_for(50 << 30), 64 << 20, "800 parts");
        let size = 100u64 << 30;
        let part = s.part_size_for(size);
        assert!(size.div_ceil(part) <= 1000 && part % (1 << 20) == 0, "{part}");
        assert_eq!(s.upload_window(0), s.upload_url_ttl);
        assert_eq!(s.upload_window(50 << 30), s.max_upload_window);
    }

    #[test]
    fn completion_names_the_missing_parts_and_the_part_of_a_wrong_size() {
        let u = upload(20, 8);
        let all = [part(1, 8), part(2, 8), part(3, 4), part(7, 1)];
        assert_eq!(check_parts(&u, &all).unwrap(), all[..3].to_vec(), "parts past the last are left out");
        let err = check_parts(&u, &[part(2, 8)]).unwrap_err();
        assert!(
            matches!(&err, DomainError::Conflict { code: "upload_incomplete", message } if message.contains("parts 1, 3")),
            "{err:?}"
        );
        let err = check_parts(&u, &[part(1, 8), part(2, 9), part(3, 4)]).unwrap_err();
        assert!(
            matches!(&err, DomainError::Conflict { code: "upload_size_mismatch", message } if message.starts_with("part 2 holds 9 bytes")),
            "{err:?}"
        );
        let err = check_parts(&u, &[part(1, 8), part(2, 8), part(3, 3)]).unwrap_err();
        assert!(matches!(err, DomainError::Conflict { code: "upload_size_mismatch", .. }));
        assert!(check_parts(&upload(0, 8), &[part(1, 0)]).is_ok());
    }

    #[test]
    fn settings_read_the_part_size_and_refuse_one_below_five_mib() {
        let s =
            LibrarySettings::from_lookup(|k| (k == "PUBLINKS_UPLOAD_PART_BYTES").then(|| "8388608".into())).unwrap();
        assert_eq!(s.upload_part_bytes, 8 << 20);
        let err = LibrarySettings::from_lookup(|k| (k == "PUBLINKS_UPLOAD_PART_BYTES").then(|| "1000".into()));
        assert_eq!(err.unwrap_err().variable, "PUBLINKS_UPLOAD_PART_BYTES");
    }
}
