//! Compiles every `.proto` under `proto/` with protox, a protobuf compiler in
//! Rust, so building vtask needs no system `protoc`.
//!
//! `proto/etcd/` (the slice of etcd's API that `vtask bench --target etcd`
//! drives) is compiled on its own: it must stay out of vtask's reflection
//! descriptor set. Its server side is generated too, so that the etcd
//! workload can be tested against an in-process stand-in.

use std::path::{Path, PathBuf};
use std::{env, fs, io};

const PROTO_ROOT: &str = "../../proto";
const ETCD_ROOT: &str = "../../proto/etcd";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let mut files = Vec::new();
    collect_protos(
        Path::new(PROTO_ROOT),
        Some(Path::new(ETCD_ROOT)),
        &mut files,
    )?;
    files.sort();

    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(&files)?;

    // Reflection needs the imported well-known types too. Code generation
    // sees them as well but maps them to prost-types.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("vtask_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_build::configure()
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;

    let mut etcd_files = Vec::new();
    collect_protos(Path::new(ETCD_ROOT), None, &mut etcd_files)?;
    etcd_files.sort();
    let mut etcd = protox::Compiler::new([ETCD_ROOT])?;
    etcd.include_imports(true);
    etcd.open_files(&etcd_files)?;
    tonic_build::configure()
        .emit_rerun_if_changed(false)
        .compile_fds(etcd.file_descriptor_set())?;
    Ok(())
}

fn collect_protos(dir: &Path, skip: Option<&Path>, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if skip.is_some_and(|skip| path == skip) {
            continue;
        }
        if path.is_dir() {
            collect_protos(&path, skip, files)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    Ok(())
}
