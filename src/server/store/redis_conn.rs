//! Connections to Redis, one server or a Redis Cluster, behind one type, so the store's
//! commands, scripts and pipelines are the same code for both (every key shares one hash
//! tag, so a cluster routes all of them to one slot).
//!
//! Two connections per instance: one multiplexed for requests (ingest, history, the series
//! list), which reconnects by itself, and one for the feeder's blocking `XREAD`, which must
//! not hold up requests and whose response timeout must outlast the block.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;
use tokio::sync::OnceCell;

/// A connection for commands: cheap to clone, clones share it.
#[derive(Clone)]
pub enum Conn {
    Manager(ConnectionManager),
    Plain(redis::aio::MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Manager(c) => c.req_packed_command(cmd),
            Self::Plain(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Plain(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Manager(c) => c.get_db(),
            Self::Plain(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Timeouts of the two connections.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// For commands.
    pub command: Duration,
    /// For the feeder's reads, which block up to their own limit first.
    pub feed: Duration,
}

enum Target {
    Single {
        client: redis::Client,
        commands: ConnectionManager,
    },
    Cluster(Box<ClusterTarget>),
}

struct ClusterTarget {
    commands_client: ClusterClient,
    feed_client: ClusterClient,
    /// Made at the first command: making it needs the cluster up, starting must not.
    commands: OnceCell<ClusterConnection>,
}

pub struct Connections {
    target: Target,
    timeouts: Timeouts,
}

impl Connections {
    /// `urls`: one server, or with `cluster` one or more seed nodes of a cluster,
    /// comma-separated. Checks the addresses; connects only when first used.
    pub fn new(urls: &str, cluster: bool, timeouts: Timeouts) -> RedisResult<Self> {
        let nodes: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let target = if cluster {
            let client = |response: Duration| {
                ClusterClient::builder(nodes.clone())
                    .connection_timeout(timeouts.connect)
                    .response_timeout(response)
                    .retries(1)
                    .build()
            };
            Target::Cluster(Box::new(ClusterTarget {
                commands_client: client(timeouts.command)?,
                feed_client: client(timeouts.feed)?,
                commands: OnceCell::new(),
            }))
        } else {
            let [url] = nodes.as_slice() else {
                return Err((
                    redis::ErrorKind::InvalidClientConfig,
                    "one URL, or several seed nodes with --redis-cluster",
                )
                    .into());
            };
            let client = redis::Client::open(*url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeouts.connect))
                .set_response_timeout(Some(timeouts.command))
                .set_number_of_retries(1);
            Target::Single {
                commands: ConnectionManager::new_lazy_with_config(client.clone(), config)?,
                client,
            }
        };
        Ok(Self { target, timeouts })
    }

    /// The shared connection for commands.
    pub async fn commands(&self) -> RedisResult<Conn> {
        match &self.target {
            Target::Single { commands, .. } => Ok(Conn::Manager(commands.clone())),
            Target::Cluster(c) => c
                .commands
                .get_or_try_init(|| c.commands_client.get_async_connection())
                .await
                .cloned()
                .map(Conn::Cluster),
        }
    }

    /// A new connection of the feeder's own.
    pub async fn feed(&self) -> RedisResult<Conn> {
        match &self.target {
            Target::Single { client, .. } => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeouts.connect))
                    .set_response_timeout(Some(self.timeouts.feed));
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Conn::Plain)
            }
            Target::Cluster(c) => c
                .feed_client
                .get_async_connection()
                .await
                .map(Conn::Cluster),
        }
    }
}
