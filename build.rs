//! With the `embed` feature, puts the built site (`target/site`, or `LIVECHART_SITE_DIR`)
//! into the server binary: `make build` builds the site with cargo-leptos, then the binary
//! once more with `embed`, so the one file serves the whole app (src/server/assets.rs).
//! Without the feature this writes an empty list and reads nothing.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LIVECHART_SITE_DIR");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_EMBED");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut code = String::from("&[\n");
    if std::env::var_os("CARGO_FEATURE_EMBED").is_some() {
        let manifest =
            PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
        let site = std::env::var_os("LIVECHART_SITE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest.join("target/site"));
        println!("cargo:rerun-if-changed={}", site.display());
        let mut files = Vec::new();
        walk(&site, &mut files);
        assert!(
            files.iter().any(|f| f.extension().is_some_and(|e| e == "wasm")),
            "feature `embed`: no .wasm under {} (build the site first: cargo leptos build --release)",
            site.display()
        );
        files.sort();
        for f in files {
            let rel = f
                .strip_prefix(&site)
                .expect("under the site")
                .to_string_lossy()
                .replace('\\', "/");
            code.push_str(&format!(
                "    ({rel:?}, include_bytes!({:?})),\n",
                f.display().to_string()
            ));
        }
    }
    code.push(']');
    std::fs::write(out.join("embedded_site.rs"), code).expect("OUT_DIR is writable");
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}
