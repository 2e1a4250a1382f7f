//! The real `junction` binary as a child process in a directory of its own: its configuration
//! written, started and waited for, killed with SIGKILL and restarted, and its command line run
//! against the same configuration. Shared by the abuse tests, the fault run and the load run
//! (and their benchmarks).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::junction_bin;

/// The value of `${JUNCTION_TEST_BACKEND_KEY}`, the back-end key the configurations name.
const BACKEND_KEY: &str = "test-backend-key";

/// A running `junction serve`.
pub struct Junction {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub base: String,
    args: Vec<String>,
    child: Child,
}

impl Junction {
    /// Writes the configuration `config(port)` gives into `dir`, starts Junction on that port
    /// and waits until it is ready.
    pub async fn start(dir: tempfile::TempDir, config: impl FnOnce(u16) -> String) -> Junction {
        Junction::start_as(dir, &["serve"], config).await
    }

    /// As [`Junction::start`], running `junction <args>` (e.g. `serve --no-workers`).
    pub async fn start_as(
        dir: tempfile::TempDir,
        args: &[&str],
        config: impl FnOnce(u16) -> String,
    ) -> Junction {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let file = dir.path().join("junction.toml");
        std::fs::write(&file, config(port)).unwrap();
        let child = spawn(dir.path(), &file, args);
        let junction = Junction {
            dir,
            config: file,
            base: format!("http://127.0.0.1:{port}"),
            args: args.iter().map(|a| a.to_string()).collect(),
            child,
        };
        junction.ready().await;
        junction
    }

    /// Runs a `junction` command with this configuration and returns its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(junction_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .env("JUNCTION_TEST_BACKEND_KEY", BACKEND_KEY)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "junction {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// As [`Junction::cli`], answering whether the command succeeded.
    pub fn cli_succeeds(&self, args: &[&str]) -> bool {
        Command::new(junction_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .env("JUNCTION_TEST_BACKEND_KEY", BACKEND_KEY)
            .output()
            .unwrap()
            .status
            .success()
    }

    /// Waits until `/health/ready` answers 200; panics with the end of the log after 60 s.
    pub async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if reqwest::get(format!("{}/health/ready", self.base))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(self.dir.path().join("junction.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        panic!(
            "junction was not ready within 60 s; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    /// How the process ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Kills the process with SIGKILL and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process with SIGKILL, starts it again and waits until it is ready.
    pub async fn kill_and_restart(&mut self) {
        self.kill();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.child = spawn(self.dir.path(), &self.config, &args);
        self.ready().await;
    }
}

impl Drop for Junction {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `junction <args>` with the configuration `config`; its log goes to `junction.log`
/// in `dir`.
pub fn spawn(dir: &Path, config: &Path, args: &[&str]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("junction.log"))
        .unwrap();
    Command::new(junction_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .current_dir(dir)
        .env_remove("JUNCTION_DATABASE_URL")
        .env("JUNCTION_LOG", "warn")
        .env("JUNCTION_TEST_BACKEND_KEY", BACKEND_KEY)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("junction starts")
}
