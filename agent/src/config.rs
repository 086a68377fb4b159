//! Agent configuration: layered sources (TOML file < environment < command line) merged into a
//! [`PartialConfig`], then validated once into an [`AgentConfig`] whose values are known good.
//!
//! Keys (file / env / flag):
//!
//! | file key         | environment                         | flag           | default |
//! |------------------|-------------------------------------|----------------|---------|
//! | `server`         | `CLOUDGOV_AGENT_SERVER`             | `--server`     | —       |
//! | `token`          | `CLOUDGOV_AGENT_TOKEN`              | —              | —       |
//! | `token_file`     | `CLOUDGOV_AGENT_TOKEN_FILE`         | `--token-file` | —       |
//! | `interval_secs`  | `CLOUDGOV_AGENT_INTERVAL_SECS`      | `--interval`   | 60      |
//! | `queue_capacity` | `CLOUDGOV_AGENT_QUEUE_CAPACITY`     | —              | 1440    |
//! | `batch_size`     | `CLOUDGOV_AGENT_BATCH_SIZE`         | —              | 100     |
//! | `timeout_secs`   | `CLOUDGOV_AGENT_TIMEOUT_SECS`       | —              | 10      |
//! | `spool_dir`      | `CLOUDGOV_AGENT_SPOOL_DIR`          | —              | `/var/lib/cloudgov-agent/spool` |
//! | `spool_max_bytes`| `CLOUDGOV_AGENT_SPOOL_MAX_BYTES`    | —              | 64 MiB  |
//!
//! `spool_dir = ""` in the file turns the on-disk spool ([`crate::spool`]) off: reports are then
//! only kept in the bounded in-memory queue, as before. (An empty environment variable counts as
//! unset, like every other key.) [`AgentConfig::new`], the constructor for in-process use, has
//! the spool off; [`AgentConfig::with_spool`] turns it on.
//!
//! `token` and `token_file` are two spellings of one setting: a layer that sets either replaces
//! the token of lower layers, and one layer setting both is an error. There is deliberately no
//! `--token` flag: command lines are visible to every user through `ps`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::wire;

/// Read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/cloudgov/agent.toml";

pub const DEFAULT_INTERVAL_SECS: u64 = 60;
/// One day of reports at the default interval.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1440;
pub const DEFAULT_BATCH_SIZE: usize = 100;
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/cloudgov-agent/spool";
/// About 30 000 reports of ~2 KiB: three weeks at the default interval.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Below this the spool could not hold a handful of reports.
pub const MIN_SPOOL_MAX_BYTES: u64 = 64 * 1024;

const MAX_INTERVAL_SECS: u64 = 86_400;
/// A report is 1–2 KiB of JSON; 1000 of them stay well under the daemon's request body limit
/// (4 MiB) and its per-batch report limit (2000).
const MAX_BATCH_SIZE: usize = 1000;
const MAX_TIMEOUT_SECS: u64 = 300;

const ENV_SERVER: &str = "CLOUDGOV_AGENT_SERVER";
const ENV_TOKEN: &str = "CLOUDGOV_AGENT_TOKEN";
const ENV_TOKEN_FILE: &str = "CLOUDGOV_AGENT_TOKEN_FILE";
const ENV_INTERVAL: &str = "CLOUDGOV_AGENT_INTERVAL_SECS";
const ENV_QUEUE_CAPACITY: &str = "CLOUDGOV_AGENT_QUEUE_CAPACITY";
const ENV_BATCH_SIZE: &str = "CLOUDGOV_AGENT_BATCH_SIZE";
const ENV_TIMEOUT: &str = "CLOUDGOV_AGENT_TIMEOUT_SECS";
const ENV_SPOOL_DIR: &str = "CLOUDGOV_AGENT_SPOOL_DIR";
const ENV_SPOOL_MAX_BYTES: &str = "CLOUDGOV_AGENT_SPOOL_MAX_BYTES";
const ENV_CA_FILE: &str = "CLOUDGOV_AGENT_CA_FILE";
const ENV_CLIENT_IDENTITY_FILE: &str = "CLOUDGOV_AGENT_CLIENT_IDENTITY_FILE";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax errors, wrong types and unknown keys; toml's message names the key.
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("invalid environment variable {var}: {reason}")]
    Env { var: &'static str, reason: String },
    #[error("cannot read token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`token` and `token_file` are both set in {layer}; set only one")]
    ConflictingToken { layer: String },
    #[error("`{key}` is not set ({hint})")]
    Missing {
        key: &'static str,
        hint: &'static str,
    },
    #[error("invalid `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The bearer token. Its `Debug` output is redacted so that configs can be logged safely, and it
/// has no `Display` on purpose.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Where the token comes from; a file is read at validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Inline(Token),
    File(PathBuf),
}

/// One layer of settings, or several merged with [`PartialConfig::overlay`]; unset values are
/// `None`. Turn it into a usable config with [`PartialConfig::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialConfig {
    pub server: Option<String>,
    pub token: Option<TokenSource>,
    pub interval_secs: Option<u64>,
    pub queue_capacity: Option<usize>,
    pub batch_size: Option<usize>,
    pub timeout_secs: Option<u64>,
    /// `Some("")` disables the spool.
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: Option<u64>,
    /// PEM CA certificate(s) to trust for an https server (e.g. the center's own CA).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for a daemon that requires client certificates.
    pub client_identity_file: Option<PathBuf>,
}

/// Exactly the file's schema; unknown keys are rejected so a typo is not silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    interval_secs: Option<u64>,
    queue_capacity: Option<usize>,
    batch_size: Option<usize>,
    timeout_secs: Option<u64>,
    spool_dir: Option<PathBuf>,
    spool_max_bytes: Option<u64>,
    ca_file: Option<PathBuf>,
    client_identity_file: Option<PathBuf>,
}

impl PartialConfig {
    /// Parses the TOML text of a config file; `path` is only used in error messages.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let token = match (file.token, file.token_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::ConflictingToken {
                    layer: path.display().to_string(),
                });
            }
            (Some(t), None) => Some(TokenSource::Inline(Token::new(t))),
            (None, Some(p)) => Some(TokenSource::File(p)),
            (None, None) => None,
        };
        Ok(Self {
            server: file.server,
            token,
            interval_secs: file.interval_secs,
            queue_capacity: file.queue_capacity,
            batch_size: file.batch_size,
            timeout_secs: file.timeout_secs,
            spool_dir: file.spool_dir,
            spool_max_bytes: file.spool_max_bytes,
            ca_file: file.ca_file,
            client_identity_file: file.client_identity_file,
        })
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Reads the `CLOUDGOV_AGENT_*` variables through `lookup` (injectable so tests need not
    /// mutate the process environment). Empty values count as unset.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &str| lookup(var).filter(|v| !v.is_empty());
        let token = match (get(ENV_TOKEN), get(ENV_TOKEN_FILE)) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::ConflictingToken {
                    layer: format!("the environment ({ENV_TOKEN} and {ENV_TOKEN_FILE})"),
                });
            }
            (Some(t), None) => Some(TokenSource::Inline(Token::new(t))),
            (None, Some(p)) => Some(TokenSource::File(PathBuf::from(p))),
            (None, None) => None,
        };
        Ok(Self {
            server: get(ENV_SERVER),
            token,
            interval_secs: parse_env(ENV_INTERVAL, get(ENV_INTERVAL))?,
            queue_capacity: parse_env(ENV_QUEUE_CAPACITY, get(ENV_QUEUE_CAPACITY))?,
            batch_size: parse_env(ENV_BATCH_SIZE, get(ENV_BATCH_SIZE))?,
            timeout_secs: parse_env(ENV_TIMEOUT, get(ENV_TIMEOUT))?,
            spool_dir: get(ENV_SPOOL_DIR).map(PathBuf::from),
            spool_max_bytes: parse_env(ENV_SPOOL_MAX_BYTES, get(ENV_SPOOL_MAX_BYTES))?,
            ca_file: get(ENV_CA_FILE).map(PathBuf::from),
            client_identity_file: get(ENV_CLIENT_IDENTITY_FILE).map(PathBuf::from),
        })
    }

    /// `self` with every value that `higher` sets replaced by `higher`'s.
    pub fn overlay(self, higher: PartialConfig) -> PartialConfig {
        PartialConfig {
            server: higher.server.or(self.server),
            token: higher.token.or(self.token),
            interval_secs: higher.interval_secs.or(self.interval_secs),
            queue_capacity: higher.queue_capacity.or(self.queue_capacity),
            batch_size: higher.batch_size.or(self.batch_size),
            timeout_secs: higher.timeout_secs.or(self.timeout_secs),
            spool_dir: higher.spool_dir.or(self.spool_dir),
            spool_max_bytes: higher.spool_max_bytes.or(self.spool_max_bytes),
            ca_file: higher.ca_file.or(self.ca_file),
            client_identity_file: higher.client_identity_file.or(self.client_identity_file),
        }
    }

    /// Merges file < environment < `cli`. `file` is the `--config` argument; without it
    /// [`DEFAULT_CONFIG_PATH`] is read if it exists.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        cli: PartialConfig,
    ) -> Result<Self, ConfigError> {
        let base = match file {
            Some(path) => Self::from_file(path)?,
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                Self::from_file(Path::new(DEFAULT_CONFIG_PATH))?
            }
            None => Self::default(),
        };
        Ok(base.overlay(Self::from_env(env)?).overlay(cli))
    }

    /// Checks every value and fills in defaults. Reads the token file if the token comes from one.
    pub fn validate(self) -> Result<AgentConfig, ConfigError> {
        let server_text = self.server.ok_or(ConfigError::Missing {
            key: "server",
            hint: "config key `server`, CLOUDGOV_AGENT_SERVER or --server",
        })?;
        let (server, ingest_url) = parse_server(&server_text)?;

        let token = match self.token.ok_or(ConfigError::Missing {
            key: "token",
            hint: "config key `token`/`token_file`, CLOUDGOV_AGENT_TOKEN(_FILE) or --token-file",
        })? {
            TokenSource::Inline(t) => t,
            TokenSource::File(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::TokenFile { path, source })?;
                // Files usually end with a newline that is not part of the token.
                Token::new(text.trim())
            }
        };
        check_token(&token)?;

        let interval_secs = in_range(
            "interval_secs",
            self.interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS),
            1,
            Some(MAX_INTERVAL_SECS),
        )?;
        let queue_capacity = in_range(
            "queue_capacity",
            self.queue_capacity.unwrap_or(DEFAULT_QUEUE_CAPACITY),
            1,
            None,
        )?;
        let batch_size = in_range(
            "batch_size",
            self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            1,
            Some(MAX_BATCH_SIZE),
        )?;
        let timeout_secs = in_range(
            "timeout_secs",
            self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
            1,
            Some(MAX_TIMEOUT_SECS),
        )?;

        let spool_dir = match self.spool_dir {
            None => Some(PathBuf::from(DEFAULT_SPOOL_DIR)),
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) if p.is_relative() => {
                return Err(ConfigError::Invalid {
                    key: "spool_dir",
                    reason: format!("must be an absolute path, got {}", p.display()),
                });
            }
            Some(p) => Some(p),
        };
        let spool_max_bytes = in_range(
            "spool_max_bytes",
            self.spool_max_bytes.unwrap_or(DEFAULT_SPOOL_MAX_BYTES),
            MIN_SPOOL_MAX_BYTES,
            None,
        )?;

        Ok(AgentConfig {
            server,
            ingest_url,
            token,
            interval: Duration::from_secs(interval_secs),
            queue_capacity,
            batch_size,
            timeout: Duration::from_secs(timeout_secs),
            spool_dir,
            spool_max_bytes,
            ca_file: self.ca_file,
            client_identity_file: self.client_identity_file,
        })
    }
}

/// A checked configuration. Fields are private so every instance went through validation.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    server: Url,
    ingest_url: Url,
    token: Token,
    interval: Duration,
    queue_capacity: usize,
    batch_size: usize,
    timeout: Duration,
    spool_dir: Option<PathBuf>,
    spool_max_bytes: u64,
    ca_file: Option<PathBuf>,
    client_identity_file: Option<PathBuf>,
}

impl AgentConfig {
    /// PEM CA certificate(s) trusted for the server, besides the system's.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// PEM certificate and key presented to a daemon that requires client certificates.
    pub fn client_identity_file(&self) -> Option<&Path> {
        self.client_identity_file.as_deref()
    }

    /// A config with the given server and token and defaults for everything else, except that
    /// the on-disk spool is off (in-process callers should not write to
    /// [`DEFAULT_SPOOL_DIR`] unasked); see [`AgentConfig::with_spool`].
    pub fn new(server: &str, token: &str) -> Result<Self, ConfigError> {
        PartialConfig {
            server: Some(server.to_owned()),
            token: Some(TokenSource::Inline(Token::new(token))),
            spool_dir: Some(PathBuf::new()),
            ..PartialConfig::default()
        }
        .validate()
    }

    /// Turns the on-disk spool on in `dir` (absolute), bounded by `max_bytes`
    /// (at least [`MIN_SPOOL_MAX_BYTES`]).
    pub fn with_spool(mut self, dir: &Path, max_bytes: u64) -> Result<Self, ConfigError> {
        if dir.is_relative() {
            return Err(ConfigError::Invalid {
                key: "spool_dir",
                reason: format!("must be an absolute path, got {}", dir.display()),
            });
        }
        self.spool_max_bytes = in_range("spool_max_bytes", max_bytes, MIN_SPOOL_MAX_BYTES, None)?;
        self.spool_dir = Some(dir.to_owned());
        Ok(self)
    }

    /// The spool directory; `None` when the spool is off.
    pub fn spool_dir(&self) -> Option<&Path> {
        self.spool_dir.as_deref()
    }

    pub fn spool_max_bytes(&self) -> u64 {
        self.spool_max_bytes
    }

    /// Changes the collection interval (1 s ..= 1 day), e.g. for a fast demo.
    pub fn with_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if interval < Duration::from_secs(1) || interval > Duration::from_secs(MAX_INTERVAL_SECS) {
            return Err(ConfigError::Invalid {
                key: "interval_secs",
                reason: format!("must be between 1 s and {MAX_INTERVAL_SECS} s, got {interval:?}"),
            });
        }
        self.interval = interval;
        Ok(self)
    }

    /// The server's base URL as configured.
    pub fn server(&self) -> &Url {
        &self.server
    }

    /// `server` joined with [`wire::INGEST_PATH`].
    pub fn ingest_url(&self) -> &Url {
        &self.ingest_url
    }

    pub(crate) fn token(&self) -> &Token {
        &self.token
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Whole-request timeout for one POST.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

fn parse_env<T: std::str::FromStr>(
    var: &'static str,
    value: Option<String>,
) -> Result<Option<T>, ConfigError>
where
    T::Err: fmt::Display,
{
    value
        .map(|v| {
            v.trim().parse().map_err(|e| ConfigError::Env {
                var,
                reason: format!("{v:?}: {e}"),
            })
        })
        .transpose()
}

/// Checks `min <= value` and, when given, `value <= max`.
fn in_range<T: PartialOrd + fmt::Display + Copy>(
    key: &'static str,
    value: T,
    min: T,
    max: Option<T>,
) -> Result<T, ConfigError> {
    let reason = match max {
        _ if value < min => match max {
            Some(max) => format!("must be between {min} and {max}, got {value}"),
            None => format!("must be at least {min}, got {value}"),
        },
        Some(max) if value > max => format!("must be between {min} and {max}, got {value}"),
        _ => return Ok(value),
    };
    Err(ConfigError::Invalid { key, reason })
}

/// Returns the base URL and the ingest URL. Rejects what would leak or be ambiguous:
/// credentials in the URL (they would end up in logs; the token is the credential), query and
/// fragment (the ingest path is appended to the base).
fn parse_server(text: &str) -> Result<(Url, Url), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: "server",
        reason,
    };
    let url =
        Url::parse(text.trim()).map_err(|e| invalid(format!("{text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "scheme must be http or https, got {:?}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("URL has no host".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "URL must not contain credentials; the token authenticates the agent".to_owned(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("URL must not have a query or fragment".to_owned()));
    }
    // Keep a path prefix (a reverse proxy may mount the daemon under one).
    let joined = format!(
        "{}{}",
        url.as_str().trim_end_matches('/'),
        wire::INGEST_PATH
    );
    let ingest =
        Url::parse(&joined).map_err(|e| invalid(format!("cannot build ingest URL: {e}")))?;
    Ok((url, ingest))
}

/// The token goes into an HTTP header, so it must be non-empty visible ASCII without spaces.
/// Errors never include the token itself.
fn check_token(token: &Token) -> Result<(), ConfigError> {
    let t = token.expose();
    if t.is_empty() {
        return Err(ConfigError::Invalid {
            key: "token",
            reason: "is empty".to_owned(),
        });
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::Invalid {
            key: "token",
            reason: "contains whitespace, control or non-ASCII characters".to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "s3cr3t-t0ken";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn parse(text: &str) -> Result<PartialConfig, ConfigError> {
        PartialConfig::from_toml_str(text, Path::new("agent.toml"))
    }

    #[test]
    fn full_file_parses_and_validates() {
        let cfg = parse(
            r#"
            server = "https://gov.example/cloudgov/"
            token = "abc"
            interval_secs = 30
            queue_capacity = 10
            batch_size = 5
            timeout_secs = 3
            "#,
        )
        .expect("parses")
        .validate()
        .expect("valid");
        assert_eq!(cfg.server().as_str(), "https://gov.example/cloudgov/");
        assert_eq!(
            cfg.ingest_url().as_str(),
            "https://gov.example/cloudgov/api/v1/ingest"
        );
        assert_eq!(cfg.interval(), Duration::from_secs(30));
        assert_eq!(cfg.queue_capacity(), 10);
        assert_eq!(cfg.batch_size(), 5);
        assert_eq!(cfg.timeout(), Duration::from_secs(3));
        assert_eq!(cfg.token().expose(), "abc");
    }

    #[test]
    fn defaults_apply() {
        let cfg = AgentConfig::new("http://127.0.0.1:8080", "t").expect("valid");
        assert_eq!(cfg.interval(), Duration::from_secs(60));
        assert_eq!(cfg.queue_capacity(), 1440);
        assert_eq!(cfg.batch_size(), 100);
        assert_eq!(cfg.timeout(), Duration::from_secs(10));
        assert_eq!(
            cfg.spool_dir(),
            None,
            "AgentConfig::new leaves the spool off"
        );
        assert_eq!(cfg.spool_max_bytes(), DEFAULT_SPOOL_MAX_BYTES);
        assert_eq!(
            cfg.ingest_url().as_str(),
            "http://127.0.0.1:8080/api/v1/ingest"
        );
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = parse("server = \"http://x\"\nintervall_secs = 5\n").expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("intervall_secs"), "{msg}");
        assert!(msg.contains("agent.toml"), "{msg}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let err = parse("interval_secs = \"soon\"\n").expect_err("must fail");
        assert!(err.to_string().contains("interval_secs"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_cli_overrides_env() {
        let file = parse("server = \"http://file\"\ntoken = \"file-token\"\ninterval_secs = 5\n")
            .expect("parses");
        let from_env = PartialConfig::from_env(env(&[
            ("CLOUDGOV_AGENT_SERVER", "http://env"),
            ("CLOUDGOV_AGENT_TOKEN", "env-token"),
            ("CLOUDGOV_AGENT_INTERVAL_SECS", "7"),
            ("CLOUDGOV_AGENT_BATCH_SIZE", ""), // empty = unset
        ]))
        .expect("env parses");
        let cli = PartialConfig {
            interval_secs: Some(9),
            ..PartialConfig::default()
        };
        let cfg = file
            .overlay(from_env)
            .overlay(cli)
            .validate()
            .expect("valid");
        assert_eq!(cfg.server().as_str(), "http://env/");
        assert_eq!(cfg.token().expose(), "env-token");
        assert_eq!(cfg.interval(), Duration::from_secs(9));
        assert_eq!(cfg.batch_size(), DEFAULT_BATCH_SIZE);
    }

    #[test]
    fn token_file_is_read_and_trimmed_and_overrides_inline_token() {
        let dir = std::env::temp_dir().join(format!("cloudgov-agent-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("token");
        std::fs::write(&path, format!("{SECRET}\n")).expect("write");
        let file = parse("server = \"http://x\"\ntoken = \"inline\"\n").expect("parses");
        let from_env = PartialConfig::from_env(env(&[(
            "CLOUDGOV_AGENT_TOKEN_FILE",
            path.to_str().expect("utf8"),
        )]))
        .expect("env parses");
        let cfg = file.overlay(from_env).validate().expect("valid");
        assert_eq!(cfg.token().expose(), SECRET);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn both_token_forms_in_one_layer_conflict() {
        assert!(matches!(
            parse("token = \"a\"\ntoken_file = \"/x\"\n"),
            Err(ConfigError::ConflictingToken { .. })
        ));
        assert!(matches!(
            PartialConfig::from_env(env(&[
                ("CLOUDGOV_AGENT_TOKEN", "a"),
                ("CLOUDGOV_AGENT_TOKEN_FILE", "/x")
            ])),
            Err(ConfigError::ConflictingToken { .. })
        ));
    }

    #[test]
    fn bad_env_number_names_the_variable() {
        let err = PartialConfig::from_env(env(&[("CLOUDGOV_AGENT_INTERVAL_SECS", "1m")]))
            .expect_err("must fail");
        assert!(
            err.to_string().contains("CLOUDGOV_AGENT_INTERVAL_SECS"),
            "{err}"
        );
    }

    fn validate_with(extra: &str) -> Result<AgentConfig, ConfigError> {
        parse(&format!(
            "server = \"http://127.0.0.1:1\"\ntoken = \"t\"\n{extra}"
        ))
        .expect("parses")
        .validate()
    }

    #[test]
    fn out_of_range_values_are_rejected_with_the_key() {
        for (extra, key) in [
            ("interval_secs = 0", "interval_secs"),
            ("interval_secs = 86401", "interval_secs"),
            ("queue_capacity = 0", "queue_capacity"),
            ("batch_size = 0", "batch_size"),
            ("batch_size = 1001", "batch_size"),
            ("timeout_secs = 0", "timeout_secs"),
            ("spool_max_bytes = 1000", "spool_max_bytes"),
            ("spool_dir = \"relative/spool\"", "spool_dir"),
        ] {
            let err = validate_with(extra).expect_err(extra);
            assert!(
                matches!(&err, ConfigError::Invalid { key: k, .. } if *k == key),
                "{extra}: {err}"
            );
        }
        assert!(validate_with("interval_secs = 1\nqueue_capacity = 1\nbatch_size = 1").is_ok());
    }

    #[test]
    fn server_must_be_an_http_url_without_credentials() {
        for bad in [
            "not a url",
            "ftp://host/",
            "http://user:pw@host/",
            "http://host/?x=1",
            "unix:/run/sock",
        ] {
            let err = AgentConfig::new(bad, "t").expect_err(bad);
            assert!(
                matches!(err, ConfigError::Invalid { key: "server", .. }),
                "{bad}: {err}"
            );
        }
        assert!(matches!(
            PartialConfig::default().validate(),
            Err(ConfigError::Missing { key: "server", .. })
        ));
        assert!(matches!(
            PartialConfig {
                server: Some("http://h".into()),
                ..PartialConfig::default()
            }
            .validate(),
            Err(ConfigError::Missing { key: "token", .. })
        ));
    }

    #[test]
    fn token_must_be_header_safe() {
        for bad in ["", "two words", "new\nline", "tökén"] {
            assert!(
                matches!(
                    AgentConfig::new("http://h", bad),
                    Err(ConfigError::Invalid { key: "token", .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_output_redacts_the_token() {
        let cfg = AgentConfig::new("http://h", SECRET).expect("valid");
        let partial = PartialConfig {
            token: Some(TokenSource::Inline(Token::new(SECRET))),
            ..PartialConfig::default()
        };
        for dbg in [
            format!("{cfg:?}"),
            format!("{partial:?}"),
            format!("{cfg:#?}"),
        ] {
            assert!(!dbg.contains(SECRET), "{dbg}");
            assert!(dbg.contains("redacted"), "{dbg}");
        }
    }

    #[test]
    fn example_file_is_valid() {
        let text = include_str!("../agent.example.toml");
        let partial = parse(text).expect("example parses");
        assert_eq!(partial.interval_secs, Some(DEFAULT_INTERVAL_SECS));
        assert_eq!(partial.queue_capacity, Some(DEFAULT_QUEUE_CAPACITY));
        assert_eq!(partial.batch_size, Some(DEFAULT_BATCH_SIZE));
        assert_eq!(partial.timeout_secs, Some(DEFAULT_TIMEOUT_SECS));
        assert!(matches!(partial.token, Some(TokenSource::File(_))));
        assert_eq!(
            partial.spool_dir.as_deref(),
            Some(Path::new(DEFAULT_SPOOL_DIR))
        );
        assert_eq!(partial.spool_max_bytes, Some(DEFAULT_SPOOL_MAX_BYTES));
    }

    #[test]
    fn spool_keys_default_disable_and_env() {
        let cfg = validate_with("").expect("valid");
        assert_eq!(cfg.spool_dir(), Some(Path::new(DEFAULT_SPOOL_DIR)));
        assert_eq!(cfg.spool_max_bytes(), DEFAULT_SPOOL_MAX_BYTES);
        let off = validate_with("spool_dir = \"\"").expect("valid");
        assert_eq!(off.spool_dir(), None);
        let from_env = PartialConfig::from_env(env(&[
            ("CLOUDGOV_AGENT_SPOOL_DIR", "/tmp/spool"),
            ("CLOUDGOV_AGENT_SPOOL_MAX_BYTES", "1048576"),
        ]))
        .expect("env parses");
        let cfg = parse("server = \"http://x\"\ntoken = \"t\"\nspool_dir = \"\"\n")
            .expect("parses")
            .overlay(from_env)
            .validate()
            .expect("valid");
        assert_eq!(cfg.spool_dir(), Some(Path::new("/tmp/spool")));
        assert_eq!(cfg.spool_max_bytes(), 1_048_576);
        let err = PartialConfig::from_env(env(&[("CLOUDGOV_AGENT_SPOOL_MAX_BYTES", "64M")]))
            .expect_err("must fail");
        assert!(
            err.to_string().contains("CLOUDGOV_AGENT_SPOOL_MAX_BYTES"),
            "{err}"
        );
        let on = AgentConfig::new("http://h", "t")
            .expect("valid")
            .with_spool(Path::new("/tmp/s"), MIN_SPOOL_MAX_BYTES)
            .expect("valid");
        assert_eq!(on.spool_dir(), Some(Path::new("/tmp/s")));
    }

    #[test]
    fn with_interval_is_checked() {
        let cfg = AgentConfig::new("http://h", "t").expect("valid");
        assert!(
            cfg.clone()
                .with_interval(Duration::from_millis(500))
                .is_err()
        );
        assert_eq!(
            cfg.with_interval(Duration::from_secs(2))
                .expect("valid")
                .interval(),
            Duration::from_secs(2)
        );
    }
}
