mod common;
use common::*;

#[test]
fn usage_and_connect_errors() {
    let o = run(&mut cmd("ipccat"), 10);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), "ipccat: usage: ipccat path\n");
    let d = TempDir::new();
    let p = d.join("none");
    let o = run(cmd("ipccat").arg(&p), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipccat: fatal: unable to connect to {}: no such file or directory\n", p.display()));
}
