//! Tests of reading `~/.ssh/config`: matching, includes, the options cutover uses.

use super::*;

fn env(home: &Path) -> SshEnv {
    SshEnv::new(home, "alice")
}

fn host(address: &str) -> plan_core::Host {
    plan_core::Host {
        name: "web1".into(),
        address: address.into(),
        user: None,
        port: None,
        identity: None,
        vars: Vec::new(),
        env: Vec::new(),
        span: plan_core::Span::default(),
    }
}

fn parse(text: &str, env: &SshEnv) -> SshConfig {
    match SshConfig::parse(text, Path::new("config"), env) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

const CONFIG: &str = r#"
# A comment.
Host web1 web1.example.com
    HostName 10.0.0.5
    User deploy
    Port 2222
    IdentityFile ~/.ssh/deploy_%r

Host db*  !db-old
  hostname=%h.internal
  Port = 2200

Host "quoted alias"
    User quoted

Match host something
    User never

Host *
    User fallback
    IdentityFile %d/.ssh/common
    Port 22
"#;

#[test]
fn aliases_resolve_hostname_user_port_and_identity() {
    let env = env(Path::new("/home/alice"));
    let config = parse(CONFIG, &env);
    let target = SshTarget::resolve(&host("web1"), &config, &env);
    assert_eq!(target.name, "web1");
    assert_eq!(target.address, "10.0.0.5");
    assert_eq!(target.user, "deploy");
    assert_eq!(target.port, 2222);
    assert_eq!(
        target.identity,
        Some(PathBuf::from("/home/alice/.ssh/deploy_deploy"))
    );
    assert_eq!(
        target.fallback_identities,
        [
            "/home/alice/.ssh/common",
            "/home/alice/.ssh/id_ed25519",
            "/home/alice/.ssh/id_ecdsa",
            "/home/alice/.ssh/id_rsa"
        ]
        .map(PathBuf::from)
    );
    assert!(!target.use_agent);
}

#[test]
fn the_first_value_wins_and_wildcards_apply() {
    let env = env(Path::new("/home/alice"));
    let config = parse(CONFIG, &env);
    let db = config.lookup("db2");
    assert_eq!(db.host_name.as_deref(), Some("db2.internal"));
    assert_eq!(db.port, Some(2200));
    assert_eq!(db.user.as_deref(), Some("fallback"));
    // Negated: only `Host *` applies.
    let old = config.lookup("db-old");
    assert_eq!(old.host_name, None);
    assert_eq!(old.port, Some(22));
    assert_eq!(
        config.lookup("quoted alias").user.as_deref(),
        Some("quoted")
    );
    // `Match` blocks other than `Match all` never apply.
    assert_ne!(config.lookup("something").user.as_deref(), Some("never"));
}

#[test]
fn the_plan_wins_over_the_config() {
    let env = env(Path::new("/home/alice"));
    let config = parse(CONFIG, &env);
    let mut plan_host = host("web1");
    plan_host.user = Some("root".into());
    plan_host.port = Some(22);
    plan_host.identity = Some(PathBuf::from("~/keys/web"));
    let target = SshTarget::resolve(&plan_host, &config, &env);
    assert_eq!(target.address, "10.0.0.5");
    assert_eq!(target.user, "root");
    assert_eq!(target.port, 22);
    assert_eq!(target.identity, Some(PathBuf::from("/home/alice/keys/web")));
    assert_eq!(
        target.fallback_identities[0],
        PathBuf::from("/home/alice/.ssh/deploy_root")
    );
}

#[test]
fn unknown_hosts_keep_their_address_and_get_defaults() {
    let env = env(Path::new("/home/alice"));
    let config = parse("", &env);
    let target = SshTarget::resolve(&host("192.0.2.7"), &config, &env);
    assert_eq!(target.address, "192.0.2.7");
    assert_eq!(target.user, "alice");
    assert_eq!(target.port, 22);
    assert_eq!(target.identity, None);
    assert_eq!(target.fallback_identities, env.default_identities());
    assert_eq!(target.display(), "alice@192.0.2.7:22");
}

#[test]
fn includes_are_read_relative_to_dot_ssh_and_stay_in_their_block() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let env = env(home.path());
    let dir = env.ssh_dir().join("conf.d");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("10-web.conf"), "Host web2\n  HostName 10.0.0.6\n").expect("write");
    std::fs::write(dir.join("20-user"), "User included\n").expect("write");
    std::fs::write(dir.join("skip.txt"), "User wrong\n").expect("write");
    let text = "Include conf.d/*.conf\nHost web3\n  Include conf.d/20-user\nHost *\n  User last\n";
    let config = parse(text, &env);
    assert_eq!(config.lookup("web2").host_name.as_deref(), Some("10.0.0.6"));
    assert_eq!(config.lookup("web3").user.as_deref(), Some("included"));
    assert_eq!(config.lookup("web4").user.as_deref(), Some("last"));
}

#[test]
fn a_missing_config_file_is_empty() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let config = SshConfig::load(&env(home.path())).expect("no file, no error");
    assert_eq!(config.lookup("x"), HostConfig::default());
}

#[test]
fn bad_values_name_the_file_and_line() {
    let env = env(Path::new("/home/alice"));
    let e = SshConfig::parse("Host x\n  Port http\n", Path::new("/etc/cfg"), &env)
        .expect_err("a bad port");
    assert_eq!(e.kind(), SshErrorKind::Config);
    assert_eq!(
        e.to_string(),
        "/etc/cfg:2: `Port http` is not a port number"
    );
    let e = SshConfig::parse("User \"x\n", Path::new("/etc/cfg"), &env).expect_err("a bad quote");
    assert_eq!(e.to_string(), "/etc/cfg:1: unterminated quote");
}

#[test]
fn include_loops_are_refused() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let env = env(home.path());
    std::fs::create_dir_all(env.ssh_dir()).expect("mkdir");
    std::fs::write(env.ssh_dir().join("config"), "Include config\n").expect("write");
    let e = SshConfig::load(&env).expect_err("a loop");
    assert_eq!(e.kind(), SshErrorKind::Config);
    assert!(e.to_string().contains("nested deeper"), "{e}");
}

#[test]
fn ipv6_addresses_are_bracketed() {
    let target = SshTarget::new("h", "::1", 2222, "root", None);
    assert_eq!(target.host_port(), "[::1]:2222");
}
