//! Server configuration: command-line flags, each with a `LIVECHART_*` environment variable
//! (flags win) and a key of the optional `--config` file ([`super::config_file`]), and `Leptos.toml` for the site settings shared with cargo-leptos.
//!
//! Every limit has a default and a one-line reason next to it; tests build a [`Config`]
//! directly and shrink the limits they cross.

use super::auth::Tokens;
pub use super::store::sqlite::Durability;
use clap::Parser;
use leptos::config::LeptosOptions;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The Leptos.toml of the build, used when no file is found at start.
const EMBEDDED_LEPTOS_TOML: &str = include_str!("../../Leptos.toml");
const DEFAULT_LEPTOS_TOML: &str = "Leptos.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid site settings in {origin}: {message}")]
    Leptos { origin: String, message: String },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("{name} {got} is more than this server can use (at most {max})")]
    TooLarge {
        name: &'static str,
        got: u64,
        max: u64,
    },
    #[error("--frame-ancestors {0:?}: expected a CSP source list such as \"'self' https://wiki.example.com\" (no ';' or control characters)")]
    FrameAncestors(String),
}

/// Longest timeout a flag takes: a day is already far past any useful wait, and deadlines
/// far in the future overflow the clock.
const MAX_TIMEOUT_SECS: u64 = 86_400;
/// Most live connections a flag may allow: tokio's semaphore takes at most this many permits
/// (`usize::MAX >> 3`); far beyond what one process can hold open anyway.
const MAX_CONNECTIONS: usize = usize::MAX >> 3;

/// `livechart` serves live charts of points pushed over HTTP.
#[derive(Debug, Parser)]
#[command(name = "livechart", version, about)]
pub struct Cli {
    /// Address to listen on, e.g. 0.0.0.0:3000 (default: site-addr from Leptos.toml). Port 0
    /// picks a free port; the chosen address is printed on start.
    #[arg(long, env = "LIVECHART_ADDR")]
    pub addr: Option<SocketAddr>,

    /// A TOML file of these flags by long name (`retention = "90d"`); flags and LIVECHART_*
    /// variables override it (docs/API.md).
    #[arg(long, env = "LIVECHART_CONFIG")]
    pub config: Option<PathBuf>,

    /// Site settings file (output name, site root, package dir, default address).
    #[arg(long, env = "LIVECHART_LEPTOS_TOML", default_value = DEFAULT_LEPTOS_TOML)]
    pub leptos_toml: PathBuf,

    /// Feed demo series (a sine wave and a random walk, 5 points a second each).
    /// LIVECHART_DEMO takes true/false, 1/0, yes/no or on/off.
    #[arg(long, env = "LIVECHART_DEMO", value_parser = clap::builder::BoolishValueParser::new())]
    pub demo: bool,

    /// Seconds of history a new browser gets on connect (the chart's own window starts at a
    /// minute and is chosen in the page).
    #[arg(long, env = "LIVECHART_WINDOW_SECS", default_value_t = 60)]
    pub window_secs: u64,

    /// Points kept in memory per series (newest win).
    #[arg(long, env = "LIVECHART_RING_CAPACITY", default_value_t = Limits::default().ring_capacity)]
    pub ring_capacity: usize,

    /// Distinct series accepted before new ones are refused.
    #[arg(long, env = "LIVECHART_MAX_SERIES", default_value_t = Limits::default().max_series)]
    pub max_series: usize,

    /// A token that may push points (repeat the flag for several).
    #[arg(long = "ingest-token")]
    pub ingest_token: Vec<String>,

    /// More tokens, comma-separated; usually given as LIVECHART_INGEST_TOKENS. Without any
    /// token, ingest is open on loopback and closed elsewhere.
    #[arg(
        long = "ingest-tokens",
        env = "LIVECHART_INGEST_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub ingest_tokens: Vec<String>,

    /// A token that may read (the live feed, the series list, history); repeat for several.
    /// Without any, reading is open. Pages pass it once as ?token=.
    #[arg(long = "viewer-token")]
    pub viewer_token: Vec<String>,

    /// More viewer tokens, comma-separated; usually given as LIVECHART_VIEWER_TOKENS.
    #[arg(
        long = "viewer-tokens",
        env = "LIVECHART_VIEWER_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub viewer_tokens: Vec<String>,

    /// Directory of the durable store (created if missing).
    #[arg(long, env = "LIVECHART_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Keep points in memory only: nothing is written to disk and a restart loses everything.
    /// Each series keeps its newest --ring-capacity points; --retention does not apply.
    #[arg(long, env = "LIVECHART_IN_MEMORY", value_parser = clap::builder::BoolishValueParser::new())]
    pub in_memory: bool,

    /// Keep points in Redis (`redis://[:password@]host:6379[/db]`, `rediss://` for TLS), so
    /// several instances behind a load balancer share history and live updates. Replaces
    /// the embedded store; --retention applies, --data-dir and --durability do not (Redis's
    /// own `appendfsync` decides, see docs/GUARANTEES.md).
    #[arg(
        long,
        env = "LIVECHART_REDIS_URL",
        hide_env_values = true,
        conflicts_with = "in_memory"
    )]
    pub redis_url: Option<String>,

    /// Do not record the server's own figures (ingest rate, live connections, series) as
    /// `livechart.*` series every 10 s. They are also at /metrics either way.
    #[arg(long, env = "LIVECHART_NO_SELF_METRICS", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_self_metrics: bool,

    /// Who may show the page in a frame: a CSP `frame-ancestors` source list such as
    /// "https://wiki.example.com 'self'". Default: nobody.
    #[arg(long, env = "LIVECHART_FRAME_ANCESTORS", default_value = "'none'")]
    pub frame_ancestors: String,

    /// --redis-url names seed nodes of a Redis Cluster (comma-separated; one is enough).
    #[arg(long, env = "LIVECHART_REDIS_CLUSTER", value_parser = clap::builder::BoolishValueParser::new(), requires = "redis_url")]
    pub redis_cluster: bool,

    /// What a 2xx promises: `fsync` (committed points survive a power loss) or `relaxed`
    /// (they survive a killed process; a power loss may take the last second or so).
    #[arg(
        long,
        env = "LIVECHART_DURABILITY",
        value_enum,
        default_value = "fsync"
    )]
    pub durability: Durability,

    /// How long points are kept, e.g. 30d, 12h, 90m, 3600s, 2w.
    #[arg(long, env = "LIVECHART_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub retention: Duration,

    /// Most disk the store may use, e.g. 10G or 500M (0: no cap besides --retention). Past it
    /// the oldest hour of data is dropped, repeatedly, until the store fits.
    #[arg(long, env = "LIVECHART_MAX_DISK_BYTES", default_value = "0", value_parser = parse_size)]
    pub max_disk_bytes: u64,

    /// Let anyone push points even when listening on a non-loopback address without tokens.
    #[arg(long, env = "LIVECHART_ALLOW_ANONYMOUS_INGEST", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_anonymous_ingest: bool,

    /// Largest request body accepted, in bytes, both as sent and after gzip.
    #[arg(long, env = "LIVECHART_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,

    /// Most points one ingest request may carry.
    #[arg(long, env = "LIVECHART_MAX_POINTS_PER_REQUEST", default_value_t = Limits::default().max_points_per_request)]
    pub max_points_per_request: usize,

    /// Longest line protocol line, in bytes.
    #[arg(long, env = "LIVECHART_MAX_LINE_BYTES", default_value_t = Limits::default().max_line_bytes)]
    pub max_line_bytes: usize,

    /// Most labels (tags) one series may have (at most 64).
    #[arg(long, env = "LIVECHART_MAX_LABELS", default_value_t = Limits::default().max_labels)]
    pub max_labels: usize,

    /// Most open live (WebSocket) connections; more are refused with 503.
    #[arg(long, env = "LIVECHART_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,

    /// Points queued for one live connection while its socket is busy, before they are cut to
    /// per-column extremes.
    #[arg(long, env = "LIVECHART_MAX_QUEUED_POINTS", default_value_t = Limits::default().max_queued_points)]
    pub max_queued_points: usize,

    /// Seconds a live connection's socket may take nothing before it is closed (code 4008).
    #[arg(long, env = "LIVECHART_SEND_TIMEOUT_SECS", default_value_t = Limits::default().send_timeout.as_secs())]
    pub send_timeout_secs: u64,

    /// Points of recent commits kept so reconnecting pages get exactly what they missed.
    #[arg(long, env = "LIVECHART_REPLAY_POINTS", default_value_t = Limits::default().replay_points)]
    pub replay_points: usize,

    /// A page origin allowed to open the live feed besides the server's own, e.g.
    /// https://dash.example.com (repeat the flag, or comma-separate in LIVECHART_ALLOWED_ORIGINS).
    #[arg(
        long = "allow-origin",
        env = "LIVECHART_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allow_origin: Vec<String>,

    /// Seconds an ingest request may take, body upload included, before it is answered 408.
    #[arg(long, env = "LIVECHART_REQUEST_TIMEOUT_SECS", default_value_t = Limits::default().request_timeout.as_secs())]
    pub request_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// 1 MiB: thousands of points in one batch, far below what would pressure memory.
    pub max_body_bytes: usize,
    /// Points in one ingest request; bounds the work and the live message one request causes.
    pub max_points_per_request: usize,
    /// 10 000 points per series: 30 minutes at 5 Hz, under 200 KB per series.
    pub ring_capacity: usize,
    /// 1 000 series: with full rings that is at most ~160 MB of points.
    pub max_series: usize,
    /// Commits queued for a live session between its reads; one that falls further behind
    /// catches up from the replay buffer instead.
    pub hub_capacity: usize,
    /// Largest message a browser may send on /ws: a subscription naming a thousand labelled
    /// series with their offsets fits; nothing a client needs to say is bigger.
    pub max_client_message_bytes: usize,
    /// Points of the newest commits kept for resumes: a minute of a 16 000 points/s server,
    /// about 25 MB. A client that was away longer reloads.
    pub replay_points: usize,
    /// Open live connections: each costs a few KB and a file descriptor; 10 000 leaves room
    /// for ingest and the store under the usual limit of 20 000 open files.
    pub max_connections: usize,
    /// Points queued for one live connection before they are cut to per-column extremes: a
    /// client this far behind cannot draw them all anyway, and the queue stays small.
    pub max_queued_points: usize,
    /// A live client whose socket takes nothing for this long is closed (code 4008); it
    /// resumes on reconnect. Long enough for a phone switching networks.
    pub send_timeout: Duration,
    /// A live client not heard from (message or pong) for this long is closed (code 4009):
    /// three missed heartbeats ([`crate::protocol::SILENCE_TIMEOUT_MS`]).
    pub silence_timeout: Duration,
    /// A live client that neither subscribes nor pauses within this is closed (code 4002):
    /// see [`super::ws::SUBSCRIBE_TIMEOUT`].
    pub subscribe_timeout: Duration,
    /// 64 KiB per line protocol line: hundreds of fields; one bad line cannot dominate.
    pub max_line_bytes: usize,
    /// 32 labels per series: exporters rarely pass 15; more is usually a bug in the sender.
    pub max_labels: usize,
    /// 15 s per ingest request: a 1 MiB batch on a slow link fits; a stalled upload does not
    /// hold a connection and its buffer forever.
    pub request_timeout: Duration,
    /// 10 s for a new connection's first request head (slowloris; see `server::slow_client`).
    pub header_timeout: Duration,
    /// 30 s for requests in flight at shutdown: twice the request timeout, so an ingest that
    /// started in time is answered, and a stalled client cannot hold the process up.
    pub drain_limit: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_points_per_request: 100_000,
            ring_capacity: 10_000,
            max_series: 1_000,
            hub_capacity: 1_024,
            max_client_message_bytes: 256 * 1024,
            replay_points: 1_000_000,
            max_connections: 10_000,
            max_queued_points: 50_000,
            send_timeout: Duration::from_secs(10),
            silence_timeout: Duration::from_millis(crate::protocol::SILENCE_TIMEOUT_MS as u64),
            subscribe_timeout: super::ws::SUBSCRIBE_TIMEOUT,
            max_line_bytes: crate::parse::line_protocol::MAX_LINE_BYTES,
            max_labels: 32,
            request_timeout: Duration::from_secs(15),
            header_timeout: super::slow_client::HEADER_DEADLINE,
            drain_limit: Duration::from_secs(30),
        }
    }
}

/// Where points are kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// In memory only, lost on restart (`--in-memory`; the default for tests and embedding).
    Memory,
    /// The embedded durable store (the binary's default).
    Sqlite {
        dir: PathBuf,
        durability: Durability,
        retention: Duration,
        /// Bytes of live database pages allowed; `None`: no cap.
        max_disk_bytes: Option<u64>,
    },
    /// Redis, shared by every instance given the same URL (`--redis-url`); with `cluster`,
    /// seed nodes of a Redis Cluster.
    Redis {
        url: String,
        cluster: bool,
        retention: Duration,
    },
}

/// `1048576`, `512K`, `500M`, `10G`, `1T` (binary multiples).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!("{text:?}: expected a number of bytes, optionally with K, M, G or T")
    })?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}; use K, M, G or T")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// `30d`, `12h`, `90m`, `3600s`, `2w`: a whole number and a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit (s, m, h, d, w)"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; use s, m, h, d or w"
            ))
        }
    };
    if n == 0 {
        return Err(format!("{text:?} must be longer than zero"));
    }
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[derive(Debug, Clone)]
pub struct Config {
    pub leptos: LeptosOptions,
    pub demo: bool,
    /// Span of the snapshot a browser gets on connect.
    pub window: Duration,
    pub limits: Limits,
    pub ingest_tokens: Tokens,
    /// Who may read; empty: anyone.
    pub viewer_tokens: Tokens,
    pub allow_anonymous_ingest: bool,
    pub storage: Storage,
    /// Page origins (`scheme://host[:port]`) allowed on /ws besides the server's own.
    pub allowed_origins: Vec<String>,
    /// Who may frame the page: a CSP `frame-ancestors` source list.
    pub frame_ancestors: String,
    /// Record the server's own figures as `livechart.*` series.
    pub self_metrics: bool,
}

impl Config {
    /// Defaults for tests and embedding: the compiled-in site settings, no demo.
    pub fn new() -> Self {
        Self {
            leptos: leptos_options_from_str(EMBEDDED_LEPTOS_TOML, "built-in Leptos.toml").expect(
                "the Leptos.toml compiled into the binary is valid (checked by a unit test)",
            ),
            demo: false,
            window: Duration::from_secs(60),
            limits: Limits::default(),
            ingest_tokens: Tokens::default(),
            viewer_tokens: Tokens::default(),
            allow_anonymous_ingest: false,
            storage: Storage::Memory,
            allowed_origins: Vec::new(),
            frame_ancestors: super::headers::NO_FRAMING.to_string(),
            self_metrics: false,
        }
    }

    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let mut leptos = load_leptos_options(&cli.leptos_toml)?;
        if let Some(addr) = cli.addr {
            leptos.site_addr = addr;
        }
        for (name, v) in [
            ("--window-secs", cli.window_secs as usize),
            ("--ring-capacity", cli.ring_capacity),
            ("--max-series", cli.max_series),
            ("--max-body-bytes", cli.max_body_bytes),
            ("--max-points-per-request", cli.max_points_per_request),
            ("--max-line-bytes", cli.max_line_bytes),
            ("--request-timeout-secs", cli.request_timeout_secs as usize),
            ("--max-connections", cli.max_connections),
            ("--replay-points", cli.replay_points),
            ("--max-queued-points", cli.max_queued_points),
            ("--send-timeout-secs", cli.send_timeout_secs as usize),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        // Values past these would overflow a deadline or a semaphore at run time (a panic in
        // every live session, or at start) instead of being refused here.
        for (name, got, max) in [
            (
                "--send-timeout-secs",
                cli.send_timeout_secs,
                MAX_TIMEOUT_SECS,
            ),
            (
                "--request-timeout-secs",
                cli.request_timeout_secs,
                MAX_TIMEOUT_SECS,
            ),
            (
                "--max-connections",
                cli.max_connections as u64,
                MAX_CONNECTIONS as u64,
            ),
        ] {
            if got > max {
                return Err(ConfigError::TooLarge { name, got, max });
            }
        }
        let frame = cli.frame_ancestors.trim();
        if frame.is_empty() || frame.contains(';') || frame.chars().any(char::is_control) {
            return Err(ConfigError::FrameAncestors(cli.frame_ancestors));
        }
        Ok(Self {
            leptos,
            demo: cli.demo,
            window: Duration::from_secs(cli.window_secs),
            limits: Limits {
                ring_capacity: cli.ring_capacity,
                max_series: cli.max_series,
                max_body_bytes: cli.max_body_bytes,
                max_points_per_request: cli.max_points_per_request,
                max_line_bytes: cli.max_line_bytes,
                max_labels: cli.max_labels.min(crate::model::MAX_LABELS),
                request_timeout: Duration::from_secs(cli.request_timeout_secs),
                drain_limit: Duration::from_secs(cli.request_timeout_secs.saturating_mul(2)),
                max_connections: cli.max_connections,
                replay_points: cli.replay_points,
                max_queued_points: cli.max_queued_points,
                send_timeout: Duration::from_secs(cli.send_timeout_secs),
                ..Limits::default()
            },
            allowed_origins: cli
                .allow_origin
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect(),
            frame_ancestors: frame.to_string(),
            self_metrics: !cli.no_self_metrics,
            ingest_tokens: Tokens::new(cli.ingest_token.into_iter().chain(cli.ingest_tokens)),
            viewer_tokens: Tokens::new(cli.viewer_token.into_iter().chain(cli.viewer_tokens)),
            allow_anonymous_ingest: cli.allow_anonymous_ingest,
            storage: if let Some(url) = cli.redis_url {
                Storage::Redis {
                    url,
                    cluster: cli.redis_cluster,
                    retention: cli.retention,
                }
            } else if cli.in_memory {
                Storage::Memory
            } else {
                Storage::Sqlite {
                    dir: cli.data_dir,
                    durability: cli.durability,
                    retention: cli.retention,
                    max_disk_bytes: (cli.max_disk_bytes > 0).then_some(cli.max_disk_bytes),
                }
            },
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads the site settings; a missing file at the default path means "use the built-in copy",
/// so the binary runs from any directory. A path given explicitly must exist.
fn load_leptos_options(path: &PathBuf) -> Result<LeptosOptions, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => leptos_options_from_str(&text, &path.display().to_string()),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path.as_os_str() == DEFAULT_LEPTOS_TOML =>
        {
            leptos_options_from_str(EMBEDDED_LEPTOS_TOML, "built-in Leptos.toml")
        }
        Err(source) => Err(ConfigError::Read {
            path: path.clone(),
            source,
        }),
    }
}

/// Leptos.toml holds the keys at top level; leptos_config expects them under the Cargo
/// metadata header and layers the LEPTOS_* environment on top, so lend it the header.
fn leptos_options_from_str(text: &str, origin: &str) -> Result<LeptosOptions, ConfigError> {
    let doc = format!("[package.metadata.leptos]\n{text}");
    leptos::config::get_config_from_str(&doc).map_err(|e| ConfigError::Leptos {
        origin: origin.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leptos_toml_agrees_with_cargo_metadata() {
        let site: toml::Table = toml::from_str(EMBEDDED_LEPTOS_TOML).unwrap();
        let cargo: toml::Table = toml::from_str(include_str!("../../Cargo.toml")).unwrap();
        let meta = &cargo["package"]["metadata"]["leptos"];
        for key in [
            "output-name",
            "site-root",
            "site-pkg-dir",
            "site-addr",
            "reload-port",
        ] {
            assert_eq!(
                site.get(key),
                meta.get(key),
                "{key} differs between Leptos.toml and Cargo.toml"
            );
        }
    }

    #[test]
    fn embedded_settings_load() {
        let c = Config::new();
        assert_eq!(&*c.leptos.output_name, "livechart");
        assert_eq!(c.leptos.site_addr.port(), 3000);
    }

    #[test]
    fn cli_flags_override_and_zero_limits_are_refused() {
        let cli = Cli::parse_from(["livechart", "--addr", "127.0.0.1:0", "--demo"]);
        let c = Config::from_cli(cli).unwrap();
        assert_eq!(c.leptos.site_addr.port(), 0);
        assert!(c.demo);
        let cli = Cli::try_parse_from(["livechart", "--demo"]).unwrap();
        assert!(cli.demo);
        let cli = Cli::parse_from([
            "livechart",
            "--ingest-token",
            "a,b",
            "--ingest-tokens",
            " c , d",
        ]);
        let c = Config::from_cli(cli).unwrap();
        assert_eq!(
            format!("{:?}", c.ingest_tokens),
            "Tokens(3 configured)",
            "a flag token may hold a comma"
        );
        let cli = Cli::parse_from(["livechart", "--ring-capacity", "0"]);
        assert!(matches!(
            Config::from_cli(cli),
            Err(ConfigError::Zero("--ring-capacity"))
        ));
        for (flag, too_big) in [
            ("--send-timeout-secs", "18446744073709551615"),
            ("--request-timeout-secs", "86401"),
            ("--max-connections", "18446744073709551615"),
        ] {
            let cli = Cli::parse_from(["livechart", flag, too_big]);
            let e = Config::from_cli(cli).map(|_| ()).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{flag} {too_big} is more than")),
                "{e}"
            );
        }
        let cli = Cli::parse_from(["livechart", "--leptos-toml", "/nonexistent/Leptos.toml"]);
        assert!(matches!(
            Config::from_cli(cli),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512K"), Ok(512 * 1024));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("2mb"), Ok(2 << 20));
        for bad in ["", "G", "1.5G", "10X", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_need_a_number_and_a_unit() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
        for bad in ["", "30", "d", "0s", "1y", "-1d", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
