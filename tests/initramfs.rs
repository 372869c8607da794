//! The suite in an initramfs-like root: a directory holding only the
//! installed programs (package/install), Debian's busybox-static, an
//! /etc/passwd, an empty /tmp and /dev/null (busybox's shell wants it for
//! background jobs); no /proc. Entered with chroot
//! in a new pid namespace (unshare), so that nothing started there
//! outlives the test. A server with rules and a privilege drop, clients
//! allowed and denied, and the ipcexec service used through ipcrun by an
//! unprivileged user all work there.
//!
//! Needs root (chroot, the privilege drops), unshare, and a busybox for
//! the architecture under test: UCSPI_IPC_BUSYBOX, else the host's
//! /bin/busybox when the tests run natively (.ci/run fetches the foreign
//! ones). SKIPPED otherwise.
use crate::common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The busybox to put in the root, if there is one for this architecture.
fn busybox() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("UCSPI_IPC_BUSYBOX") {
        return Some(PathBuf::from(b));
    }
    let host = Path::new("/bin/busybox");
    (!emulated() && host.is_file()).then(|| host.to_path_buf())
}

/// Builds the root in `root`: busybox and a link per applet in /bin, our
/// programs in /usr/local/bin, two accounts, /tmp, /dev/null.
fn make_root(root: &Path, busybox: &Path) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    let o = run(Command::new(bin.join("busybox")).arg("--list"), 30);
    assert!(o.status.success(), "busybox --list: {}", stderr(&o));
    for applet in stdout(&o).lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let mut install = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("package/install"));
    install.arg("--destdir").arg(root).args(["--prefix", "/usr/local"]);
    // The programs under test: this build's, in DIR/release natively, in
    // DIR/TRIPLE/release for a cross build.
    let release = bin_dir();
    let mut target_dir = release.parent().unwrap();
    if emulated() {
        target_dir = target_dir.parent().unwrap();
        install.args(["--target", env!("UCSPI_IPC_TARGET")]);
    }
    install.env("CARGO_TARGET_DIR", target_dir);
    let o = run(&mut install, 60);
    assert!(o.status.success(), "package/install: {}", stderr(&o));
    let etc = root.join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("passwd"), "root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n").unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\nuser:x:1000:\n").unwrap();
    std::fs::create_dir(root.join("dev")).unwrap();
    let o = run(Command::new("mknod").args(["-m", "666"]).arg(root.join("dev/null")).args(["c", "1", "3"]), 10);
    assert!(o.status.success(), "mknod: {}", stderr(&o));
    let tmp = root.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// What runs in the root. Each line it prints is checked by the test.
const SCRIPT: &str = r#"
set -u
export PATH=/usr/local/bin:/bin
cd /tmp
[ -e /proc/self ] && echo "proc is there"
wait_for() { n=0; while [ ! -S "$1" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done; }

# A server with rules, dropped to uid 1000 after binding.
printf '1000:allow,WHO=+the user+\n0:allow,WHO=+root+\n:deny\n' | ipcrules rules.cdb rules.tmp || echo "ipcrules failed"
ipcserver -u 1000 -g 1000 -x rules.cdb s sh -c 'echo "handler uid $(id -u) for $IPCREMOTEEUID: $WHO"' &
server=$!
wait_for s
echo "root: $(ipcclient s sh -c 'cat <&6')"
echo "user: $(ipcapplyuidgid -u 1000 -g 1000 ipcclient s sh -c 'cat <&6')"
echo "stranger: $(ipcapplyuidgid -u 2000 -g 2000 ipcclient s sh -c 'cat <&6')"

# The ipcexec service, run as root, used by uid 1000 through ipcrun.
printf '1000,0.id:allow\n:deny\n' | ipcexecrules exec.cdb exec.tmp || echo "ipcexecrules failed"
ipcserver e ipcexec exec.cdb &
exec_server=$!
wait_for e
echo "ipcrun: $(IPCEXEC_SOCKET=/tmp/e ipcapplyuidgid -u 1000 -g 1000 ipcrun -F id -u; echo " exit $?")"
echo "ipcrun denied: $(IPCEXEC_SOCKET=/tmp/e ipcapplyuidgid -u 1000 -g 1000 ipcrun -F true 2>&1; echo " exit $?")"

kill $server $exec_server
wait $server; echo "server exit $?"
wait $exec_server; echo "exec server exit $?"
"#;

#[test]
fn the_suite_serves_in_a_root_with_only_busybox() {
    if !need_root() || !have("unshare") || !have("chroot") {
        return;
    }
    let Some(busybox) = busybox() else {
        skip(&format!("no busybox for {} (set UCSPI_IPC_BUSYBOX)", env!("UCSPI_IPC_TARGET")));
        return;
    };
    let root = TempDir::new();
    make_root(root.path(), &busybox);
    let o = run(
        Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "chroot"])
            .arg(root.path())
            .args(["/bin/sh", "-c", SCRIPT]),
        120,
    );
    let out = stdout(&o);
    assert_eq!(
        out,
        "root: handler uid 1000 for 0: root\n\
         user: handler uid 1000 for 1000: the user\n\
         stranger: \n\
         ipcrun: 0\n exit 0\n\
         ipcrun denied:  exit 100\n\
         server exit 0\n\
         exec server exit 0\n",
        "stderr: {}",
        stderr(&o)
    );
    assert!(o.status.success(), "{:?}", o.status);
}
