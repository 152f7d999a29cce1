//! The one image of the test bed, since nothing can be pulled: a root filesystem holding the
//! statically linked busybox of Debian's `busybox-static` (a shell, `httpd`, `nc`, `wget`),
//! imported on every node with the Engine API's import (`POST /images/create?fromSrc=-`).

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures_util::TryStreamExt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::{layout, sh};

/// Where Debian's `busybox-static` puts its binary.
const BUSYBOX: &str = "/bin/busybox";

/// Builds the image tarball once (it is cached across runs) and returns its path.
pub fn tarball() -> Result<PathBuf> {
    let cache = Path::new(layout::CACHE_DIR);
    // The version in the name invalidates the cache whenever the image's recipe changes.
    let tar = cache.join("busybox-rootfs-v2.tar");
    if tar.exists() {
        return Ok(tar);
    }
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} is missing: install Debian's busybox-static");
    }
    let root = cache.join("rootfs");
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    for dir in ["bin", "tmp", "www", "etc"] {
        fs::create_dir_all(root.join(dir))?;
    }
    fs::copy(BUSYBOX, root.join("bin/busybox")).context("cannot copy busybox")?;
    // One relative symlink per applet (sh, httpd, sleep, ...); `busybox --install` would point
    // them at the host's path of busybox, which the image does not have.
    for applet in sh::run(BUSYBOX, &["--list"])?
        .lines()
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .with_context(|| format!("cannot link applet {applet}"))?;
    }
    fs::write(root.join("www/index.html"), "testbed\n")?;
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")?;
    let partial = tar.with_extension("partial");
    sh::run(
        "tar",
        &[
            "-C",
            &root.display().to_string(),
            "-cf",
            &partial.display().to_string(),
            ".",
        ],
    )?;
    fs::rename(&partial, &tar)?;
    Ok(tar)
}

/// Imports the image on one node unless it is there already.
pub async fn import(docker: &Docker, tarball: &Path) -> Result<()> {
    if docker.inspect_image(layout::IMAGE).await.is_ok() {
        return Ok(());
    }
    let (repo, tag) = layout::IMAGE
        .split_once(':')
        .unwrap_or((layout::IMAGE, "latest"));
    let bytes = fs::read(tarball).with_context(|| format!("cannot read {}", tarball.display()))?;
    let options = CreateImageOptions {
        from_src: Some("-".to_owned()),
        repo: Some(repo.to_owned()),
        tag: Some(tag.to_owned()),
        changes: vec!["ENV PATH=/bin".to_owned(), "CMD [\"/bin/sh\"]".to_owned()],
        ..Default::default()
    };
    docker
        .create_image(Some(options), Some(bollard::body_full(bytes.into())), None)
        .try_collect::<Vec<_>>()
        .await
        .context("docker import failed")?;
    Ok(())
}
