//! The store: every read and write of Herald's data goes through these traits, one
//! implementation per database, chosen by the URL's scheme.
//!
//! Invariants every backend keeps:
//! - every account-owned row is keyed by its account first, and every query names the account,
//!   so that another account's id is simply not found;
//! - an event is written in the same transaction as the change that causes it: both exist or
//!   neither does.
//! - a write made under an `Idempotency-Key` (its `once`) keeps the key and its answer in its
//!   own transaction (see `once`).

use std::sync::Arc;

use async_trait::async_trait;
use jiff::civil::Date;

use crate::clock::Micros;
use crate::domain::Invalid;
use crate::domain::account::{Account, NewAccount};
use crate::domain::delivery::{Backlog, CallRecord, Claimed, Task, TaskFilter};
use crate::domain::endpoint::{Endpoint, EndpointSpec, Health};
use crate::domain::event::{Event, EventDraft, EventStamp, EventType};
use crate::domain::operational::{Mail, News};
use crate::domain::recruiting::{Application, Candidate, Job, NewCandidate, NewJob, Process, StepChange};
use crate::domain::session::{PortalLink, Session};
use crate::domain::stats::Counter;
use crate::domain::version::{Deprecation, WebhookVersion};

mod codec;
mod fanout;
mod filters;
mod once;
pub mod postgres;
mod recording;
mod rows;
pub mod sqlite;

pub use once::{Answer, KEY_LIFETIME, Kept, KeyStore, Once, RequestKey};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist for this account; names what it was.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The write clashes with what is stored, such as a login already taken.
    #[error("{0}")]
    Conflict(String),
    /// The write breaks a rule that only the stored data can tell.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The write's `Idempotency-Key` is kept already, by a write that committed or is
    /// committing: this one rolled back.
    #[error("the Idempotency-Key is taken")]
    KeyTaken,
    /// The database cannot be reached: down, restarting, or without a free connection for
    /// longer than a caller should wait.
    #[error("the database cannot be reached: {0}")]
    Unavailable(String),
    /// The disk the database writes to is full: the write did not happen. Reads still work,
    /// and writes work again once there is room.
    #[error("the database's disk is full: {0}")]
    Full(String),
    /// The database failed.
    #[error("database: {0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// The result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// One page of a newest-first collection. Backends return up to `limit + 1` rows so that the
/// caller can tell whether there is a next page.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u32,
    /// Only rows whose key is greater than this.
    pub since: Option<i64>,
    /// Only rows whose key is smaller than this: the cursor of the next page.
    pub before: Option<i64>,
}

/// Which applications a listing shows.
#[derive(Debug, Clone, Copy)]
pub enum ApplicationsOf {
    /// Every application of the account.
    All,
    Job(i64),
    Candidate(i64),
}

/// Accounts, their process, and the admin token.
#[async_trait]
pub trait AccountStore {
    /// Answers once the database has answered a query: what `/readyz` asks.
    async fn ping(&self) -> StoreResult<()>;
    /// The SHA-256 digest (base64) of the admin token generated on first start, if any.
    async fn admin_token_digest(&self) -> StoreResult<Option<String>>;
    /// Keeps the digest of a generated admin token, unless one is kept already (another node
    /// starting at the same time kept its own); returns whether this one was kept.
    async fn keep_admin_token_digest(&self, digest: &str) -> StoreResult<bool>;
    /// Creates an account and its process; a taken login is a `Conflict`.
    async fn create_account(
        &self,
        new: &NewAccount,
        password_hash: &str,
        at: Micros,
        once: Option<Once<Account>>,
    ) -> StoreResult<Account>;
    async fn accounts(&self, page: Page) -> StoreResult<Vec<Account>>;
    async fn account(&self, login: &str) -> StoreResult<Account>;
    async fn account_by_id(&self, id: i64) -> StoreResult<Account>;
    /// The account and its argon2 password hash, to check a login.
    async fn account_credentials(&self, login: &str) -> StoreResult<(Account, String)>;
    /// Changes the fields `update` gives.
    async fn update_account(&self, login: &str, update: &AccountUpdate) -> StoreResult<Account>;
    /// Deletes the account and everything it owns.
    async fn delete_account(&self, login: &str) -> StoreResult<()>;
    async fn process(&self, account: i64, id: i64) -> StoreResult<Process>;
}

/// Jobs, candidates and applications, and the events their changes emit.
#[async_trait]
pub trait RecruitingStore {
    async fn create_job(
        &self,
        account: &Account,
        job: &NewJob,
        at: Micros,
        once: Option<Once<Job>>,
    ) -> StoreResult<Job>;
    async fn job(&self, account: i64, id: i64) -> StoreResult<Job>;
    async fn jobs(&self, account: i64, page: Page) -> StoreResult<Vec<Job>>;
    async fn create_candidate(
        &self,
        account: i64,
        candidate: &NewCandidate,
        at: Micros,
        once: Option<Once<Candidate>>,
    ) -> StoreResult<Candidate>;
    async fn candidate(&self, account: i64, id: i64) -> StoreResult<Candidate>;
    async fn candidates(&self, account: i64, page: Page) -> StoreResult<Vec<Candidate>>;
    /// Creates an application at the first step of the job's process, with its
    /// `ApplicationCreate` event. Unknown candidate or job ids are `Invalid`.
    async fn create_application(
        &self,
        account: i64,
        candidate_id: i64,
        job_id: i64,
        stamp: EventStamp,
        once: Option<Once<(Application, Event)>>,
    ) -> StoreResult<(Application, Event)>;
    /// The application with every step it went through.
    async fn application(&self, account: i64, id: i64) -> StoreResult<Application>;
    /// Applications newest first, each with its current step only.
    async fn applications(&self, account: i64, of: ApplicationsOf, page: Page) -> StoreResult<Vec<Application>>;
    /// Deletes an application, with its `ApplicationDelete` event.
    async fn delete_application(&self, account: i64, id: i64, stamp: EventStamp) -> StoreResult<Event>;
    /// Moves an application to a step of its process, with its `ProcessStepChange` event.
    async fn move_application(
        &self,
        account: i64,
        application_id: i64,
        step_id: i64,
        stamp: EventStamp,
        once: Option<Once<(StepChange, Event)>>,
    ) -> StoreResult<(StepChange, Event)>;
    async fn step_changes(&self, account: i64, page: Page) -> StoreResult<Vec<StepChange>>;
    async fn step_change(&self, account: i64, change_id: i64) -> StoreResult<StepChange>;
}

/// Event types, published events and endpoints.
#[async_trait]
pub trait WebhookStore {
    /// Every event type, built-in ones first.
    async fn event_types(&self) -> StoreResult<Vec<EventType>>;
    /// Registers an event type; a taken name is a `Conflict`.
    async fn create_event_type(&self, event_type: &EventType, at: Micros, once: Option<Once<()>>) -> StoreResult<()>;
    /// Writes an event a host product publishes. An unknown application is `Invalid`.
    async fn publish_event(
        &self,
        account: i64,
        draft: EventDraft,
        stamp: EventStamp,
        once: Option<Once<Event>>,
    ) -> StoreResult<Event>;
    async fn event(&self, account: i64, id: &str) -> StoreResult<Event>;
    async fn create_endpoint(
        &self,
        account: i64,
        spec: &EndpointSpec,
        id: &str,
        secret: &str,
        at: Micros,
        once: Option<Once<Endpoint>>,
    ) -> StoreResult<Endpoint>;
    async fn endpoint(&self, account: i64, id: &str) -> StoreResult<Endpoint>;
    async fn endpoints(&self, account: i64, page: Page) -> StoreResult<Vec<Endpoint>>;
    async fn update_endpoint(&self, account: i64, id: &str, spec: &EndpointSpec, at: Micros) -> StoreResult<Endpoint>;
    async fn delete_endpoint(&self, account: i64, id: &str) -> StoreResult<()>;
    /// Makes `secret` the endpoint's signing secret; the one it replaces keeps signing calls
    /// until `previous_until`.
    async fn rotate_secret(
        &self,
        account: i64,
        id: &str,
        secret: &str,
        previous_until: Micros,
        at: Micros,
        once: Option<Once<Endpoint>>,
    ) -> StoreResult<Endpoint>;
}

/// The delivery engine's rules, which the store applies inside the transaction that records
/// calls: how a call changes its endpoint's health, and the operational event that tells an
/// account news of one of its endpoints (the engine stamps it with its clock).
pub trait CallRules: Send + Sync {
    fn health(&self, health: Health, call: &CallRecord) -> Health;
    /// The event for `news` that `call` made, leaving the endpoint in `health`; `task_id` is
    /// the call's task.
    fn tell(&self, news: News, call: &CallRecord, health: &Health, task_id: Option<i64>) -> Event;
    /// Whether news is also e-mailed (an SMTP server is configured), to the accounts that
    /// gave an address.
    fn mails(&self) -> bool;
}

/// What the dispatcher may claim in one go.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub now: Micros,
    /// Claimed deliveries are leased until then. (SQLite, a single node, holds its leases in
    /// memory until the calls are recorded; on PostgreSQL a lease that runs out makes the
    /// delivery due again, for any node.)
    pub lease_until: Micros,
    pub limit: u32,
    /// The endpoint (seq) the last claim ended with: this one starts after it.
    pub after_endpoint: i64,
    /// The most calls in flight to one endpoint; its calls in flight are its unexpired leases,
    /// less the `ended` ones.
    pub per_endpoint: u32,
    /// This node's calls that have ended but are not recorded yet, as (delivery id, lease
    /// until): their deliveries stay leased until recorded, so nothing calls them again, but
    /// they are no longer in flight, so they leave room for the next calls. Both are kept,
    /// so that a lease taken again after the record is not mistaken for the ended one.
    pub ended: Vec<(i64, Micros)>,
    /// How far past `now` a rate-limited endpoint's calls may be given their start times: a
    /// claim takes the calls that start within it, and each waits for its time.
    pub ahead: Micros,
}

/// What a claim leased.
#[derive(Debug, Default)]
pub struct Claim {
    pub claimed: Vec<Claimed>,
    /// Some endpoint took all the room it was given, or had none: it may have more due,
    /// which a call of it that ends makes room for.
    pub at_capacity: bool,
    /// The earliest time a claim can give a start time to the next call of an endpoint whose
    /// rate limit held back due deliveries.
    pub paced: Option<Micros>,
    /// When the first pending delivery, suspended endpoint or (where leases run out) lease
    /// falls due after the claim's `now`, as the claim's own transaction saw it: what falls
    /// due between the claim and the dispatcher's look at this comes back as due already.
    pub next_due: Option<Micros>,
}

/// Deliveries, calls and the history of calls.
#[async_trait]
pub trait DeliveryStore {
    /// Notified after a commit that made work due: a delivery written, one made due again or
    /// sooner, an endpoint active again. The database's triggers tell, whatever the write,
    /// so no write method has to. (The dispatcher wakes itself for what its own calls and
    /// their records make due.)
    fn new_work(&self) -> Arc<tokio::sync::Notify>;
    /// Leases due deliveries of callable endpoints, each up to the room
    /// [`Occupancy::room`](crate::domain::endpoint::Occupancy::room) gives it; the first
    /// endpoints, starting after `after_endpoint`, take theirs first when the limit binds.
    /// FIFO endpoints get only the oldest pending delivery of each application. Says too when
    /// the next thing falls due, so that the dispatcher knows how long it may sleep.
    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Claim>;
    /// Deletes up to `batch` endpoint counters of hours that began before `before`; returns
    /// how many went.
    async fn forget_counters(&self, before: Micros, batch: u32) -> StoreResult<u64>;
    /// The endpoint's counters (see `domain::stats`) of the hours from `since`, as
    /// `(hour, counter, count)`; an endpoint of another account is not found.
    async fn endpoint_counters(
        &self,
        account: i64,
        endpoint_id: &str,
        since: Micros,
    ) -> StoreResult<Vec<(Micros, Counter, i64)>>;
    /// Writes calls in one transaction: their tasks, their deliveries' next state, their
    /// endpoints' health by `rules`, and the operational events of what changed (see
    /// `recording`).
    async fn record_calls(&self, calls: Arc<[CallRecord]>, rules: Arc<dyn CallRules>) -> StoreResult<()>;
    /// The call history, newest first.
    async fn tasks(&self, account: i64, filter: &TaskFilter, page: Page) -> StoreResult<Vec<Task>>;
    /// One call, with the request that was sent.
    async fn task(&self, account: i64, id: i64) -> StoreResult<Task>;
    /// Makes a suspended or disabled endpoint active again, its failures forgotten, with its
    /// `EndpointResumed` event (stamped `stamp`); an active endpoint is left as it is.
    async fn resume_endpoint(
        &self,
        account: i64,
        id: &str,
        stamp: EventStamp,
        once: Option<Once<Endpoint>>,
    ) -> StoreResult<Endpoint>;
    /// Delivers again to the endpoint every event of the account written since `since`
    /// that it subscribes to; returns how many.
    async fn replay(
        &self,
        account: i64,
        endpoint_id: &str,
        since: Micros,
        now: Micros,
        once: Option<Once<u64>>,
    ) -> StoreResult<u64>;
    /// Writes a test event delivered to this endpoint alone.
    async fn send_test(
        &self,
        account: i64,
        endpoint_id: &str,
        draft: EventDraft,
        stamp: EventStamp,
        once: Option<Once<Event>>,
    ) -> StoreResult<Event>;
    /// Deletes up to `batch` tasks, up to `batch` events and up to `batch` e-mails sent or
    /// given up, written before `before`, keeping events that still have a pending delivery;
    /// returns how many rows went.
    async fn purge(&self, before: Micros, batch: u32) -> StoreResult<u64>;
    /// Deliveries waiting and endpoints resting at `now`, for the metrics.
    async fn backlog(&self, now: Micros) -> StoreResult<Backlog>;
    /// Makes the task's delivery due now, even if it succeeded or failed before; returns the
    /// task.
    async fn retry_task(&self, account: i64, id: i64, now: Micros, once: Option<Once<Task>>) -> StoreResult<Task>;
}

/// E-mail about endpoints, queued by `record_calls` with the news it tells.
#[async_trait]
pub trait MailStore {
    /// Leases up to `limit` e-mails due at `now` until `until` (a node that dies holding one
    /// leaves it to the next try), with what they tell.
    async fn due_mail(&self, now: Micros, until: Micros, limit: u32) -> StoreResult<Vec<Mail>>;
    /// Records a try: sent, to be tried again at `retry_at`, or given up (neither).
    async fn mail_tried(&self, id: i64, at: Micros, sent: bool, retry_at: Option<Micros>) -> StoreResult<()>;
}

/// Webhook format versions that support has deprecated.
#[async_trait]
pub trait VersionStore {
    /// Deprecates `version` until `sunset`; a version deprecated already keeps the time it
    /// was first deprecated. The first deprecation, and each new sunset, gives every account
    /// with endpoints on the version one `WebhookVersionDeprecated` (stamped as `stamp` is,
    /// each with an id of its own), in the same transaction.
    async fn deprecate_version(
        &self,
        version: WebhookVersion,
        sunset: Date,
        stamp: EventStamp,
        once: Option<Once<Deprecation>>,
    ) -> StoreResult<Deprecation>;
    /// Lifts a deprecation; whether there was one.
    async fn undeprecate_version(&self, version: WebhookVersion) -> StoreResult<bool>;
    /// The versions deprecated.
    async fn deprecations(&self) -> StoreResult<Vec<(WebhookVersion, Deprecation)>>;
    /// The first sunset of the deprecated versions that some endpoint of the account receives.
    async fn sunset_for(&self, account: i64) -> StoreResult<Option<Date>>;
}

/// The dashboard's sessions and portal links, found by the SHA-256 of their tokens.
#[async_trait]
pub trait SessionStore {
    async fn open_session(&self, session: Session) -> StoreResult<()>;
    /// The session whose token has this hash, lapsed or not.
    async fn session(&self, token_hash: [u8; 32]) -> StoreResult<Option<Session>>;
    /// Writes that the session was seen at `at`.
    async fn touch_session(&self, token_hash: [u8; 32], at: Micros) -> StoreResult<()>;
    /// Makes a support session act for `account` (`None`: for none).
    async fn set_session_account(&self, token_hash: [u8; 32], account: Option<i64>) -> StoreResult<()>;
    async fn close_session(&self, token_hash: [u8; 32]) -> StoreResult<()>;
    /// Keeps a portal link; an account deleted meanwhile is `NotFound`.
    async fn add_portal_link(&self, link: PortalLink, once: Option<Once<PortalLink>>) -> StoreResult<PortalLink>;
    /// Follows a portal link at `now`: marks it used and opens `session` for its account with
    /// its permissions, in one transaction. `None` (and nothing opened) for a link unknown,
    /// used already or expired.
    async fn follow_portal_link(
        &self,
        token_hash: [u8; 32],
        now: Micros,
        session: Session,
    ) -> StoreResult<Option<Session>>;
    /// Forgets sessions last seen before `idle_before` and links that expired before
    /// `expired_before`; returns how many went.
    async fn forget_sessions(&self, idle_before: Micros, expired_before: Micros) -> StoreResult<u64>;
}

/// Everything Herald keeps.
pub trait Store:
    AccountStore
    + RecruitingStore
    + WebhookStore
    + DeliveryStore
    + KeyStore
    + MailStore
    + VersionStore
    + SessionStore
    + Send
    + Sync
{
}

impl<
    T: AccountStore
        + RecruitingStore
        + WebhookStore
        + DeliveryStore
        + KeyStore
        + MailStore
        + VersionStore
        + SessionStore
        + Send
        + Sync,
> Store for T
{
}

/// A change to an account, its password hashed.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    pub name: Option<String>,
    pub password_hash: Option<String>,
    /// `Some(None)` stops the e-mail.
    pub notify_email: Option<Option<String>>,
}

/// Whether opening a store failed because its database cannot be reached yet (a PostgreSQL
/// that is not up), which waiting may mend, rather than for a reason that it cannot.
pub fn is_unreachable(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .any(postgres::is_unreachable)
}

/// Opens the store a database URL names, creating and migrating it as needed. A PostgreSQL
/// store keeps up to `max_connections` connections open.
pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url)?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::open(url, max_connections).await?))
    } else {
        anyhow::bail!("database {url:?}: use sqlite://PATH or postgres://…")
    }
}
