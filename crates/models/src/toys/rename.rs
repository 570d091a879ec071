//! The paper's simplified `rename`: one directory of names bound to inodes with link counts;
//! `rename(src, dst)` returns -1 when `src` is absent, else 0.
//!
//! Known answers for `rename`/`rename`: they commute when both sources are absent, when one
//! source is absent and is not the other's destination, when both are self-renames, when all
//! four names differ, and when both have the same destination and their sources are links to
//! the same inode; they diverge when the sources are equal, or one's destination is the
//! other's source.

use commuter_engine::{Call, Int, Model, PartialMap, Symbolic, TotalMap, Value, symbolic};

commuter_engine::uninterpreted!(pub FileName);
commuter_engine::uninterpreted!(pub Inum);

#[derive(Clone, Debug, Symbolic, Value)]
pub struct Inode {
    pub nlink: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct Directory {
    pub dir: PartialMap<FileName, Inum>,
    pub inodes: TotalMap<Inum, Inode>,
}

#[derive(Clone, Debug, Symbolic)]
pub struct RenameArgs {
    pub src: FileName,
    pub dst: FileName,
}

pub struct RenameModel;

impl Model for RenameModel {
    type State = Directory;
    fn name(&self) -> &'static str {
        "rename"
    }
    fn description(&self) -> &'static str {
        "the paper's simplified rename in one directory (returns -1 or 0)"
    }
    fn calls(&self) -> Vec<Call<Directory>> {
        vec![Call::new("rename", rename)]
    }
}

#[symbolic]
fn rename(s: &mut Directory, a: &RenameArgs) -> i64 {
    if !s.dir.contains(&a.src) {
        return -1;
    }
    if a.src.sym_eq(&a.dst) {
        return 0;
    }
    if s.dir.contains(&a.dst) {
        let old = s.dir.get(&a.dst);
        let mut inode = s.inodes.get(&old);
        inode.nlink = inode.nlink - 1;
        s.inodes.set(&old, &inode);
    }
    let moved = s.dir.get(&a.src);
    s.dir.insert(&a.dst, &moved);
    s.dir.remove(&a.src);
    0
}

use commuter_engine::SymEq as _;
