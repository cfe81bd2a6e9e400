//! The Vault client of the component: the core's [`Env`] over wasi:http outbound
//! requests, wasi clocks and wasi random. It tries Vault's nodes in order
//! ([`crate::core::failover`]) and holds every call to the request's deadline.

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use spin_sdk::http::ErrorCode;
use wasi::clocks::{monotonic_clock, wall_clock};

use crate::core::allocate::Env;
use crate::core::failover::{node_unusable, Nodes};
use crate::core::vault::{self, Call, Reply, VaultConfig};

/// Waits until the monotonic clock reaches `deadline` (nanoseconds), yielding to Spin's
/// executor so other futures (an outbound request) progress meanwhile.
async fn sleep_until(deadline: u64) {
    poll_fn(|cx| {
        if monotonic_clock::now() >= deadline {
            return Poll::Ready(());
        }
        spin_executor::push_waker(
            monotonic_clock::subscribe_instant(deadline),
            cx.waker().clone(),
        );
        Poll::Pending
    })
    .await
}

/// [`Env`] over wasi:http and wasi clocks/random.
pub(super) struct SpinEnv {
    token: String,
    timeout: Duration,
    /// The whole request's time for Vault (`allocation_deadline_ms`): per-call timeouts
    /// alone would let a request making several calls, each over several slow nodes, hold
    /// its caller for many times `timeout`.
    budget: Duration,
    started: u64,
    /// Vault's nodes, tried in order; `nodes` remembers which one answered last.
    addrs: Vec<String>,
    nodes: Nodes,
}

impl SpinEnv {
    /// Vault access with `token`, one call taking at most `timeout` and all of them
    /// together `budget`, counted from now.
    pub(super) fn new(
        token: String,
        timeout: Duration,
        budget: Duration,
        vault: &VaultConfig,
    ) -> Self {
        Self {
            token,
            timeout,
            budget,
            started: monotonic_clock::now(),
            addrs: vault.nodes.clone(),
            nodes: Nodes::new(vault.nodes.len()),
        }
    }

    /// Starts the budget afresh: for a request made of several bounded parts (an export's
    /// pages), each part gets the whole budget rather than sharing one.
    pub(super) fn restart(&mut self) {
        self.started = monotonic_clock::now();
    }

    /// Prefixes an error with its node when there are several to tell apart.
    fn which(&self, node: &str) -> String {
        if self.addrs.len() > 1 {
            format!("{node}: ")
        } else {
            String::new()
        }
    }

    /// One call to one node; errors name the node (never the token).
    ///
    /// Written against wasi:http directly rather than `spin_sdk::http::send`: one request
    /// is one header list, one body write and one wait on the reply or the deadline, about
    /// half the host calls of the general path, which showed in the host overhead.
    async fn send_to(&self, node: &str, call: &Call) -> Result<Reply, String> {
        let left = self.budget.saturating_sub(self.elapsed());
        if left.is_zero() {
            return Err(format!(
                "{}not asked: the request's deadline (`allocation_deadline_ms`, {:?}) had passed",
                self.which(node),
                self.budget
            ));
        }
        let limit = self.timeout.min(left);
        let deadline = monotonic_clock::now() + limit.as_nanos() as u64;
        match self.exchange(node, call, deadline) {
            Ok(reply) => Ok(reply),
            Err(Failure::Denied) => Err(format!(
                "{}the runtime refused the request: the address is not covered by \
                 allowed_outbound_hosts (the Spin variable `vault_allowed_host`)",
                self.which(node)
            )),
            Err(Failure::Other(e)) => Err(format!("{}{e}", self.which(node))),
            Err(Failure::Timeout) if limit < self.timeout => Err(format!(
                "{}no answer before the request's deadline (`allocation_deadline_ms`, {:?})",
                self.which(node),
                self.budget
            )),
            Err(Failure::Timeout) => Err(format!(
                "{}no answer within {:?}",
                self.which(node),
                self.timeout
            )),
        }
    }

    /// Sends `call` and reads the whole reply, giving up at `deadline` (monotonic ns).
    fn exchange(&self, node: &str, call: &Call, deadline: u64) -> Result<Reply, Failure> {
        let future = self.start(node, call, deadline)?;
        receive(future, deadline)
    }

    /// Sends `call` (its body included) and answers the reply to come: the request is then
    /// in flight at the host, so several started before any is received run at once.
    fn start(
        &self,
        node: &str,
        call: &Call,
        deadline: u64,
    ) -> Result<spin_sdk::wit::wasi::http0_2_0::types::FutureIncomingResponse, Failure> {
        use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types as http};
        let (scheme, authority) = match node.split_once("://") {
            Some(("https", rest)) => (http::Scheme::Https, rest),
            Some((_, rest)) => (http::Scheme::Http, rest),
            None => (http::Scheme::Http, node),
        };
        let mut headers = vec![("x-vault-token".to_string(), self.token.as_bytes().to_vec())];
        if call.body.is_some() {
            headers.push(("content-type".into(), b"application/json".to_vec()));
        }
        let fields = http::Fields::from_list(&headers)
            .map_err(|e| Failure::Other(format!("the request headers are not valid: {e:?}")))?;
        let request = http::OutgoingRequest::new(fields);
        let invalid = |what: &str| Failure::Other(format!("the request's {what} is not valid"));
        request
            .set_method(match call.method {
                vault::Method::Get => &http::Method::Get,
                vault::Method::Post => &http::Method::Post,
            })
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| invalid("authority"))?;
        request
            .set_path_with_query(Some(&call.path))
            .map_err(|()| invalid("path"))?;
        // A request without a body never takes one: the host then sends no body at all.
        let body = match call.body {
            Some(_) => Some(request.body().map_err(|()| invalid("body"))?),
            None => None,
        };
        // No request-options: the deadline below covers the whole exchange, and giving up
        // drops the future, which cancels the host's work on it.
        let future = outgoing_handler::handle(request, None).map_err(Failure::from)?;
        // Every wait races the deadline, sending the body included: a Vault that never
        // takes the body must not hold the caller past it, whatever the host buffers.
        let deadline = Deadline::at(deadline);
        let wait = |pollable: &wasi::io::poll::Pollable| deadline.wait(pollable);
        if let (Some(body), Some(bytes)) = (body, &call.body) {
            let stream = body.write().map_err(|()| invalid("body"))?;
            let failed = |e| Failure::Other(format!("sending the body failed: {e}"));
            let mut rest = bytes.as_slice();
            while !rest.is_empty() {
                match stream.check_write().map_err(failed)? {
                    0 => wait(&stream.subscribe())?,
                    room => {
                        let n = rest.len().min(room as usize);
                        stream.write(&rest[..n]).map_err(failed)?;
                        rest = &rest[n..];
                    }
                }
            }
            // A flush is done when the stream takes writes again.
            stream.flush().map_err(failed)?;
            while stream.check_write().map_err(failed)? == 0 {
                wait(&stream.subscribe())?;
            }
            drop(stream);
            http::OutgoingBody::finish(body, None).map_err(Failure::from)?;
        }
        Ok(future)
    }
}

/// Reads the whole reply to a started request, giving up at `deadline` (monotonic ns).
fn receive(
    future: spin_sdk::wit::wasi::http0_2_0::types::FutureIncomingResponse,
    deadline: u64,
) -> Result<Reply, Failure> {
    use spin_sdk::wit::wasi::http0_2_0::types as http;
    let deadline = Deadline::at(deadline);
    let wait = |pollable: &wasi::io::poll::Pollable| deadline.wait(pollable);
    // Declared after `future`, so dropped before it: a pollable must not outlive its
    // parent resource.
    let ready = future.subscribe();
    let response = loop {
        if let Some(outcome) = future.get() {
            break outcome
                .map_err(|()| Failure::Other("the reply was taken twice".into()))?
                .map_err(Failure::from)?;
        }
        wait(&ready)?;
    };
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|()| Failure::Other("the reply body was taken twice".into()))?;
    let stream = incoming
        .stream()
        .map_err(|()| Failure::Other("the reply body was taken twice".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.read(64 * 1024) {
            Ok(chunk) if !chunk.is_empty() => bytes.extend_from_slice(&chunk),
            Ok(_) => wait(&stream.subscribe())?,
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(wasi::io::streams::StreamError::LastOperationFailed(e)) => {
                return Err(Failure::Other(format!(
                    "reading the reply failed: {}",
                    e.to_debug_string()
                )))
            }
        }
    }
    drop(stream);
    http::IncomingBody::finish(incoming);
    Ok(Reply {
        status,
        body: bytes,
    })
}

/// A monotonic deadline (nanoseconds) and its timer, which every wait races.
struct Deadline {
    at: u64,
    timer: wasi::io::poll::Pollable,
}

impl Deadline {
    fn at(at: u64) -> Self {
        Self {
            at,
            timer: monotonic_clock::subscribe_instant(at),
        }
    }

    /// Waits until `pollable` is ready or the deadline passes; `Timeout` once it has.
    fn wait(&self, pollable: &wasi::io::poll::Pollable) -> Result<(), Failure> {
        if monotonic_clock::now() >= self.at {
            return Err(Failure::Timeout);
        }
        wasi::io::poll::poll(&[pollable, &self.timer]);
        Ok(())
    }
}

/// Why one exchange with one node produced no reply.
enum Failure {
    /// The runtime's allowed_outbound_hosts refused the address.
    Denied,
    Timeout,
    /// Anything else, as the message to give.
    Other(String),
}

impl From<ErrorCode> for Failure {
    fn from(e: ErrorCode) -> Self {
        match e {
            ErrorCode::HttpRequestDenied => Self::Denied,
            e => Self::Other(e.to_string()),
        }
    }
}

/// How many calls of a [`Env::send_all`] are in flight at once.
const IN_FLIGHT: usize = 16;

impl Env for SpinEnv {
    async fn send(&mut self, call: Call) -> Result<Reply, String> {
        // Copied out so the closure can borrow the rest of `self`; two words.
        let mut nodes = self.nodes.clone();
        let this = &*self;
        let outcome = nodes
            .send(|node| this.send_to(&this.addrs[node], &call))
            .await;
        self.nodes = nodes;
        outcome
    }

    /// Up to [`IN_FLIGHT`] calls at once to the preferred node; a call that node does not
    /// answer usably is sent again on its own, through the failover of [`Env::send`].
    async fn send_all(&mut self, calls: Vec<Call>) -> Vec<Result<Reply, String>> {
        let addr = self.addrs[self.nodes.preferred()].clone();
        let mut replies = Vec::with_capacity(calls.len());
        for chunk in calls.chunks(IN_FLIGHT) {
            let left = self.budget.saturating_sub(self.elapsed());
            let deadline = monotonic_clock::now() + self.timeout.min(left).as_nanos() as u64;
            let started: Vec<_> = chunk
                .iter()
                .map(|call| self.start(&addr, call, deadline))
                .collect();
            for (call, started) in chunk.iter().zip(started) {
                let outcome = started
                    .and_then(|future| receive(future, deadline))
                    .map_err(|_| String::new());
                if node_unusable(&outcome) {
                    replies.push(self.send(call.clone()).await);
                } else {
                    replies.push(outcome);
                }
            }
        }
        replies
    }

    async fn sleep(&mut self, duration: Duration) {
        sleep_until(monotonic_clock::now() + duration.as_nanos() as u64).await
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(monotonic_clock::now().saturating_sub(self.started))
    }

    fn random(&mut self) -> u64 {
        wasi::random::random::get_random_u64()
    }

    fn unix_millis(&self) -> u64 {
        let now = wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
    }

    fn stale_read(&mut self) {
        self.nodes.skip();
    }

    async fn read_fresh(&mut self) {
        let mut nodes = self.nodes.clone();
        let (this, probe) = (&*self, vault::active_health());
        nodes
            .find_active(|node| {
                let probe = &probe;
                async move {
                    let reply = this.send_to(&this.addrs[node], probe).await;
                    reply.ok().map(|r| r.status)
                }
            })
            .await;
        self.nodes = nodes;
    }
}
