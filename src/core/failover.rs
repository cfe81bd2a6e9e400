//! Several Vault nodes: which answers mean "this node cannot serve, ask the next", the
//! loop that asks them in order, and finding the active node when a read must be fresh.
//!
//! Any node of an HA cluster accepts every call (a standby forwards it to the active
//! node), so a call that one node cannot serve is sent unchanged to the next. Resending is
//! safe even for writes that may have been applied: every write is a check-and-set, so a
//! write applied twice fails the second time and the allocation treats it like a lost race.

use std::future::Future;

use crate::core::vault::Reply;

/// Whether the outcome of one call says nothing about the data, only that this node could
/// not serve it: no answer at all (refused, reset, timed out), sealed or leaderless (503),
/// a standby redirecting instead of forwarding (307/308), or a standby that cannot find
/// the active node (500 "local node not active").
pub fn node_unusable(outcome: &Result<Reply, String>) -> bool {
    let Ok(reply) = outcome else {
        return true;
    };
    match reply.status {
        503 | 307 | 308 => true,
        500 | 502 => {
            let body = String::from_utf8_lossy(&reply.body);
            body.contains("not active") || body.contains("forward")
        }
        _ => false,
    }
}

/// The nodes of one request, remembering which one last answered so later calls of the
/// same request start there.
#[derive(Debug, Clone)]
pub struct Nodes {
    count: usize,
    preferred: usize,
    /// The preferred node said it is the active one: its reads see every acknowledged
    /// write, where a standby may serve its own older copy.
    on_active: bool,
}

impl Nodes {
    pub fn new(count: usize) -> Self {
        Self {
            count: count.max(1),
            preferred: 0,
            on_active: false,
        }
    }

    /// Prefers the next node from now on: the current one answered, but with stale data.
    /// The node the next call goes to first.
    pub fn preferred(&self) -> usize {
        self.preferred
    }

    pub fn skip(&mut self) {
        self.preferred = (self.preferred + 1) % self.count;
        self.on_active = false;
    }

    /// Makes the active node the preferred one, unless it already is or there is only
    /// one: `probe(node)` asks a node's health and gives its status (200 only on the
    /// active node, 429 on a standby), `None` for no answer. Nodes are asked from the
    /// preferred one on; if none says it is active, the next node is preferred instead,
    /// as after a stale read.
    pub async fn find_active<F, Fut>(&mut self, mut probe: F)
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Option<u16>>,
    {
        if self.count == 1 || self.on_active {
            return;
        }
        for offset in 0..self.count {
            let node = (self.preferred + offset) % self.count;
            if probe(node).await == Some(200) {
                self.preferred = node;
                self.on_active = true;
                return;
            }
        }
        self.skip();
    }

    /// Sends one call through `attempt(node index)`, starting at the preferred node and
    /// moving on while a node is unusable; each node is tried at most once. When none can
    /// serve, the last answer is returned (a 503 still reads as "sealed"), or, if no node
    /// answered at all, every node's error.
    pub async fn send<F, Fut>(&mut self, mut attempt: F) -> Result<Reply, String>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<Reply, String>>,
    {
        let mut errors = Vec::new();
        let mut last_answer = None;
        for offset in 0..self.count {
            let node = (self.preferred + offset) % self.count;
            let outcome = attempt(node).await;
            if !node_unusable(&outcome) {
                self.on_active &= node == self.preferred;
                self.preferred = node;
                return outcome;
            }
            match outcome {
                Ok(reply) => last_answer = Some(reply),
                Err(e) => errors.push(e),
            }
        }
        match last_answer {
            Some(reply) => Ok(reply),
            None => Err(errors.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::block_on;

    fn reply(status: u16, body: &str) -> Result<Reply, String> {
        Ok(Reply {
            status,
            body: body.as_bytes().to_vec(),
        })
    }

    /// Runs one call against nodes that answer as `answers` says, recording who was asked.
    fn run(
        nodes: &mut Nodes,
        answers: &[Result<Reply, String>],
    ) -> (Result<Reply, String>, Vec<usize>) {
        let mut asked = Vec::new();
        let outcome = block_on(nodes.send(|node| {
            asked.push(node);
            let answer = answers[node].clone();
            async move { answer }
        }));
        (outcome, asked)
    }

    #[test]
    fn a_refused_first_node_costs_one_attempt_and_later_calls_skip_it() {
        let answers = [Err("connection refused".into()), reply(200, "{}")];
        let mut nodes = Nodes::new(2);
        let (outcome, asked) = run(&mut nodes, &answers);
        assert_eq!(outcome.unwrap().status, 200);
        assert_eq!(asked, [0, 1]);
        let (_, asked) = run(&mut nodes, &answers);
        assert_eq!(
            asked,
            [1],
            "the request's next call starts at the node that answered"
        );
    }

    #[test]
    fn skipping_a_node_that_served_stale_data_moves_on_and_wraps_around() {
        let answers = [reply(200, "{}"), reply(200, "{}"), reply(200, "{}")];
        let mut nodes = Nodes::new(3);
        let mut order = Vec::new();
        for _ in 0..4 {
            order.extend(run(&mut nodes, &answers).1);
            nodes.skip();
        }
        assert_eq!(order, [0, 1, 2, 0]);
    }

    /// Finds the active node among nodes whose health answers are `health`, recording who
    /// was asked.
    fn find(nodes: &mut Nodes, health: &[Option<u16>]) -> Vec<usize> {
        let mut asked = Vec::new();
        block_on(nodes.find_active(|node| {
            asked.push(node);
            let status = health[node];
            async move { status }
        }));
        asked
    }

    #[test]
    fn the_active_node_is_found_from_the_preferred_one_on_and_asked_once() {
        let health = [Some(429), None, Some(200)];
        let mut nodes = Nodes::new(3);
        assert_eq!(find(&mut nodes, &health), [0, 1, 2]);
        let answers = [reply(200, "{}"), reply(200, "{}"), reply(200, "{}")];
        assert_eq!(
            run(&mut nodes, &answers).1,
            [2],
            "calls now go to the active node"
        );
        assert!(
            find(&mut nodes, &health).is_empty(),
            "known already: not asked again"
        );
    }

    #[test]
    fn a_single_node_is_never_probed() {
        assert!(find(&mut Nodes::new(1), &[Some(429)]).is_empty());
    }

    #[test]
    fn the_active_node_is_looked_for_again_once_it_serves_stale_data_or_fails() {
        let health = [Some(200), Some(429)];
        let mut nodes = Nodes::new(2);
        find(&mut nodes, &health);
        nodes.skip();
        let health = [Some(429), Some(200)];
        assert_eq!(find(&mut nodes, &health), [1]);
        // It stops answering: the call fails over to node 0, which may be a standby.
        let (outcome, asked) = run(&mut nodes, &[reply(200, "{}"), Err("refused".into())]);
        assert_eq!((outcome.unwrap().status, asked), (200, vec![1, 0]));
        assert_eq!(find(&mut nodes, &[Some(200), None]), [0]);
    }

    #[test]
    fn when_no_node_says_it_is_active_the_next_one_is_preferred() {
        let mut nodes = Nodes::new(3);
        assert_eq!(find(&mut nodes, &[Some(429), Some(503), None]), [0, 1, 2]);
        let answers = [reply(200, "{}"), reply(200, "{}"), reply(200, "{}")];
        assert_eq!(run(&mut nodes, &answers).1, [1]);
        assert_eq!(find(&mut nodes, &[Some(429), Some(503), None]), [1, 2, 0]);
    }

    #[test]
    fn sealed_and_leaderless_standbys_are_passed_over() {
        let answers = [
            reply(503, r#"{"errors":["Vault is sealed"]}"#),
            reply(
                500,
                r#"{"errors":["local node not active but active cluster node not found"]}"#,
            ),
            reply(307, ""),
            reply(200, "{}"),
        ];
        let (outcome, asked) = run(&mut Nodes::new(4), &answers);
        assert_eq!(outcome.unwrap().status, 200);
        assert_eq!(asked, [0, 1, 2, 3]);
    }

    #[test]
    fn answers_about_the_data_are_returned_from_the_first_node() {
        for status in [200, 204, 400, 403, 404, 429] {
            let answers = [reply(status, "{}"), reply(200, "{}")];
            let (outcome, asked) = run(&mut Nodes::new(2), &answers);
            assert_eq!(outcome.unwrap().status, status);
            assert_eq!(asked, [0], "status {status} must not fail over");
        }
        // A plain internal error is the active node's answer, not a routing problem.
        let answers = [
            reply(500, r#"{"errors":["internal error"]}"#),
            reply(200, "{}"),
        ];
        assert_eq!(run(&mut Nodes::new(2), &answers).1, [0]);
    }

    #[test]
    fn when_no_node_can_serve_each_is_asked_once_and_the_last_answer_wins() {
        let answers = [
            Err("refused".into()),
            reply(503, "sealed"),
            Err("timed out".into()),
        ];
        let (outcome, asked) = run(&mut Nodes::new(3), &answers);
        assert_eq!(asked, [0, 1, 2]);
        assert_eq!(outcome.unwrap().status, 503);
    }

    #[test]
    fn when_no_node_answers_every_error_is_reported() {
        let answers = [Err("a: refused".into()), Err("b: timed out".into())];
        let (outcome, _) = run(&mut Nodes::new(2), &answers);
        assert_eq!(outcome.unwrap_err(), "a: refused; b: timed out");
    }
}
