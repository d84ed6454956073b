//! A full disk: SQLite on a small tmpfs that the test mounts. Writes are refused with a 503
//! `storage_full` and write nothing, reads keep working, nothing acknowledged is lost, the
//! database stays sound, and writes work again by themselves once space is freed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::delivery::subscribe;
use crate::helpers::spawn_app_with;
use crate::receiver::TestReceiver;

/// A tmpfs of `size` mounted for the test; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts one, or says why it cannot (the test then fails: CI runs as root).
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (or CAP_SYS_ADMIN), as the project's CI has"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Fills what is left of the disk with a ballast file, and makes room again by removing it.
struct Ballast(PathBuf);

impl Ballast {
    fn fill(disk: &SmallDisk) -> Ballast {
        let path = disk.path().join("ballast");
        let chunk = vec![0u8; 64 * 1024];
        let mut file = std::fs::File::create(&path).unwrap();
        use std::io::Write;
        while file.write_all(&chunk).is_ok() {}
        // What a 64 KiB chunk could not fill.
        while file.write_all(&chunk[..512]).is_ok() {}
        Ballast(path)
    }

    fn remove(self) {
        std::fs::remove_file(&self.0).unwrap();
    }
}

#[tokio::test]
async fn a_full_disk_refuses_writes_loses_nothing_and_recovers_by_itself() {
    if crate::db::postgres_cluster().is_some() {
        // PostgreSQL's disk is its cluster's: this test is SQLite's.
        return;
    }
    let disk = SmallDisk::mount("16m");
    let url = format!("sqlite://{}", disk.path().join("herald.db").display());
    let app = spawn_app_with(|c| c.database = url.clone()).await;
    let support = app.admin();
    let acme = app.new_account("acme").await;
    let filler = json!({"name": "Filler", "description": "Takes room."});
    assert_eq!(support.post("/admin/v1/event-type", filler).await.status, 201);
    let receiver = TestReceiver::start().await;
    subscribe(&acme, &receiver.url(), json!({"events": ["Filler"]})).await;
    let publish = |n: usize| {
        let big = "x".repeat(16 * 1024);
        support.post(
            "/admin/v1/account/acme/event",
            json!({"event": "Filler", "data": {"n": n, "big": big}}),
        )
    };
    let mut acknowledged = HashSet::new();
    for n in 0..20 {
        let published = publish(n).await;
        assert_eq!(published.status, 201, "{}", published.text);
        acknowledged.insert(published.body["id"].as_str().unwrap().to_owned());
    }

    // The disk fills up (as another program on it would fill it).
    let ballast = Ballast::fill(&disk);
    let mut refused = 0;
    for n in 20..60 {
        let published = publish(n).await;
        match published.status {
            201 => {
                acknowledged.insert(published.body["id"].as_str().unwrap().to_owned());
            }
            503 => {
                assert_eq!(published.code(), "storage_full", "{}", published.text);
                assert!(published.headers.contains_key("retry-after"));
                refused += 1;
            }
            other => panic!("{other}: {}", published.text),
        }
    }
    eprintln!("a full disk: {refused} of 40 writes refused");
    assert!(refused > 30, "a full disk refuses writes: {refused} of 40 refused");
    // An operator sees it: the refusals are counted by their code (the HeraldStorageFull alert).
    let metrics = app.anonymous().get("/metrics").await.text;
    let counted = format!("herald_http_errors_total{{code=\"storage_full\"}} {refused}");
    assert!(metrics.contains(&counted), "{counted} in /metrics");
    // Reads still work: the history, the endpoints, readiness.
    assert_eq!(acme.get("/restapi/v1/webhook/task").await.status, 200);
    assert_eq!(acme.get("/restapi/v1/webhook/endpoint").await.status, 200);
    assert_eq!(app.anonymous().get("/readyz").await.status, 200);

    // Room again: writes work again, with no restart.
    ballast.remove();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let published = publish(1000).await;
        if published.status == 201 {
            acknowledged.insert(published.body["id"].as_str().unwrap().to_owned());
            break;
        }
        assert!(Instant::now() < deadline, "writes never came back: {}", published.text);
        // The server retries its own writes on its own clock; the test waits on real time.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every acknowledged event reaches the endpoint.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: HashSet<String> = receiver
            .received()
            .iter()
            .map(|c| c.header("webhook-id").to_owned())
            .collect();
        let missing = acknowledged.difference(&got).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{missing} acknowledged events never arrived");
        // Deliveries resume on the server's own retries; the test waits on real time.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    drop(app);
    let db = rusqlite::Connection::open(disk.path().join("herald.db")).unwrap();
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}
