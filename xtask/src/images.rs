//! `cargo xtask images`: the test servers' images, built from Debian's
//! packages, for machines that reach no container registry.
//!
//! First a base image: `debootstrap` makes a minimal Debian rootfs with the
//! server packages in it, and `docker import` turns it into
//! [`BASE`]. Then one small image per server (`xtask/images/<dir>/`: a
//! Dockerfile and an entrypoint that reads the official images' variables)
//! is built on it. The base is built only when missing (a few minutes); a
//! server image is rebuilt only when its files or the base changed (its
//! `org.idem.source` label says from what it was built).
//!
//! Point the tests at them with `IDEM_TEST_<KIND>_IMAGE` (see
//! [`crate::servers`]); `.ci/run` does.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::project_root;

/// The base image every server image is built on.
pub(crate) const BASE: &str = "idem-local/debian:bookworm";

/// The Debian release, and the packages the base holds.
const SUITE: &str = "bookworm";
const PACKAGES: &[&str] = &[
    "ca-certificates",
    "redis-server",
    "redis-tools",
    "postgresql",
    "mariadb-server",
    "mariadb-client",
];

/// The server images: the directory under `xtask/images/`, and the tag.
pub(crate) const IMAGES: &[(&str, &str)] = &[
    ("redis", "idem-local/redis:7"),
    ("postgres", "idem-local/postgres:15"),
    ("mariadb", "idem-local/mariadb:10.11"),
];

const SOURCE_LABEL: &str = "org.idem.source";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let force = match args {
        [] => false,
        [flag] if flag == "--force" => true,
        [other, ..] => return Err(format!("`images` takes only --force, got `{other}`")),
    };
    if force || inspect(BASE, "{{.Id}}").is_none() {
        build_base()?;
    } else {
        eprintln!("==> {BASE} exists (--force rebuilds it)");
    }
    let base_id = inspect(BASE, "{{.Id}}").ok_or(format!("{BASE} is missing after its build"))?;
    for (dir, tag) in IMAGES {
        let dir = project_root().join("xtask/images").join(dir);
        let source = source_hash(&dir, &base_id)?;
        let label = format!("{{{{ index .Config.Labels \"{SOURCE_LABEL}\" }}}}");
        if !force && inspect(tag, &label).as_deref() == Some(source.as_str()) {
            eprintln!("==> {tag} is up to date");
            continue;
        }
        eprintln!("==> building {tag}");
        let output = Command::new("docker")
            .args(["build", "--quiet", "--build-arg"])
            .arg(format!("BASE={BASE}"))
            .args(["--label", &format!("{SOURCE_LABEL}={source}"), "-t", tag])
            .arg(&dir)
            // No buildx on these machines: the classic builder, without the
            // notice that it is deprecated.
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .map_err(|e| format!("cannot run docker: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "docker build of {tag} failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    Ok(())
}

/// A field of a local image, or `None` when the image does not exist.
fn inspect(image: &str, format: &str) -> Option<String> {
    let output = Command::new("docker")
        .args(["image", "inspect", "--format", format, image])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// What a server image is built from: its directory's files and the base.
fn source_hash(dir: &Path, base_id: &str) -> Result<String, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut hasher = DefaultHasher::new();
    base_id.hash(&mut hasher);
    for file in files {
        let bytes =
            std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        file.file_name().hash(&mut hasher);
        bytes.hash(&mut hasher);
    }
    Ok(format!("{:016x}", hasher.finish()))
}

/// Debootstraps the rootfs, trims it, and imports it as [`BASE`].
fn build_base() -> Result<(), String> {
    let debootstrap = ["/usr/sbin/debootstrap", "/sbin/debootstrap"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("debootstrap is not installed (apt-get install debootstrap)")?;
    let mirror = std::env::var("IDEM_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".to_owned());
    // /var/tmp: on disk, with device nodes allowed (a tmpfs /tmp may not be).
    let rootfs = PathBuf::from(format!("/var/tmp/idem-rootfs-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(rootfs.clone());
    eprintln!(
        "==> building {BASE}: debootstrap {SUITE} from {mirror} into {} (a few minutes)",
        rootfs.display()
    );
    let status = Command::new(debootstrap)
        .args([
            "--variant=minbase",
            &format!("--include={}", PACKAGES.join(",")),
        ])
        .arg(SUITE)
        .arg(&rootfs)
        .arg(&mirror)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run debootstrap: {e}"))?;
    if !status.success() {
        return Err(format!("debootstrap failed ({status}); it needs root"));
    }
    // What the images never use: package caches, docs, and the data
    // directories the packages initialised (the entrypoints make their own).
    for dir in [
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
        "var/lib/mysql",
    ] {
        let path = rootfs.join(dir);
        let _ = std::fs::remove_dir_all(&path);
        let _ = std::fs::create_dir_all(&path);
    }
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let tar_out = tar.stdout.take().ok_or("tar has no stdout")?;
    let import = Command::new("docker")
        .args([
            "import",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            "ENV LANG=C.UTF-8",
            "-",
            BASE,
        ])
        .stdin(tar_out)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run docker import: {e}"))?;
    let tar_status = tar.wait().map_err(|e| format!("tar: {e}"))?;
    if !tar_status.success() || !import.success() {
        return Err(format!(
            "importing the rootfs failed (tar: {tar_status}, docker import: {import})"
        ));
    }
    Ok(())
}

/// Removes a directory when dropped (the rootfs, on success and on failure).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
