//! Who calls: bearer tokens checked against a users file, roles resolved to
//! the vSphere privilege ids (spec §9).
//!
//! The users file is TOML:
//!
//! ```toml
//! [roles]
//! admin    = ["Task.Create", "Task.Update", "Global.CancelTask", "System.View"]
//! reporter = ["Task.Update", "System.View"]
//! operator = ["Cluster.Admin"]   # cluster operations: Cluster.SaveSnapshot (backups)
//!
//! [[users]]
//! name = "alice"
//! token_sha256 = "<64 hex digits: SHA-256 of the token>"
//! password_hash = "$argon2id$v=19$..."   # optional: `vtaskd hash-password`
//! roles = ["admin"]
//! ```
//!
//! A user has a token, a password (for the vSphere door's `Login`) or both.
//! Only hashes are stored, so the file gives nobody a usable credential:
//! tokens are 32 random bytes, so SHA-256 suffices; passwords are chosen by
//! people, so they get Argon2id (a PHC string), slow by design.
//! The node resolves the caller once, on the node the client called; the
//! resolved [`Caller`] (name and privileges) then travels in the log entry,
//! so every replica authorizes the same way whatever its own copy of the
//! file says.
//!
//! Tokens are looked up by their SHA-256, which an attacker cannot steer
//! byte by byte, so the map lookup leaks nothing useful through timing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;
use vtask_model::{Caller, Privilege, Privileges};

/// The metadata key that names the caller on an insecure node.
pub const USER_HEADER: &str = "x-vtask-user";
/// The caller's name on an insecure node when none is given.
const DEFAULT_USER: &str = "vtask";
/// The longest token we hash; anything longer is no token of ours.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Why a users file was refused; the node keeps its previous users.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading users file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("users file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("users file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    roles: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    users: Vec<UserEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    #[serde(default)]
    token_sha256: Option<String>,
    #[serde(default)]
    password_hash: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// A user as the users file defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub privileges: Privileges,
    /// The Argon2 PHC string of the user's password, checked by [`Auth::login`].
    password_hash: Option<String>,
}

/// One parsed users file: token hash → principal, and name → principal.
#[derive(Debug, Default)]
pub struct Users {
    by_token: HashMap<[u8; 32], Principal>,
    by_name: HashMap<String, Principal>,
}

impl Users {
    pub fn load(path: &Path) -> Result<Users, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Users::parse(&text).map_err(|e| match e {
            ParseError::Toml(source) => AuthError::Parse {
                path: path.to_path_buf(),
                source,
            },
            ParseError::Invalid(message) => AuthError::Invalid {
                path: path.to_path_buf(),
                message,
            },
        })
    }

    fn parse(text: &str) -> Result<Users, ParseError> {
        let file: UsersFile = toml::from_str(text).map_err(ParseError::Toml)?;
        let mut roles = HashMap::new();
        for (role, ids) in &file.roles {
            let mut privileges = Vec::new();
            for id in ids {
                privileges.push(Privilege::parse(id).ok_or_else(|| {
                    ParseError::Invalid(format!(
                        "role {role:?}: {id:?} is not a privilege id (known: {})",
                        Privilege::ALL.map(Privilege::id).join(", ")
                    ))
                })?);
            }
            roles.insert(role.as_str(), Privileges::of(&privileges));
        }
        let mut by_token = HashMap::new();
        let mut by_name = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for user in &file.users {
            vtask_model::validate::name("name", &user.name).map_err(|_| {
                ParseError::Invalid(format!(
                    "user {:?}: the name must be 1 to 256 characters without control characters",
                    user.name
                ))
            })?;
            if !names.insert(user.name.as_str()) {
                return Err(ParseError::Invalid(format!(
                    "user {:?} is listed twice",
                    user.name
                )));
            }
            let hash = match &user.token_sha256 {
                Some(text) => Some(parse_hash(text).ok_or_else(|| {
                    ParseError::Invalid(format!(
                        "user {:?}: token_sha256 must be 64 hex digits (see `vtaskd hash-token`)",
                        user.name
                    ))
                })?),
                None => None,
            };
            if let Some(phc) = &user.password_hash {
                check_password_hash(phc).map_err(|why| {
                    ParseError::Invalid(format!(
                        "user {:?}: password_hash {why} (see `vtaskd hash-password`)",
                        user.name
                    ))
                })?;
            }
            if hash.is_none() && user.password_hash.is_none() {
                return Err(ParseError::Invalid(format!(
                    "user {:?} has neither token_sha256 nor password_hash, so nobody could call as it",
                    user.name
                )));
            }
            let mut privileges = Vec::new();
            for role in &user.roles {
                let granted = roles.get(role.as_str()).ok_or_else(|| {
                    ParseError::Invalid(format!(
                        "user {:?}: role {role:?} is not defined in [roles]",
                        user.name
                    ))
                })?;
                privileges.extend(Privilege::ALL.into_iter().filter(|p| granted.contains(*p)));
            }
            let principal = Principal {
                name: user.name.clone(),
                privileges: Privileges::of(&privileges),
                password_hash: user.password_hash.clone(),
            };
            by_name.insert(user.name.clone(), principal.clone());
            let Some(hash) = hash else { continue };
            if by_token.insert(hash, principal).is_some() {
                return Err(ParseError::Invalid(format!(
                    "user {:?}: another user has the same token",
                    user.name
                )));
            }
        }
        Ok(Users { by_token, by_name })
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    fn find(&self, token: &str) -> Option<&Principal> {
        self.by_token.get(&sha256(token))
    }
}

/// Why a `password_hash` is refused; `None` when it is an Argon2 PHC string.
fn check_password_hash(phc: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(phc).map_err(|e| format!("is not a PHC string: {e}"))?;
    match parsed.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => Ok(()),
        other => Err(format!("uses {other}; vtask verifies Argon2 only")),
    }
}

/// The Argon2id PHC string of `password` with a fresh random salt, for
/// `password_hash` in the users file (`vtaskd hash-password`).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| anyhow::anyhow!("encoding the salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Whether `password` matches the PHC string `phc`. Constant work for a
/// user without a password too (see [`Auth::login`]).
fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash no password matches, verified for unknown users so that a login
/// takes as long whether the user exists or not.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_token().unwrap_or_default()).unwrap_or_default())
}

enum ParseError {
    Toml(toml::de::Error),
    Invalid(String),
}

pub fn sha256(token: &str) -> [u8; 32] {
    sha256_bytes(token.as_bytes())
}

pub fn sha256_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(hash)
}

/// How a node decides who calls.
#[derive(Clone)]
pub enum Auth {
    /// No authentication: every caller holds every privilege and names
    /// itself with `x-vtask-user` (only with `insecure = true`).
    Insecure,
    /// Bearer tokens from the users file; [`Auth::reload`] swaps the users.
    Tokens {
        path: PathBuf,
        users: Arc<RwLock<Arc<Users>>>,
    },
}

impl Auth {
    pub fn from_file(path: &Path) -> Result<Auth, AuthError> {
        let users = Users::load(path)?;
        Ok(Auth::Tokens {
            path: path.to_path_buf(),
            users: Arc::new(RwLock::new(Arc::new(users))),
        })
    }

    /// Re-reads the users file. On any error the previous users stay in
    /// force: a typo in the file must not lock every client out.
    pub fn reload(&self) -> Result<usize, AuthError> {
        match self {
            Auth::Insecure => Ok(0),
            Auth::Tokens { path, users } => {
                let fresh = Arc::new(Users::load(path)?);
                let count = fresh.len();
                // A poisoned lock only means a reader panicked; the Arc inside is whole.
                *users.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                Ok(count)
            }
        }
    }

    fn current(users: &RwLock<Arc<Users>>) -> Arc<Users> {
        users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The caller of a request with this metadata. No credentials, or
    /// credentials we do not know, make an anonymous caller: the model then
    /// answers `NotAuthenticated`, after `ManagedObjectNotFound` (D5).
    pub fn caller(&self, metadata: &MetadataMap) -> Caller {
        let header = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok());
        self.resolve(
            header("authorization").and_then(bearer_value),
            header(USER_HEADER),
        )
    }

    /// The caller of an HTTP request (the web view): the same rules as
    /// [`Auth::caller`], from `authorization: Bearer <token>` or, when that
    /// header is absent, from `cookie_token` (the web view's session cookie).
    pub fn http_caller(
        &self,
        headers: &axum::http::HeaderMap,
        cookie_token: Option<&str>,
    ) -> Caller {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let token = match header("authorization") {
            Some(value) => bearer_value(value),
            None => cookie_token.filter(|t| well_formed(t)),
        };
        self.resolve(token, header(USER_HEADER))
    }

    /// Whether this node authenticates callers at all (not `--insecure`).
    pub fn needs_token(&self) -> bool {
        matches!(self, Auth::Tokens { .. })
    }

    /// The caller presenting `token` (already taken from its header), or
    /// naming itself `user` on an insecure node.
    fn resolve(&self, token: Option<&str>, user: Option<&str>) -> Caller {
        match self {
            Auth::Insecure => {
                let name = user
                    .filter(|v| vtask_model::validate::name("user", v).is_ok())
                    .unwrap_or(DEFAULT_USER);
                Caller::user(name, Privileges::ALL)
            }
            Auth::Tokens { users, .. } => {
                let Some(token) = token else {
                    return Caller::Anonymous;
                };
                match Auth::current(users).find(token) {
                    Some(p) => Caller::user(p.name.clone(), p.privileges),
                    None => Caller::Anonymous,
                }
            }
        }
    }
}

impl Auth {
    /// `SessionManager.Login` of the SOAP door: the caller that `user_name`
    /// and `password` log in as, or `None` (InvalidLogin). With a users
    /// file the password must match the user's `password_hash`; a user
    /// without one cannot log in. On an insecure node any user name and
    /// password log in with every privilege, as any gRPC call there does.
    /// Argon2 is slow by design: call it off the async runtime.
    pub fn login(&self, user_name: &str, password: &str) -> Option<Caller> {
        match self {
            Auth::Insecure => {
                let name = if vtask_model::validate::name("user", user_name).is_ok() {
                    user_name
                } else {
                    DEFAULT_USER
                };
                Some(Caller::user(name, Privileges::ALL))
            }
            Auth::Tokens { users, .. } => {
                let users = Auth::current(users);
                let principal = users.by_name.get(user_name);
                let phc = principal.and_then(|p| p.password_hash.as_deref());
                // The same Argon2 work whether or not the user has a
                // password, so timing does not tell which names exist.
                let against: &str = match phc {
                    Some(phc) => phc,
                    None => decoy_hash(),
                };
                let matched = verify_password(against, password);
                let p = principal.filter(|_| matched && phc.is_some())?;
                Some(Caller::user(p.name.clone(), p.privileges))
            }
        }
    }

    /// The caller of a SOAP session that logged in as `name`: the user's
    /// privileges as the users file grants them now, so a user removed by a
    /// SIGHUP reload loses its sessions too.
    pub fn session_caller(&self, name: &str) -> Caller {
        match self {
            Auth::Insecure => Caller::user(name, Privileges::ALL),
            Auth::Tokens { users, .. } => match Auth::current(users).by_name.get(name) {
                Some(p) => Caller::user(p.name.clone(), p.privileges),
                None => Caller::Anonymous,
            },
        }
    }

    pub fn is_insecure(&self) -> bool {
        matches!(self, Auth::Insecure)
    }
}

/// The token of an `authorization: Bearer <token>` value.
fn bearer_value(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && well_formed(token)).then_some(token)
}

/// A token we would hash: not empty, and not longer than [`MAX_TOKEN_LEN`].
fn well_formed(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN_LEN
}

/// A fresh random token for `scripts/dev.sh`: 32 bytes from the OS, hex.
pub fn random_token() -> std::io::Result<String> {
    Ok(to_hex(&random_bytes::<32>()?))
}

fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    use std::io::Read;
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: &str = r#"
[roles]
admin = ["Task.Create", "Task.Update", "Global.CancelTask", "System.View", "Cluster.Admin"]
viewer = ["System.View"]
"#;

    fn user(name: &str, token: &str, roles: &str) -> String {
        format!(
            "[[users]]\nname = {name:?}\ntoken_sha256 = {:?}\nroles = {roles}\n",
            to_hex(&sha256(token))
        )
    }

    fn metadata(authorization: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", authorization.parse().unwrap());
        m
    }

    #[test]
    fn tokens_resolve_to_their_roles_privileges() {
        let text = format!(
            "{ROLES}{}{}",
            user("alice", "a-token", r#"["admin"]"#),
            user("bob", "b-token", r#"["viewer"]"#)
        );
        let users = Users::parse(&text).ok().unwrap();
        assert_eq!(users.find("a-token").unwrap().privileges, Privileges::ALL);
        let bob = users.find("b-token").unwrap();
        assert_eq!(bob.name, "bob");
        assert!(bob.privileges.contains(Privilege::SystemView));
        assert!(!bob.privileges.contains(Privilege::TaskCreate));
        assert!(!bob.privileges.contains(Privilege::ClusterAdmin));
        assert!(users.find("c-token").is_none());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let cases = [
            (
                format!("{ROLES}{}", user("a", "t", r#"["nobody"]"#)),
                "role \"nobody\" is not defined",
            ),
            (
                "[roles]\nx = [\"Task.Destroy\"]\n".to_string(),
                "\"Task.Destroy\" is not a privilege id",
            ),
            (
                format!("{ROLES}{}{}", user("a", "t", "[]"), user("a", "u", "[]")),
                "listed twice",
            ),
            (
                format!("{ROLES}{}{}", user("a", "t", "[]"), user("b", "t", "[]")),
                "same token",
            ),
            (
                "[[users]]\nname = \"a\"\ntoken_sha256 = \"abc\"\n".to_string(),
                "64 hex digits",
            ),
            (
                "[[users]]\nname = \"a\"\n".to_string(),
                "neither token_sha256 nor password_hash",
            ),
            (
                "[[users]]\nname = \"a\"\npassword_hash = \"hunter2\"\n".to_string(),
                "is not a PHC string",
            ),
            (
                "[[users]]\nname = \"a\"\npassword_hash = \"$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\"\n"
                    .to_string(),
                "uses pbkdf2-sha256",
            ),
        ];
        for (text, expected) in cases {
            match Users::parse(&text) {
                Err(ParseError::Invalid(message)) => {
                    assert!(message.contains(expected), "{message}")
                }
                _ => panic!("accepted or unparsable: {text}"),
            }
        }
        assert!(matches!(
            Users::parse("[[users]]\nname = \"a\"\ntoken = \"x\"\n"),
            Err(ParseError::Toml(_))
        ));
    }

    #[test]
    fn login_takes_the_users_password_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let carol = hash_password("carol's password").unwrap();
        assert!(carol.starts_with("$argon2id$"), "{carol}");
        assert_ne!(carol, hash_password("carol's password").unwrap(), "salted");
        let text = format!(
            "{ROLES}{}[[users]]\nname = \"carol\"\npassword_hash = {carol:?}\nroles = [\"viewer\"]\n",
            user("alice", "a-token", r#"["admin"]"#)
        );
        std::fs::write(&path, text).unwrap();
        let auth = Auth::from_file(&path).unwrap();
        let carol = auth.login("carol", "carol's password").unwrap();
        assert_eq!(
            carol,
            Caller::user("carol", Privileges::of(&[Privilege::SystemView]))
        );
        let refused = [
            ("carol", "wrong"),
            ("carol", ""),
            ("Carol", "carol's password"),
            ("alice", "a-token"), // a token is no password
            ("nobody", "carol's password"),
        ];
        for (name, password) in refused {
            assert!(auth.login(name, password).is_none(), "{name}/{password}");
        }
        assert_eq!(
            Auth::Insecure.login("anyone", "anything"),
            Some(Caller::user("anyone", Privileges::ALL))
        );
    }

    #[test]
    fn only_a_known_bearer_token_authenticates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(
            &path,
            format!("{ROLES}{}", user("alice", "secret", r#"["viewer"]"#)),
        )
        .unwrap();
        let auth = Auth::from_file(&path).unwrap();
        assert_eq!(
            auth.caller(&metadata("Bearer secret")).name(),
            Some("alice")
        );
        assert_eq!(
            auth.caller(&metadata("bearer  secret ")).name(),
            Some("alice")
        );
        for bad in ["Bearer other", "Basic secret", "secret", "Bearer "] {
            assert_eq!(auth.caller(&metadata(bad)), Caller::Anonymous, "{bad}");
        }
        assert_eq!(auth.caller(&MetadataMap::new()), Caller::Anonymous);
        let mut named = MetadataMap::new();
        named.insert(USER_HEADER, "root".parse().unwrap());
        assert_eq!(
            auth.caller(&named),
            Caller::Anonymous,
            "x-vtask-user is ignored"
        );
    }

    #[test]
    fn a_reload_swaps_users_and_a_bad_file_keeps_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(
            &path,
            format!("{ROLES}{}", user("alice", "old", r#"["viewer"]"#)),
        )
        .unwrap();
        let auth = Auth::from_file(&path).unwrap();
        std::fs::write(
            &path,
            format!("{ROLES}{}", user("alice", "new", r#"["viewer"]"#)),
        )
        .unwrap();
        assert_eq!(auth.reload().unwrap(), 1);
        assert_eq!(auth.caller(&metadata("Bearer old")), Caller::Anonymous);
        assert_eq!(auth.caller(&metadata("Bearer new")).name(), Some("alice"));
        std::fs::write(&path, "[[users]]\nbroken").unwrap();
        assert!(auth.reload().is_err());
        assert_eq!(auth.caller(&metadata("Bearer new")).name(), Some("alice"));
    }

    #[test]
    fn http_callers_present_a_bearer_header_or_the_session_cookie() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(
            &path,
            format!(
                "{ROLES}{}{}",
                user("alice", "a-token", r#"["admin"]"#),
                user("bob", "b-token", r#"["viewer"]"#)
            ),
        )
        .unwrap();
        let auth = Auth::from_file(&path).unwrap();
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(auth.http_caller(&headers, None), Caller::Anonymous);
        assert_eq!(
            auth.http_caller(&headers, Some("b-token")).name(),
            Some("bob")
        );
        assert_eq!(auth.http_caller(&headers, Some("")), Caller::Anonymous);
        headers.insert("authorization", "Bearer a-token".parse().unwrap());
        // The header, when present, is the credential: the cookie is not consulted.
        assert_eq!(
            auth.http_caller(&headers, Some("b-token")).name(),
            Some("alice")
        );
        headers.insert("authorization", "Basic a-token".parse().unwrap());
        assert_eq!(
            auth.http_caller(&headers, Some("b-token")),
            Caller::Anonymous
        );
        assert!(auth.needs_token());
        assert!(!Auth::Insecure.needs_token());
        assert_eq!(
            Auth::Insecure.http_caller(&axum::http::HeaderMap::new(), None),
            Caller::user(DEFAULT_USER, Privileges::ALL)
        );
    }

    #[test]
    fn insecure_trusts_the_user_header() {
        let mut named = MetadataMap::new();
        named.insert(USER_HEADER, "carol".parse().unwrap());
        assert_eq!(
            Auth::Insecure.caller(&named),
            Caller::user("carol", Privileges::ALL)
        );
        assert_eq!(
            Auth::Insecure.caller(&MetadataMap::new()),
            Caller::user(DEFAULT_USER, Privileges::ALL)
        );
    }
}
